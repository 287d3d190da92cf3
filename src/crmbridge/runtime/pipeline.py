"""``Pipeline``: the one path every trigger takes — a backfill page, an incremental pass, a webhook batch.

Changed records → mapping → store → re-score only the affected people and accounts → write-back plan
→ batch writes and hand-offs. The CLI and the daemon only build a pipeline and call it, so a fix here
fixes all three triggers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crmbridge.connectors import Connector, Page, plugin
from crmbridge.logs import get_logger
from crmbridge.mapping import SourceMapping
from crmbridge.settings import Settings
from crmbridge.store import Store
from crmbridge.store.inbox import InboxEvent
from crmbridge.sync import ProgressSink, RunReport, Syncer, load_mapping

log = get_logger("crmbridge.pipeline")

# At most this many ids per ``fetch``: connectors split further into their vendor's batch size.
FETCH_CHUNK = 1000


@dataclass
class EventsReport:
    """What one batch of webhook events did."""

    events: int = 0
    records: int = 0  # distinct records read back from the CRMs
    runs: dict[str, RunReport] = field(default_factory=dict)
    scoring: dict[str, Any] = field(default_factory=dict)
    writeback: Any = None

    @property
    def changed(self) -> int:
        return sum(s.stored.new + s.stored.changed + s.stored.archived + s.stored.merged
                   for r in self.runs.values() for s in r.streams.values())


@dataclass(frozen=True, slots=True)
class EventGroup:
    """The events of one source, coalesced: the distinct ids to read per stream (with the time of the
    newest event about each), and the merges seen."""

    source: str
    ids: dict[str, list[str]]
    merged: dict[str, dict[str, str]]
    newest: dict[tuple[str, str], int] = field(default_factory=dict)
    properties: dict[str, set[str | None]] = field(default_factory=dict)  # stream -> changed properties named


def coalesce(events: Sequence[InboxEvent]) -> list[EventGroup]:
    """Fifty updates to one contact are one id to read; a merge adds its survivor and what it swallowed."""
    ids: dict[str, dict[str, dict[str, None]]] = defaultdict(lambda: defaultdict(dict))
    merged: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    newest: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    properties: dict[str, dict[str, set[str | None]]] = defaultdict(lambda: defaultdict(set))
    for e in sorted(events, key=lambda e: (e.occurred_ms, e.id)):
        wanted = ids[e.source][e.stream]
        properties[e.source][e.stream].add(e.property_name)
        target = e.merged_into if e.action == "merged" and e.merged_into else e.object_id
        wanted[target] = None
        newest[e.source][(e.stream, target)] = e.occurred_ms
        if e.action == "merged" and e.merged_into:
            for gone in e.merged_ids:
                if gone != e.merged_into:
                    merged[e.source][e.stream][gone] = e.merged_into
                    wanted.pop(gone, None)
    return [EventGroup(source, {s: list(v) for s, v in streams.items()},
                       {s: dict(m) for s, m in merged[source].items()}, newest[source],
                       {s: set(p) for s, p in properties[source].items()})
            for source, streams in ids.items()]


class ReadLog:
    """The CRM's own last-modified time of each record as last read back, so an event about a change at or
    before it costs no new read: in a burst, the changes that arrive after the first read of a record are
    already in it. Both times come from the CRM's clock, so no clock skew enters. Bounded in size."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._modified: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self._lock = threading.Lock()

    def stale(self, source: str, stream: str, ids: Sequence[str], newest: Mapping[tuple[str, str], int]
              ) -> list[str]:
        """The ids with an event newer than what the last read of them showed."""
        with self._lock:
            return [i for i in ids if newest.get((stream, i), 1 << 62) > self._modified.get((source, stream, i), -1)]

    def read(self, source: str, stream: str, modified: Mapping[str, int]) -> None:
        with self._lock:
            for i, ms in modified.items():
                self._modified[(source, stream, i)] = ms
                self._modified.move_to_end((source, stream, i))
            while len(self._modified) > self.capacity:
                self._modified.popitem(last=False)


