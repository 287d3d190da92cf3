"""The store behaves the same on SQLite and PostgreSQL: keyed by source id, soft deletes, merges."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from crmbridge.model import Activity, ActivityKind, EntityType, Person
from crmbridge.store import Store, Watermark
from crmbridge.store.crm_facts import FieldCatalog
from crmbridge.store.engine import migrate

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def person(pid: str, email: str = "ada@example.com", *, at: datetime = T0, **kw) -> Person:
    return Person(source="crm", source_id=pid, email=email, updated_at=at, **kw)


def test_people_are_keyed_by_source_id_so_a_changed_email_updates_the_same_record(store: Store) -> None:
    store.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1", "ada@old.example")])
    result = store.records.commit_page("crm", "contacts", EntityType.PERSON,
                                       [person("1", "ada@new.example", at=T0 + timedelta(minutes=1))])

    assert (result.new, result.changed) == (0, 1)
    stored = store.records.get(EntityType.PERSON, "crm", "1")
    assert stored is not None and stored.email == "ada@new.example"
    assert store.records.counts()["crm"]["contacts"]["live"] == 1


def test_storing_the_same_record_twice_writes_nothing_the_second_time(store: Store) -> None:
    store.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1")])
    again = store.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1")])
    assert again.unchanged == 1 and again.changed_ids == []


def test_a_version_that_only_moved_updated_at_is_no_change(store: Store) -> None:
    # What our own write-back of score fields looks like when read back: nothing we map changed.
    store.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1", at=T0)])
    bumped = store.records.commit_page("crm", "contacts", EntityType.PERSON,
                                       [person("1", at=T0 + timedelta(minutes=3))])

    assert (bumped.unchanged, bumped.changed, bumped.changed_ids) == (1, 0, [])
    # so it cannot make this CRM the most recent source of every field of the golden record
    assert store.records.get(EntityType.PERSON, "crm", "1").updated_at == T0


def test_an_older_version_arriving_late_does_not_overwrite_a_newer_one(store: Store) -> None:
    store.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1", "new@x.example", at=T0)])
    late = store.records.commit_page("crm", "contacts", EntityType.PERSON,
                                     [person("1", "old@x.example", at=T0 - timedelta(hours=1))])
    assert late.stale == 1
    assert store.records.get(EntityType.PERSON, "crm", "1").email == "new@x.example"


def test_archived_records_are_kept_but_no_longer_counted_live(store: Store) -> None:
    store.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1"), person("2", "b@x.example")])
    result = store.records.commit_page("crm", "contacts", EntityType.PERSON, [], archived_ids=["2", "404"])

    assert result.archived == 1
    assert store.records.counts()["crm"]["contacts"] == {"entity": "person", "live": 1, "archived": 1}
    assert store.records.live_count("crm", "contacts", EntityType.PERSON) == 1
    assert store.records.get(EntityType.PERSON, "crm", "2") is not None


def test_a_merged_record_follows_the_surviving_id_and_its_links_move_with_it(store: Store) -> None:
    store.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1"), person("2", "dup@x.example")])
    call = Activity(source="crm", source_id="a1", kind=ActivityKind.CALL, occurred_at=T0, person_ids=["2"])
    store.records.commit_page("crm", "calls", EntityType.ACTIVITY, [call])

    survivor = person("1", at=T0 + timedelta(minutes=5), merged_ids=["2"])
    result = store.records.commit_page("crm", "contacts", EntityType.PERSON, [survivor])

    assert result.merged == 1
    assert store.records.get(EntityType.PERSON, "crm", "2").source_id == "1"
    assert store.records.links_to("crm", EntityType.PERSON, ["1"], EntityType.ACTIVITY) == {"1": ["a1"]}
    assert store.records.links_to("crm", EntityType.PERSON, ["2"], EntityType.ACTIVITY) == {}
    assert store.records.live_count("crm", "contacts", EntityType.PERSON) == 1


def test_a_merge_that_makes_a_new_record_keeps_the_identity_of_the_records_it_merged(store: Store) -> None:
    # HubSpot gives the survivor of a merge a new id and lists both old ids in hs_merged_object_ids.
    store.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1"), person("2", "dup@x.example")])
    first = store.identities.canonical_id(EntityType.PERSON, "crm", "1")
    survivor = person("3", at=T0 + timedelta(minutes=5), merged_ids=["1", "2"])
    store.records.commit_page("crm", "contacts", EntityType.PERSON, [survivor], merged={"1": "3", "2": "3"})

    assert store.identities.canonical_id(EntityType.PERSON, "crm", "3") == first
    assert store.records.live_count("crm", "contacts", EntityType.PERSON) == 1


def test_links_to_an_already_merged_record_are_stored_against_the_survivor(store: Store) -> None:
    store.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1"), person("2", "dup@x.example")])
    store.records.commit_page("crm", "contacts", EntityType.PERSON, [], merged={"2": "1"})
    late = Activity(source="crm", source_id="a9", kind=ActivityKind.PAGE_VIEW, occurred_at=T0, person_ids=["2"])
    store.records.commit_page("crm", "web_events", EntityType.ACTIVITY, [late])

    assert store.records.links_to("crm", EntityType.PERSON, ["1"], EntityType.ACTIVITY) == {"1": ["a9"]}


def test_a_checkpoint_is_committed_with_its_page_or_not_at_all(store: Store, monkeypatch) -> None:
    store.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1")],
                              cursors=[("backfill", {"after": "1"})])
    assert store.cursors.get("crm", "contacts", "backfill") == {"after": "1"}

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(store.records, "_archive", crash)
    with contextlib.suppress(RuntimeError):
        store.records.commit_page("crm", "contacts", EntityType.PERSON, [person("2", "b@x.example")],
                                  cursors=[("backfill", {"after": "2"})])
    assert store.cursors.get("crm", "contacts", "backfill") == {"after": "1"}
    assert store.records.get(EntityType.PERSON, "crm", "2") is None


def test_snapshots_are_equal_for_equal_contents_whatever_the_order_of_writes(database_url, tmp_path) -> None:
    a = Store(database_url)
    a.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1"), person("2", "b@x.example")])
    first = a.snapshot()
    b = Store(f"sqlite:///{tmp_path / 'other.db'}")
    b.records.commit_page("crm", "contacts", EntityType.PERSON, [person("2", "b@x.example")])
    b.records.commit_page("crm", "contacts", EntityType.PERSON, [person("1")])
    assert b.snapshot() == first
    b.records.commit_page("crm", "contacts", EntityType.PERSON, [], archived_ids=["1"])
    assert b.snapshot() != first
    a.close()
    b.close()


def test_migrating_twice_is_harmless(store: Store) -> None:
    migrate(store.engine)
    migrate(store.engine)
    assert store.records.counts() == {}


def test_quarantine_counts_attempts_and_release_forgets(store: Store) -> None:
    store.quarantine.add("crm", "contacts", "7", "bad date", {"id": "7"})
    store.quarantine.add("crm", "contacts", "7", "bad date", {"id": "7"})
    assert store.quarantine.list()[0]["attempts"] == 2
    store.quarantine.release("crm", "contacts", ["7"])
    assert store.quarantine.list() == []


def test_runs_are_recorded_with_their_stats(store: Store) -> None:
    run = store.runs.start("backfill", "crm")
    store.runs.finish(run, "ok", {"contacts": {"new": 3}})
    (last,) = store.runs.last()
    assert last["status"] == "ok" and last["stats"] == {"contacts": {"new": 3}}


def test_the_migrations_build_exactly_the_schema_the_code_declares(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from crmbridge.store.schema import metadata

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_watermark_reads_back_typed_never_moves_back_and_starts_its_look_back_early(store: Store) -> None:
    assert store.cursors.watermark("_job", "plan", "since") is None  # no pass yet: the caller reads everything
    store.cursors.advance("_job", "plan", "since", Watermark(10_000, "p9", lookback_ms=1_000))

    mark = store.cursors.watermark("_job", "plan", "since", lookback_ms=2_500)
    assert mark == Watermark(10_000, "p9", 2_500)  # the reader's look-back today, not the one stored
    assert mark.since_ms == 7_500
    assert mark.advanced(9_000) is mark and mark.advanced(12_000).timestamp_ms == 12_000


def test_a_watermark_stored_before_it_was_typed_is_read_as_one(store: Store) -> None:
    store.cursors.put("_sla", "observe", "stored", {"since_ms": 42_000})
    assert store.cursors.watermark("_sla", "observe", "stored", lookback_ms=5_000).since_ms == 37_000


def test_field_catalogs_and_setup_leave_the_cursor_table_when_an_older_store_is_upgraded(database_url) -> None:
    from alembic import command

    from crmbridge.store.engine import _alembic_config, create_engine_for

    engine = create_engine_for(database_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0007")
        conn.execute(sa.text("INSERT INTO cursors (source, stream, kind, value, updated_ms) VALUES "
                             "('crm', 'persons', 'catalog', '{\"fetched_ms\": 5, \"fields\": {\"Tier\": \"k1\"}}', 6), "
                             "('crm', '_writeback', 'setup', '{\"stage_id\": \"7\"}', 8), "
                             "('crm', 'persons', 'incremental', '{\"since\": \"x\"}', 9)"))
    engine.dispose()
    with Store(database_url) as store:
        assert store.catalogs.get("crm", "persons") == FieldCatalog({"Tier": "k1"}, 5)
        assert store.provisioned.get("crm") == {"stage_id": "7"}
        assert [(c["stream"], c["kind"]) for c in store.cursors.all()] == [("persons", "incremental")]
