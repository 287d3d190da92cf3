"""One HubSpot account's state: records, associations, properties, owners, pipelines, forms, events.

Every change goes through a ``HubSpotPortal`` method, whether it comes from an HTTP request or from a
test calling the Python API, so both obey the same rules: validation, unique e-mails, forward-only
lifecycle stages, merges, and the search index lag. Changes are stamped with the wall clock (ms), and
told to a ``ChangeListener`` (the webhook sender) when one is listening; seeding tells it nothing.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from crmbridge.sandbox.world import World, paused_gc
from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.clock import iso_ms, now_ms
from crmbridge_hubspot.sandbox.events import EventLog
from crmbridge_hubspot.sandbox.properties import LIFECYCLE_RANK, PropertyCatalog, build_catalogs
from crmbridge_hubspot.sandbox.render import (
    USER_ID_BASE,
    OwnerView,
    record_id,
    render_associations,
    render_companies,
    render_contacts,
    render_deals,
    render_engagements,
    render_forms,
    render_owners,
    render_pipelines,
)
from crmbridge_hubspot.sandbox.schema import ENGAGEMENT_TYPES, OBJECT_TYPES, ObjectType
from crmbridge_hubspot.sandbox.store import AssociationGraph, ObjectStore, Record

PIPELINE_EPOCH = "2023-01-09T08:00:00.000Z"
DEFAULT_CHANGE_SOURCE = "API"


class ChangeListener(Protocol):
    """Who hears about changes (the webhook sender). ``listening`` is read on every write, so it must be
    cheap; nothing else is called while it is False."""

    @property
    def listening(self) -> bool: ...

    def watched(self, type_name: str) -> Sequence[str]:
        """The properties whose changes on this type someone subscribed to."""
        ...

    def created(self, type_name: str, rid: int, at_ms: int, source: str) -> None: ...

    def deleted(self, type_name: str, rid: int, at_ms: int, source: str) -> None: ...

    def changed(self, type_name: str, diffs: Sequence[tuple[int, Sequence[tuple[str, Any]]]], at_ms: int,
                source: str) -> None: ...

    def merged(self, type_name: str, primary: int, merged: int, new: int, moved: int, at_ms: int,
               source: str) -> None: ...

    def associated(self, a_type: str, a_id: int, b_type: str, b_id: int, *, removed: bool, primary: bool,
                   at_ms: int, source: str) -> None: ...


def support_pipelines(stamp: str) -> list[dict[str, Any]]:
    """The ticket pipeline every HubSpot account starts with (ids as HubSpot gives them)."""
    stages = [("1", "New", "OPEN"), ("2", "Waiting on contact", "OPEN"), ("3", "Waiting on us", "OPEN"),
              ("4", "Closed", "CLOSED")]
    return [{"label": "Support Pipeline", "displayOrder": 0, "id": "0", "createdAt": stamp, "updatedAt": stamp,
             "archived": False, "stages": [
                 {"label": label, "displayOrder": i, "metadata": {"ticketState": state,
                                                                  "isClosed": str(state == "CLOSED").lower()},
                  "id": sid, "createdAt": stamp, "updatedAt": stamp, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                  "archived": False} for i, (sid, label, state) in enumerate(stages)]}]


class HubSpotPortal:
    def __init__(self, world: World, *, portal_id: int, search_lag_seconds: float | tuple[float, float] = 0.0,
                 wall_ms: Callable[[], int] = now_ms, monotonic: Callable[[], float] = time.monotonic,
                 seed: int = 0) -> None:
        self.world = world
        self.portal_id = portal_id
        lag = search_lag_seconds
        self.search_lag: tuple[float, float] = (float(lag), float(lag)) if isinstance(lag, int | float) else lag
        self.seed = seed
        self.wall_ms = wall_ms
        self.monotonic = monotonic
        self.lock = threading.RLock()
        self._touch_draws = 0
        self.listener: ChangeListener | None = None
        self._acting = threading.local()
        self.load()

    # -- who is changing things ----------------------------------------------------------------------

    @contextmanager
    def acting_as(self, source: str) -> Iterator[None]:
        """Changes made inside carry this ``changeSource`` (``FORM``, ``CRM_UI``...) instead of ``API``."""
        previous = getattr(self._acting, "source", DEFAULT_CHANGE_SOURCE)
        self._acting.source = source
        try:
            yield
        finally:
            self._acting.source = previous

    @property
    def change_source(self) -> str:
        return getattr(self._acting, "source", DEFAULT_CHANGE_SOURCE)

    def _listener(self) -> ChangeListener | None:
        listener = self.listener
        return listener if listener is not None and listener.listening else None

    # -- seeding -------------------------------------------------------------------------------------

    def load(self) -> None:
        """(Re)build the seeded state from the world."""
        with self.lock, paused_gc():
            world = self.world
            self.catalogs: dict[str, PropertyCatalog] = build_catalogs()
            self.stores: dict[str, ObjectStore] = {
                name: ObjectStore(otype, self.catalogs[name], self.search_lag, self.monotonic,
                                  random.Random(f"lag:{self.seed}:{name}"))
                for name, otype in OBJECT_TYPES.items()
            }
            self.stores["contacts"].load(render_contacts(world))
            self.stores["companies"].load(render_companies(world))
            self.stores["deals"].load(render_deals(world))
            for name, records in render_engagements(world).items():
                self.stores[name].load(records)
            self.graph = AssociationGraph()
            self.graph.load(render_associations(world))
            self.owners: list[OwnerView] = render_owners(world)
            self.pipelines: list[dict[str, Any]] = render_pipelines(world, PIPELINE_EPOCH)
            self.forms: list[dict[str, Any]] = render_forms(world, USER_ID_BASE + 1)
            self.events = EventLog(world, lambda person: str(record_id("contacts", person)), self.portal_id)
            self._touch_draws = 0
            owner_ids = frozenset(o.id for o in self.owners)
            for catalog in self.catalogs.values():
                catalog.external["hubspot_owner_id"] = lambda ids=owner_ids: ids
            deals = self.catalogs["deals"]
            deals.external["pipeline"] = lambda: frozenset(p["id"] for p in self.pipelines)
            deals.external["dealstage"] = lambda: frozenset(s["id"] for p in self.pipelines for s in p["stages"])
            self.ticket_pipelines: list[dict[str, Any]] = support_pipelines(PIPELINE_EPOCH)
            tickets = self.catalogs["tickets"]
            tickets.external["hs_pipeline"] = lambda: frozenset(p["id"] for p in self.ticket_pipelines)
            tickets.external["hs_pipeline_stage"] = lambda: frozenset(
                s["id"] for p in self.ticket_pipelines for s in p["stages"])

    def set_search_lag(self, low: float, high: float) -> None:
        """From now on each write's search lag is drawn from [low, high]; writes already waiting keep theirs."""
        with self.lock:
            self.search_lag = (low, high)
            for store in self.stores.values():
                store.index.lag_range = (low, high)
                store.index.lag = max(store.index.lag, high) if store.index.pending else high

    # -- reads ---------------------------------------------------------------------------------------

    def store(self, type_name: str) -> ObjectStore:
        return self.stores[type_name]

    def find(self, otype: ObjectType, key: str, id_property: str | None = None) -> Record | None:
        """The live record an id (or a unique property value) names; merged-away ids give the survivor."""
        store = self.stores[otype.name]
        if id_property and id_property != "hs_object_id":
            prop = store.catalog.defs.get(id_property)
            if prop is None or not prop.unique:  # HubSpot looks records up only by a unique property
                raise errors.validation(f"{id_property} is not a unique property of {otype.name}, so it cannot be "
                                        "used as idProperty", context={"idProperty": [id_property]})
            return store.by_unique(id_property, key)
        try:
            rid = int(key)
        except ValueError:
            return None
        return store.resolve(rid)

    def associated(self, from_type: str, rid: int, to_type: str) -> list[int]:
        """Live records of ``to_type`` linked to a record (links to archived or merged ones are hidden)."""
        target = self.stores[to_type]
        return [t for t in self.graph.targets(from_type, rid, to_type) if target.live(t) is not None]

    def stage_closed(self, stage: str) -> tuple[bool, bool]:
        for pipeline in self.pipelines:
            for s in pipeline["stages"]:
                if s["id"] == stage:
                    closed = s["metadata"].get("isClosed") == "true"
                    return closed, closed and float(s["metadata"].get("probability", "0") or 0) >= 1.0
        return False, False

    # -- writes --------------------------------------------------------------------------------------

    def create(self, otype: ObjectType, properties: Mapping[str, Any],
               associations: Sequence[tuple[str, int, bool]] = ()) -> Record:
        """Create one record; ``associations`` are (to type, to id, primary)."""
        with self.lock:
            record = self._new_record(otype, properties)
            store = self.stores[otype.name]
            for to_type, to_id, _ in associations:
                if self.stores[to_type].live(to_id) is None:
                    raise errors.validation(f"{to_type[:-1]} {to_id} does not exist, so it cannot be associated.")
            store.insert(record)
            for to_type, to_id, primary in associations:
                self.graph.add(otype.name, record.id, to_type, to_id, primary=primary)
            listener = self._listener()
            if listener is not None:
                listener.created(otype.name, record.id, record.created_ms, self.change_source)
                for to_type, to_id, primary in associations:
                    listener.associated(otype.name, record.id, to_type, to_id, removed=False, primary=primary,
                                        at_ms=record.created_ms, source=self.change_source)
            return record

    def _new_record(self, otype: ObjectType, properties: Mapping[str, Any]) -> Record:
        store = self.stores[otype.name]
        catalog = store.catalog
        cleaned, problems = catalog.clean(properties)
        if problems:
            raise errors.invalid_properties(problems)
        self._check_unique(store, cleaned, None)
        now = self.wall_ms()
        rid = store.new_id()
        values: list[Any] = [None] * len(catalog.defs)
        for column, value in cleaned.items():
            values[column] = value
        values[store.created_col] = values[store.modified_col] = iso_ms(now)
        values[catalog.column("hs_object_id")] = str(rid)
        self._derive(otype, catalog, values, None)
        if otype.name == "contacts" and values[catalog.column("lifecyclestage")] is None:
            values[catalog.column("lifecyclestage")] = "lead"
        if otype.name in ENGAGEMENT_TYPES and \
                values[catalog.column("hs_timestamp")] is None:
            values[catalog.column("hs_timestamp")] = iso_ms(now)
        return Record(rid, values, now, now)

    @staticmethod
    def _check_unique(store: ObjectStore, cleaned: Mapping[int, Any], rid: int | None) -> None:
        """A unique value (a contact's e-mail) held by another live record is a conflict."""
        for column, index in store.unique.items():
            value = cleaned.get(column)
            holder_id = index.get(value.lower()) if value else None
            holder = store.resolve(holder_id) if holder_id is not None else None
            if holder is not None and holder.id != rid:
                raise errors.conflict(f"{store.type.label.capitalize()} already exists. Existing ID: {holder.id}")
        # Custom properties created with ``hasUniqueValue`` are enforced too (a scan: they are rare).
        for prop in store.catalog.defs.values():
            if not prop.unique or prop.hubspot_defined:
                continue
            value = cleaned.get(store.catalog.column(prop.name))
            holder = store.by_unique(prop.name, str(value)) if value else None
            if holder is not None and holder.id != rid:
                raise errors.conflict(f"{store.type.label.capitalize()} already exists. Existing ID: {holder.id}")

    def update(self, otype: ObjectType, record: Record, properties: Mapping[str, Any]) -> Record:
        with self.lock:
            return self.update_many(otype, [(record, properties)])[0]

    def update_many(self, otype: ObjectType, items: Sequence[tuple[Record, Mapping[str, Any]]],
                    *, allow_read_only: bool = False) -> list[Record]:
        """Validate every input first, then apply them all with one timestamp and one index update."""
        with self.lock:
            store = self.stores[otype.name]
            catalog = store.catalog
            planned: list[tuple[Record, dict[int, Any]]] = []
            problems = []
            for record, properties in items:
                cleaned, found = catalog.clean(properties, allow_read_only=allow_read_only)
                problems.extend(found)
                planned.append((record, cleaned))
            if problems:
                raise errors.invalid_properties(problems)
            for record, cleaned in planned:
                self._check_unique(store, cleaned, record.id)
            now = self.wall_ms()
            listener = self._listener()
            watched = [(n, catalog.column(n)) for n in listener.watched(otype.name)] if listener else []
            changes, diffs = self._apply(otype, store, planned, now, allow_read_only, watched)
            if changes:
                store.replace(changes)
            if listener is not None and diffs:
                listener.changed(otype.name, diffs, now, self.change_source)
            return [record for record, _ in planned]

    def _apply(self, otype: ObjectType, store: ObjectStore, planned: Sequence[tuple[Record, dict[int, Any]]],
               now: int, bump: bool, watched: Sequence[tuple[str, int]]
               ) -> tuple[list[tuple[Record, list[Any], int]], list[tuple[int, list[tuple[str, Any]]]]]:
        """Each record's new values (without touching the records), and the watched properties that changed."""
        catalog = store.catalog
        stamp = iso_ms(now)
        changes, diffs = [], []
        lifecycle = catalog.column("lifecyclestage")
        for record, cleaned in planned:
            before = list(record.values)
            if len(before) < len(catalog.defs):
                before.extend([None] * (len(catalog.defs) - len(before)))
            values = list(before)
            for column, value in cleaned.items():
                if column == lifecycle and not self._lifecycle_may_move(values[column], value):
                    continue  # HubSpot ignores a backward move: clear the stage first
                values[column] = value
            self._derive(otype, catalog, values, before)
            if values != before or bump:
                values[store.modified_col] = stamp
                changes.append((record, values, now))
                if watched:
                    moved = [(n, values[col]) for n, col in watched if col >= 0 and values[col] != before[col]]
                    if moved:
                        diffs.append((record.id, moved))
        return changes, diffs

    @staticmethod
    def _lifecycle_may_move(current: str | None, new: str | None) -> bool:
        if current is None or new is None:
            return True
        if current not in LIFECYCLE_RANK or new not in LIFECYCLE_RANK:
            return True
        return LIFECYCLE_RANK[new] >= LIFECYCLE_RANK[current]

    def _derive(self, otype: ObjectType, catalog: PropertyCatalog, values: list[Any], old: Sequence[Any] | None
                ) -> None:
        """Properties HubSpot computes from others."""
        if otype.name == "contacts":
            email = values[catalog.column("email")]
            values[catalog.column("hs_email_domain")] = email.rpartition("@")[2].lower() if email else None
        elif otype.name == "deals":
            stage_col = catalog.column("dealstage")
            if values[stage_col] is not None and (old is None or old[stage_col] != values[stage_col]):
                closed, won = self.stage_closed(values[stage_col])
                values[catalog.column("hs_is_closed")] = "true" if closed else "false"
                values[catalog.column("hs_is_closed_won")] = "true" if won else "false"
                if values[catalog.column("pipeline")] is None:
                    values[catalog.column("pipeline")] = "default"

    def archive(self, otype: ObjectType, record: Record) -> None:
        with self.lock:
            if record.live:
                now = self.wall_ms()
                self.stores[otype.name].archive(record, now)
                listener = self._listener()
                if listener is not None:
                    listener.deleted(otype.name, record.id, now, self.change_source)

    def merge(self, otype: ObjectType, primary: Record, merged: Record) -> Record:
        """Both records disappear into a new one with a new id, as HubSpot merges today: the primary's
        values win, the merged record fills the gaps, links of both move over (the primary's first, so its
        primary labels win), and the survivor lists every id it absorbed in ``hs_merged_object_ids``.
        Reads of either old id answer with the survivor."""
        with self.lock:
            store = self.stores[otype.name]
            catalog = store.catalog
            if primary.id == merged.id:
                raise errors.validation("Cannot merge an object with itself.")
            merged_col = catalog.column("hs_merged_object_ids")
            ids = [x for x in (primary.get(merged_col) or "").split(";") if x] + [str(primary.id), str(merged.id)]
            ids += [x for x in (merged.get(merged_col) or "").split(";") if x]
            now = self.wall_ms()
            values = list(primary.values) + [None] * (len(catalog.defs) - len(primary.values))
            moved = 0
            for prop in catalog.defs.values():  # the survivor keeps the primary's values, gains the missing
                if prop.read_only:
                    continue
                if values[prop.column] in (None, "") and merged.get(prop.column) not in (None, ""):
                    values[prop.column] = merged.get(prop.column)
                    moved += 1
            rid = store.new_id()
            values[catalog.column("hs_object_id")] = str(rid)
            values[merged_col] = ";".join(dict.fromkeys(ids))
            values[store.modified_col] = iso_ms(now)
            survivor = Record(rid, values, primary.created_ms, now, source=primary.source)
            store.merge_away(primary, survivor)
            store.merge_away(merged, survivor)
            store.insert(survivor)
            self.graph.move(otype.name, primary.id, survivor.id)
            self.graph.move(otype.name, merged.id, survivor.id)
            listener = self._listener()
            if listener is not None:
                source = self.change_source
                listener.merged(otype.name, primary.id, merged.id, survivor.id, moved, now, source)
                for (a_type, to_type), by_id in list(self.graph.edges.items()):
                    if a_type != otype.name:
                        continue
                    for to_id in by_id.get(survivor.id, ()):  # every link of the new record is new on both ends
                        listener.associated(otype.name, survivor.id, to_type, to_id, removed=False, at_ms=now,
                                            source=source,
                                            primary=self.graph.is_primary(otype.name, survivor.id, to_type, to_id))
            return survivor

    def associate(self, from_type: str, from_id: int, to_type: str, to_id: int, primary: bool = False) -> bool:
        with self.lock:
            was_primary = primary and self.graph.is_primary(from_type, from_id, to_type, to_id)
            created = self.graph.add(from_type, from_id, to_type, to_id, primary=primary)
            listener = self._listener()
            if listener is not None and (created or (primary and not was_primary)):
                listener.associated(from_type, from_id, to_type, to_id, removed=False, primary=primary,
                                    at_ms=self.wall_ms(), source=self.change_source)
            return created

    def dissociate(self, from_type: str, from_id: int, to_type: str, to_id: int) -> bool:
        with self.lock:
            was_primary = self.graph.is_primary(from_type, from_id, to_type, to_id)
            removed = self.graph.remove(from_type, from_id, to_type, to_id)
            listener = self._listener()
            if listener is not None and removed:
                listener.associated(from_type, from_id, to_type, to_id, removed=True, primary=was_primary,
                                    at_ms=self.wall_ms(), source=self.change_source)
            return removed

    def touch(self, otype: ObjectType, *, count: int | None = None, ids: Iterable[int] | None = None,
              properties: Mapping[str, Any] | None = None) -> list[Record]:
        """Bump last-modified to now on ``ids`` or on ``count`` live records drawn at random."""
        with self.lock:
            store = self.stores[otype.name]
            if ids is not None:
                records = []
                for rid in ids:
                    record = store.resolve(rid)
                    if record is None:
                        raise errors.not_found(f"No {otype.singular} with id {rid}", {"ids": [str(rid)]})
                    records.append(record)
            else:
                live = [r for r in store.live_records()]
                self._touch_draws += 1
                draw = random.Random(f"touch:{self.world.seed}:{otype.name}:{self._touch_draws}")
                records = sorted(draw.sample(live, min(count or 0, len(live))), key=lambda r: r.id)
            self.update_many(otype, [(r, dict(properties or {})) for r in records], allow_read_only=True)
            return records

    # -- metadata writes ------------------------------------------------------------------------------

    def pipeline(self, pipeline_id: str) -> dict[str, Any] | None:
        return next((p for p in self.pipelines if p["id"] == pipeline_id), None)

    def add_pipeline(self, label: str, display_order: int, stages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        with self.lock:
            stamp = iso_ms(self.wall_ms())
            pid = str(900_000_000 + len(self.pipelines))
            if any(p["label"] == label for p in self.pipelines):
                raise errors.HubSpotError(409, {
                    "status": "error", "message": f"A pipeline with label {label} already exists",
                    "correlationId": errors.correlation_id(), "category": "CONFLICT"})
            pipeline = {"label": label, "displayOrder": display_order, "id": pid, "stages": [],
                        "createdAt": stamp, "updatedAt": stamp, "archived": False}
            self.pipelines.append(pipeline)
            for stage in stages:
                self.add_stage(pipeline, stage)
            return pipeline

    def add_stage(self, pipeline: dict[str, Any], stage: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            label = str(stage.get("label") or "")
            if not label:
                raise errors.validation("label is required")
            if any(s["label"] == label for s in pipeline["stages"]):
                raise errors.HubSpotError(409, {
                    "status": "error", "message": f"A stage with label {label} already exists in this pipeline",
                    "correlationId": errors.correlation_id(), "category": "CONFLICT"})
            metadata = {str(k): str(v).lower() if isinstance(v, bool) else str(v)
                        for k, v in (stage.get("metadata") or {}).items()}
            metadata.setdefault("isClosed", "false")
            if "probability" not in metadata:
                raise errors.validation("Deal stages require a probability in their metadata",
                                        context={"metadata.probability": ["required"]})
            stamp = iso_ms(self.wall_ms())
            new = {"label": label, "displayOrder": int(stage.get("displayOrder", len(pipeline["stages"]))),
                   "metadata": metadata, "id": str(1_000_000_000 + sum(len(p["stages"]) for p in self.pipelines)),
                   "createdAt": stamp, "updatedAt": stamp, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                   "archived": False}
            pipeline["stages"].append(new)
            pipeline["updatedAt"] = stamp
            return new

    # -- the Python API tests use ----------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {name: {"live": s.live_count, "archived": len(s.archived_order)} for name, s in self.stores.items()}
