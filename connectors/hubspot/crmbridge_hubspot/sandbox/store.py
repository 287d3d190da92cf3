"""In-memory CRM records and associations, with the indexes list, search and upserts need.

A record's values are a list aligned to its object type's property columns and are replaced, never
edited in place, so the search index can keep showing a record's previous state while it lags.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from crmbridge_hubspot.sandbox.properties import PropertyCatalog
from crmbridge_hubspot.sandbox.schema import ObjectType


class Record:
    __slots__ = ("archived_ms", "created_ms", "id", "merged_into", "source", "updated_ms", "values")

    def __init__(self, id: int, values: Sequence[Any], created_ms: int, updated_ms: int,
                 source: int = -1) -> None:
        self.id = id
        self.values = values
        self.created_ms = created_ms
        self.updated_ms = updated_ms
        self.archived_ms: int | None = None
        self.merged_into: int | None = None
        self.source = source  # the world entity index it was rendered from, -1 when created through the API

    @property
    def live(self) -> bool:
        return self.archived_ms is None and self.merged_into is None

    def get(self, column: int) -> Any:
        values = self.values
        return values[column] if 0 <= column < len(values) else None


class SearchView:
    """What search sees of a record: its current state, or an older one while the index lags."""

    __slots__ = ("updated_ms", "values")

    def __init__(self, values: Sequence[Any], updated_ms: int) -> None:
        self.values = values
        self.updated_ms = updated_ms


class SearchIndex:
    """Live records sorted by last-modified time, as the (possibly lagging) search index sees them.

    Each write becomes visible after its own lag, drawn from ``lag_seconds`` (low, high): HubSpot's index
    catches up in seconds, not in a fixed delay, so a later write may show before an earlier one.
    """

    BULK = 200  # above this many changes at once, re-sort instead of inserting one by one

    def __init__(self, lag_seconds: tuple[float, float], monotonic: Callable[[], float],
                 rng: random.Random | None = None) -> None:
        self.lag_range = lag_seconds
        self.lag = lag_seconds[1]  # the longest lag: 0 when search sees every write at once
        self._rng = rng or random.Random(0)
        self._monotonic = monotonic
        self.by_modified: list[tuple[int, int]] = []
        self.indexed: dict[int, int] = {}  # id -> last-modified ms as indexed
        self.shadow: dict[int, SearchView | None] = {}  # pending ids -> state search still shows
        self._queue: list[tuple[float, int, int]] = []  # a heap of (due, sequence, id)
        self._sequence = 0
        self._pending: dict[int, int] = {}
        self._dirty = False
        self.version = 0

    @property
    def pending(self) -> bool:
        """Writes the index has not shown yet."""
        return bool(self._queue)

    def build(self, records: Iterable[Record]) -> None:
        self.indexed = {r.id: r.updated_ms for r in records if r.live}
        self.by_modified = sorted((ms, rid) for rid, ms in self.indexed.items())
        self.shadow.clear()
        self._queue.clear()
        self._pending.clear()
        self._dirty = False
        self.version += 1

    def before_change(self, record: Record) -> None:
        if self.lag > 0 and record.id not in self.shadow:
            self.shadow[record.id] = SearchView(record.values, record.updated_ms) if record.live else None

    def after_change(self, records: list[Record]) -> None:
        if self.lag > 0:
            low, high = self.lag_range
            due = self._monotonic() + (self._rng.uniform(low, high) if high > low else high)
            for record in records:
                self._sequence += 1
                heapq.heappush(self._queue, (due, self._sequence, record.id))
                self._pending[record.id] = self._pending.get(record.id, 0) + 1
            return
        self._sync(records)

    def catch_up(self, lookup: Callable[[int], Record | None]) -> None:
        """Make writes whose lag has passed visible to search."""
        if self._queue:
            now = self._monotonic()
            ready: list[Record] = []
            while self._queue and self._queue[0][0] <= now:
                _, _, rid = heapq.heappop(self._queue)
                left = self._pending[rid] - 1
                if left:
                    self._pending[rid] = left
                    continue
                del self._pending[rid]
                self.shadow.pop(rid, None)
                record = lookup(rid)
                if record is not None:
                    ready.append(record)
            if ready:
                self._sync(ready)
        if self._dirty:
            self.by_modified = sorted((ms, rid) for rid, ms in self.indexed.items())
            self._dirty = False

    def _sync(self, records: list[Record]) -> None:
        bulk = len(records) > self.BULK or self._dirty
        for record in records:
            old = self.indexed.pop(record.id, None)
            if old is not None and not bulk:
                at = bisect_left(self.by_modified, (old, record.id))
                if at < len(self.by_modified) and self.by_modified[at] == (old, record.id):
                    del self.by_modified[at]
            if record.live:
                self.indexed[record.id] = record.updated_ms
                if not bulk:
                    insort(self.by_modified, (record.updated_ms, record.id))
        if bulk:
            self._dirty = True
        self.version += 1

    def view(self, record: Record) -> SearchView | Record | None:
        if record.id in self.shadow:
            return self.shadow[record.id]
        return record if record.live else None

    def modified_between(self, low: int, high: int) -> list[int]:
        """Ids whose indexed last-modified time is within [low, high], oldest first."""
        rows = self.by_modified
        start = bisect_left(rows, (low, -1))
        end = bisect_left(rows, (high + 1, -1))
        return [rid for _, rid in rows[start:end]]


class ObjectStore:
    """Every record of one object type, live, archived and merged-away."""

    def __init__(self, otype: ObjectType, catalog: PropertyCatalog, lag_seconds: tuple[float, float],
                 monotonic: Callable[[], float], rng: random.Random | None = None) -> None:
        self.type = otype
        self.catalog = catalog
        self.records: dict[int, Record] = {}
        self.order: list[int] = []  # every id, ascending (ids only grow)
        self.archived_order: list[int] = []
        self.unique: dict[int, dict[str, int]] = {catalog.column(n): {} for n in otype.unique}
        self.index = SearchIndex(lag_seconds, monotonic, rng)
        self.next_id = otype.id_base + 1
        self.live_count = 0
        self.created_col = catalog.column(otype.created_prop)
        self.modified_col = catalog.column(otype.modified_prop)

    # -- loading -------------------------------------------------------------------------------------

    def load(self, records: list[Record]) -> None:
        self.records = {r.id: r for r in records}
        self.order = sorted(self.records)
        self.archived_order = []
        self.live_count = len(records)
        for column, index in self.unique.items():
            index.clear()
            for record in records:
                value = record.get(column)
                if value:
                    index.setdefault(value.lower(), record.id)
        self.next_id = (self.order[-1] + 1) if self.order else self.type.id_base + 1
        self.index.build(records)

    # -- reads ---------------------------------------------------------------------------------------

    def get(self, rid: int) -> Record | None:
        return self.records.get(rid)

    def live(self, rid: int) -> Record | None:
        record = self.records.get(rid)
        return record if record is not None and record.live else None

    def resolve(self, rid: int) -> Record | None:
        """The live record an id stands for: itself, or the record it was merged into."""
        record = self.records.get(rid)
        hops = 0
        while record is not None and record.merged_into is not None and hops < 100:
            record = self.records.get(record.merged_into)
            hops += 1
        return record if record is not None and record.archived_ms is None else None

    def by_unique(self, name: str, value: str) -> Record | None:
        column = self.catalog.column(name)
        if column in self.unique:
            rid = self.unique[column].get(value.lower())
            return self.resolve(rid) if rid is not None else None
        for record in self.records.values():  # a custom unique property: rare, so a scan is fine
            if record.live and (record.get(column) or "").lower() == value.lower():
                return record
        return None

    def page(self, after: int, limit: int, archived: bool) -> tuple[list[Record], int | None]:
        """Up to ``limit`` live (or archived) records with id >= after, and the id the next page starts at."""
        ids = self.archived_order if archived else self.order
        records = self.records
        out: list[Record] = []
        at = bisect_left(ids, after)
        while at < len(ids):
            record = records[ids[at]]
            at += 1
            if (record.archived_ms is not None) if archived else record.live:
                if len(out) == limit:
                    return out, record.id
                out.append(record)
        return out, None

    def live_records(self) -> Iterator[Record]:
        return (r for r in self.records.values() if r.live)

    # -- writes (the caller validated values and holds the portal lock) --------------------------------

    def new_id(self) -> int:
        rid = self.next_id
        self.next_id += 1
        return rid

    def insert(self, record: Record) -> None:
        if self.index.lag > 0:  # a brand-new record: search must not see it before it is indexed
            self.index.shadow.setdefault(record.id, None)
        self.records[record.id] = record
        self.order.append(record.id)
        self.live_count += 1
        self._index_unique(record, None)
        self.index.after_change([record])

    def replace(self, changes: list[tuple[Record, list[Any], int]]) -> None:
        """Give each record new values and a new last-modified time, in one index update."""
        for record, values, updated_ms in changes:
            self.index.before_change(record)
            old_values = record.values
            record.values = values
            record.updated_ms = updated_ms
            self._index_unique(record, old_values)
        self.index.after_change([r for r, _, _ in changes])

    def archive(self, record: Record, at_ms: int) -> None:
        self.index.before_change(record)
        record.archived_ms = at_ms
        self.live_count -= 1
        insort(self.archived_order, record.id)
        self._unindex_unique(record)
        self.index.after_change([record])

    def merge_away(self, record: Record, into: Record) -> None:
        self.index.before_change(record)
        record.merged_into = into.id
        self.live_count -= 1
        for column, index in self.unique.items():
            value = record.get(column)
            if value:
                index[value.lower()] = into.id  # the old address still finds the survivor
        self.index.after_change([record])

    def _index_unique(self, record: Record, old_values: Sequence[Any] | None) -> None:
        for column, index in self.unique.items():
            old = old_values[column] if old_values is not None and column < len(old_values) else None
            new = record.get(column)
            if old and old != new and index.get(old.lower()) == record.id:
                del index[old.lower()]
            if new:
                index[new.lower()] = record.id

    def _unindex_unique(self, record: Record) -> None:
        for column, index in self.unique.items():
            value = record.get(column)
            if value and index.get(value.lower()) == record.id:
                del index[value.lower()]


class AssociationGraph:
    """Undirected links between records of two types; a link may be primary (contact or deal to company)."""

    def __init__(self) -> None:
        self.edges: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(dict)
        self.primary: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)

    def load(self, pairs: Iterable[tuple[str, int, str, int, bool]]) -> None:
        self.edges.clear()
        self.primary.clear()
        for a_type, a_id, b_type, b_id, primary in pairs:
            self.edges[(a_type, b_type)].setdefault(a_id, []).append(b_id)
            self.edges[(b_type, a_type)].setdefault(b_id, []).append(a_id)
            if primary:
                self.primary[(a_type, b_type)][a_id] = b_id

    def targets(self, a_type: str, a_id: int, b_type: str) -> list[int]:
        return self.edges[(a_type, b_type)].get(a_id, [])

    def has(self, a_type: str, a_id: int, b_type: str, b_id: int) -> bool:
        return b_id in self.edges[(a_type, b_type)].get(a_id, ())

    def is_primary(self, a_type: str, a_id: int, b_type: str, b_id: int) -> bool:
        if self.primary[(a_type, b_type)].get(a_id) == b_id:
            return True
        return self.primary[(b_type, a_type)].get(b_id) == a_id

    def add(self, a_type: str, a_id: int, b_type: str, b_id: int, primary: bool = False) -> bool:
        forward = self.edges[(a_type, b_type)].setdefault(a_id, [])
        created = b_id not in forward
        if created:
            forward.append(b_id)
            self.edges[(b_type, a_type)].setdefault(b_id, []).append(a_id)
        if primary:
            self.primary[(a_type, b_type)][a_id] = b_id
        return created

    def remove(self, a_type: str, a_id: int, b_type: str, b_id: int) -> bool:
        forward = self.edges[(a_type, b_type)].get(a_id)
        if not forward or b_id not in forward:
            return False
        forward.remove(b_id)
        backward = self.edges[(b_type, a_type)].get(b_id)
        if backward and a_id in backward:
            backward.remove(a_id)
        for pair, x, y in (((a_type, b_type), a_id, b_id), ((b_type, a_type), b_id, a_id)):
            if self.primary[pair].get(x) == y:
                del self.primary[pair][x]
        return True

    def move(self, o_type: str, from_id: int, to_id: int) -> None:
        """A merge: every link of ``from_id`` now belongs to ``to_id`` (duplicates collapse)."""
        for (a_type, b_type), by_id in list(self.edges.items()):
            if a_type != o_type or from_id not in by_id:
                continue
            for b_id in list(by_id[from_id]):
                primary = self.primary[(a_type, b_type)].get(from_id) == b_id
                self.remove(a_type, from_id, b_type, b_id)
                if (a_type, b_id) != (o_type, to_id):
                    keep_primary = primary and to_id not in self.primary[(a_type, b_type)]
                    self.add(a_type, to_id, b_type, b_id, primary=keep_primary)
