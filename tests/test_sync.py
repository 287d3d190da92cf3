"""The sync runner with an in-memory CRM: checkpoints, quarantine, reconciliation, dry runs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from crmbridge.connectors import ApiUsage, Page, RawRecord, StreamSpec, StreamState
from crmbridge.errors import ConfigError
from crmbridge.mapping import SourceMapping
from crmbridge.model import EntityType
from crmbridge.store import Store, Watermark
from crmbridge.store.crm_facts import FieldCatalog
from crmbridge.store.cursors import now_ms
from crmbridge.sync import Syncer, merge_pages

MAPPING = SourceMapping.from_text("""
source: mem
streams:
  people:
    entity: person
    fields:
      email: {from: email, transform: email}
      updated_at: {from: updated, transform: datetime}
""")


class MemoryCrm:
    """A tiny CRM: people in pages of two, changes since a version number, no live counts."""

    source = "mem"

    def __init__(self, people: dict[str, dict[str, Any]]) -> None:
        self.people = people
        self.version = 1
        self.calls = 0

    def streams(self) -> list[StreamSpec]:
        return [StreamSpec("people", EntityType.PERSON, 2)]

    def request_properties(self, wanted: Mapping[str, Any]) -> None:
        return None

    def _raw(self, pid: str) -> RawRecord:
        return RawRecord("people", pid, dict(self.people[pid]))

    def backfill(self, stream: str, resume: Mapping[str, Any] | None) -> Iterator[Page]:
        ids = sorted(self.people)
        start = int((resume or {}).get("at", 0))
        for i in range(start, len(ids), 2):
            self.calls += 1
            done = i + 2 >= len(ids)
            yield Page(stream, [self._raw(p) for p in ids[i:i + 2]], checkpoint={"at": i + 2, "done": done})

    def start_cursor(self, stream: str) -> Mapping[str, Any]:
        return {"version": self.version}

    def changes(self, stream: str, state: StreamState) -> Iterator[Page]:
        self.calls += 1
        since = state.cursor["version"]
        changed = [p for p, v in self.people.items() if v.get("v", 0) > since]
        yield Page(stream, [self._raw(p) for p in sorted(changed)], checkpoint={"version": self.version})

    def reconcile(self, stream: str) -> Iterator[Page]:
        self.calls += 1
        yield Page(stream, live_ids=sorted(self.people))

    def field_catalog(self, stream: str) -> Mapping[str, str]:
        return {}

    def usage(self) -> ApiUsage:
        return ApiUsage({"GET /people": self.calls})

    def close(self) -> None:
        return None


def _people(n: int) -> dict[str, dict[str, Any]]:
    return {f"{i:03d}": {"email": f"p{i}@x.example", "updated": "2026-01-01T00:00:00Z"} for i in range(n)}


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    with Store(sqlite_url) as s:
        yield s


def test_a_deletion_no_answer_reports_is_found_by_reconciling_every_live_id(store: Store) -> None:
    crm = MemoryCrm(_people(5))
    Syncer(store, crm, MAPPING).backfill()
    del crm.people["003"]

    plain = Syncer(store, crm, MAPPING).sync()
    assert store.records.live_count("mem", "people", EntityType.PERSON) == 5 and not plain.streams["people"].reconciled

    report = Syncer(store, crm, MAPPING).sync(reconcile=True)
    assert report.streams["people"].stored.archived == 1
    assert store.records.live_ids("mem", "people", EntityType.PERSON) == {"000", "001", "002", "004"}
    assert store.records.get(EntityType.PERSON, "mem", "003").archived is True


def test_a_record_that_fails_to_map_is_quarantined_and_the_rest_are_stored(store: Store) -> None:
    people = _people(4)
    people["002"]["updated"] = "the day before yesterday"
    crm = MemoryCrm(people)
    report = Syncer(store, crm, MAPPING).backfill()

    assert report.streams["people"].quarantined == 1
    assert store.records.live_count("mem", "people", EntityType.PERSON) == 3
    assert [q["source_id"] for q in store.quarantine.list()] == ["002"]

    crm.people["002"].update(updated="2026-01-02T00:00:00Z", v=2)
    crm.version = 2
    Syncer(store, crm, MAPPING).sync()
    assert store.quarantine.list() == []
    assert store.records.live_count("mem", "people", EntityType.PERSON) == 4


def test_a_dry_run_reads_and_maps_but_stores_nothing(store: Store) -> None:
    report = Syncer(store, MemoryCrm(_people(3)), MAPPING, dry_run=True).backfill()
    assert report.streams["people"].stored.new == 3
    assert store.records.counts() == {} and store.runs.last() == []


def test_a_finished_backfill_leaves_no_checkpoint_and_an_incremental_cursor(store: Store) -> None:
    Syncer(store, MemoryCrm(_people(3)), MAPPING).backfill()
    assert store.cursors.get("mem", "people", "backfill") is None
    assert store.cursors.watermark("mem", "people", "incremental") == Watermark(position={"version": 1})


class StampedCrm(MemoryCrm):
    """Changes since a time: the checkpoint's ``since_ms`` and ``last_id`` are its watermark, ``page`` its own."""

    def start_cursor(self, stream: str) -> Mapping[str, Any]:
        return {"since_ms": 1_000, "page": "p0"}

    def changes(self, stream: str, state: StreamState) -> Iterator[Page]:
        self.seen = dict(state.cursor or {})
        yield Page(stream, [], checkpoint={"since_ms": 5_000, "last_id": "004", "page": "p1"})