class Pipeline:
    """Holds the store, one connector per source and the write-back; thread-safe per call."""

    def __init__(self, settings: Settings, store: Store, connectors: Mapping[str, Connector] | None = None, *,
                 should_stop: Callable[[], bool] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.store = settings, store
        self._connectors: dict[str, Connector] = dict(connectors or {})
        self._mappings: dict[str, SourceMapping] = {}
        self._writeback: Any = None
        self.reads = ReadLog()
        self.should_stop = should_stop or (lambda: False)
        self.clock = clock
        # One write-back at a time in a process (a scheduled pass and a webhook batch may store and
        # score side by side; across processes the hand-off claims keep deals unique).
        self.lock = threading.RLock()
        self._parts = threading.Lock()

    # -- parts -----------------------------------------------------------------------------------

    def connector(self, source: str) -> Connector:
        with self._parts:
            if source not in self._connectors:
                self._connectors[source] = plugin(source).connector()
            return self._connectors[source]

    def mapping(self, source: str) -> SourceMapping:
        if source not in self._mappings:
            SourceMapping.load(self.settings.mapping_file(source))  # a broken file fails before any API call
            mapping = load_mapping(self.store, self.connector(source), self.settings.mapping_file(source))
            with self._parts:
                self._mappings.setdefault(source, mapping)
        return self._mappings[source]

    def syncer(self, source: str, *, workers: int = 4, progress: ProgressSink | None = None,
               dry_run: bool = False) -> Syncer:
        return Syncer(self.store, self.connector(source), self.mapping(source), workers=workers, progress=progress,
                      dry_run=dry_run, should_stop=self.should_stop)

    def rescorer(self) -> Any:
        from crmbridge.identity import load_policy
        from crmbridge.rescore import Rescorer
        from crmbridge.scoring import ScoringModel

        return Rescorer(self.store, ScoringModel.load(self.settings.scoring_model_path),
                        load_policy(self.settings.merge_policy_file))

    def writeback(self) -> Any:
        if self._writeback is None:
            from crmbridge.writeback.build import build_writeback

            self._writeback = build_writeback(self.settings, self.store,
                                              {s: self.connector(s) for s in self.settings.sources})
        return self._writeback

    # -- the triggers ------------------------------------------------------------------------------

    def backfill(self, source: str, streams: Sequence[str] | None = None, *, restart: bool = False,
                 dry_run: bool = False, workers: int = 4, progress: ProgressSink | None = None) -> RunReport:
        report = self.syncer(source, workers=workers, progress=progress, dry_run=dry_run).backfill(
            streams, restart=restart)
        if not dry_run:
            report.scoring = self.rescore(source, report)
        return report

    def sync(self, source: str, streams: Sequence[str] | None = None, *, reconcile: bool = False,
             progress: ProgressSink | None = None) -> RunReport:
        report = self.syncer(source, progress=progress).sync(streams, reconcile=reconcile)
        report.scoring = self.rescore(source, report)
        return report

    def apply_events(self, events: Sequence[InboxEvent], *, write_back: bool = True) -> EventsReport:
        """A webhook batch: read the records it names back from the CRM (a webhook is a hint, the CRM the
        truth), store them, pass the streams the CRM sends no webhook for, re-score, write back."""
        out = EventsReport(events=len(events))
        for group in coalesce(events):
            run, read = self._apply_group(group)
            out.records += read
            out.runs[group.source] = run
            out.scoring[group.source] = self.rescore(group.source, run)
        if write_back and out.changed:
            out.writeback = self.write_back()
        return out

    def _apply_group(self, group: EventGroup) -> tuple[RunReport, int]:
        """Read back what the events name (unless a read since already holds it); (report, records read)."""
        connector = self.connector(group.source)
        syncer = self.syncer(group.source)

        def pages() -> Any:
            for stream, wanted in group.ids.items():
                ids = self.reads.stale(group.source, stream, wanted, group.newest)
                fetched[stream] = len(ids)
                for start in range(0, len(ids), FETCH_CHUNK):
                    for page in connector.fetch(stream, ids[start : start + FETCH_CHUNK]):
                        page.merged.update(group.merged.get(stream, {}))
                        read.setdefault(stream, []).extend(r.id for r in page.records)
                        yield page
                if not ids and group.merged.get(stream):
                    yield Page(stream, merged=dict(group.merged[stream]))

        fetched: dict[str, int] = {}
        read: dict[str, list[str]] = {}
        report = syncer.apply(pages(), command="webhook")
        self._remember(group.source, syncer, read)  # only once stored: a failed batch must read again
        followups = sorted({f for stream, n in fetched.items() if n
                            for f in connector.followups(stream, group.properties.get(stream, set()))})
        if followups:
            passed = syncer.sync(followups, record=False)  # part of the batch, not a run of its own
            report.streams.update(passed.streams)
            for endpoint, n in passed.api_calls.items():
                report.api_calls[endpoint] = report.api_calls.get(endpoint, 0) + n
        return report, sum(fetched.values())

    def _remember(self, source: str, syncer: Syncer, read: Mapping[str, Sequence[str]]) -> None:
        for stream, ids in read.items():
            entity = syncer.specs[stream].entity
            stored = self.store.records.by_keys(entity, [(source, i) for i in ids])
            self.reads.read(source, stream, {sid: int(r.updated_at.timestamp() * 1000)
                                             for (_, sid), r in stored.items() if r.updated_at is not None})

    def rescore(self, source: str, report: RunReport) -> dict[str, Any]:
        """Everyone after a backfill; after anything else, the people the changes touch."""
        from crmbridge.rescore import affected_people

        people = None if report.command == "backfill" else affected_people(self.store, source, report)
        if people is not None and not people:
            return {"scored": 0, "written": 0}
        return self.rescorer().run(people).as_dict()

    def write_back(self, *, dry_run: bool = False, full: bool = False) -> Any:
        """One write-back pass, or None while write-back is not set up."""
        with self.lock:
            wb = self.writeback()
            if not wb.is_set_up():
                return None
            return wb.run(dry_run=dry_run, full=full)

    def close(self) -> None:
        if self._writeback is not None:
            for writer in self._writeback.writers.values():
                client = getattr(writer, "client", None)
                if hasattr(client, "close"):
                    client.close()
        for connector in self._connectors.values():
            connector.close()