def test_the_incremental_cursor_is_a_typed_watermark_and_the_connector_gets_its_checkpoint_back(store: Store) -> None:
    crm = StampedCrm(_people(3))
    Syncer(store, crm, MAPPING).backfill()
    assert store.cursors.watermark("mem", "people", "incremental") == Watermark(1_000, position={"page": "p0"})

    Syncer(store, crm, MAPPING).sync()

    assert crm.seen == {"since_ms": 1_000, "page": "p0"}
    assert store.cursors.watermark("mem", "people", "incremental") == Watermark(5_000, "004", position={"page": "p1"})


def test_an_incremental_cursor_stored_before_watermarks_were_typed_resumes_where_it_was(store: Store) -> None:
    crm = StampedCrm(_people(3))
    Syncer(store, crm, MAPPING).backfill()
    store.cursors.put("mem", "people", "incremental", {"since_ms": 2_000, "page": "old"})

    Syncer(store, crm, MAPPING).sync()

    assert crm.seen == {"since_ms": 2_000, "page": "old"}


def test_sync_before_any_backfill_says_what_to_run(store: Store) -> None:
    with pytest.raises(ConfigError, match="crmbridge backfill --source mem"):
        Syncer(store, MemoryCrm(_people(1)), MAPPING).sync()


def test_pages_stored_together_keep_the_last_checkpoint_and_every_record() -> None:
    a = Page("people", [RawRecord("people", "1", {})], checkpoint={"at": 1})
    b = Page("people", [RawRecord("people", "2", {})], archived_ids=["9"], checkpoint=None, live_total=7)
    merged = merge_pages([a, b])
    assert [r.id for r in merged.records] == ["1", "2"]
    assert merged.archived_ids == ["9"] and merged.checkpoint == {"at": 1} and merged.live_total == 7


def test_reconciling_refuses_to_archive_most_of_a_stream_at_once(store: Store) -> None:
    crm = MemoryCrm(_people(40))
    Syncer(store, crm, MAPPING).backfill()
    crm.people = {k: v for k, v in crm.people.items() if k < "005"}  # the token now sees 5 of 40

    report = Syncer(store, crm, MAPPING).sync(reconcile=True)

    assert report.streams["people"].reconcile_refused == 35
    assert store.records.live_count("mem", "people", EntityType.PERSON) == 40


class CatalogCrm(MemoryCrm):
    """A CRM whose values need more than label -> key (option labels): it holds its catalog in memory,
    reads it from the 'API' when it has none, and lets the core keep it between processes."""

    def __init__(self, people: dict[str, dict[str, Any]], options: dict[str, str]) -> None:
        super().__init__(people)
        self.options, self.catalog_reads = options, 0
        self.held: FieldCatalog | None = None

    def _raw(self, pid: str) -> RawRecord:
        if self.held is None or any(str(p.get("tier")) not in self.held.detail for p in self.people.values()):
            self.catalog_reads += 1
            self.held = FieldCatalog({"Tier": "tier"}, self.clock, dict(self.options))
        values = dict(self.people[pid])
        values["tier"] = self.held.detail.get(str(values.get("tier")))
        return RawRecord("people", pid, values)

    def held_field_catalog(self, stream: str) -> FieldCatalog | None:
        return self.held

    def restore_field_catalog(self, stream: str, catalog: FieldCatalog) -> None:
        if self.held is None or self.held.fetched_ms < catalog.fetched_ms:
            self.held = catalog


TIERED = SourceMapping.from_text("""
source: mem
streams:
  people:
    entity: person
    fields:
      email: {from: email, transform: email}
    custom:
      tier: tier
""")


def test_a_catalog_the_connector_holds_is_kept_by_the_store_not_the_cursor_and_handed_to_the_next_process(
        store: Store) -> None:
    people = {pid: {**p, "tier": 7} for pid, p in _people(3).items()}
    first = CatalogCrm(people, {"7": "Gold"})
    first.clock = now_ms()
    Syncer(store, first, TIERED).backfill()
    assert first.catalog_reads == 1
    assert store.catalogs.get("mem", "people").detail == {"7": "Gold"}
    assert all("7" not in str(row["value"]) for row in store.cursors.all("mem"))

    # A new process: the store's catalog is handed over, so values read with no catalog read.
    people["001"].update(v=2)
    second = CatalogCrm(people, {"7": "Gold", "8": "Silver"})
    second.version, second.clock = 2, now_ms()
    Syncer(store, second, TIERED).sync()
    assert second.catalog_reads == 0 and store.records.get(EntityType.PERSON, "mem", "001").custom["tier"] == "Gold"

    # An option the kept catalog lacks: read once, kept, and the process after reads none.
    people["002"].update(v=3, tier=8)
    third = CatalogCrm(people, {"7": "Gold", "8": "Silver"})
    third.version, third.clock = 3, now_ms() + 1
    Syncer(store, third, TIERED).sync()
    assert third.catalog_reads == 1 and store.records.get(EntityType.PERSON, "mem", "002").custom["tier"] == "Silver"
    assert store.catalogs.get("mem", "people").detail == {"7": "Gold", "8": "Silver"}
    people["000"].update(v=4, tier=8)
    fourth = CatalogCrm(people, {"7": "Gold", "8": "Silver"})
    fourth.version, fourth.clock = 4, now_ms() + 2
    Syncer(store, fourth, TIERED).sync()
    assert fourth.catalog_reads == 0 and store.records.get(EntityType.PERSON, "mem", "000").custom["tier"] == "Silver"
