"""Backfill and incremental sync of the Pipedrive sandbox through ``Syncer`` into a real SQLite store."""

from __future__ import annotations

from collections import Counter

import pytest

from crmbridge.mapping import SourceMapping
from crmbridge.model import EntityType
from crmbridge.store import Store
from crmbridge.sync import Syncer

STREAM_ENTITIES = {"users": EntityType.OWNER, "pipelines": EntityType.PIPELINE,
                   "organizations": EntityType.COMPANY, "persons": EntityType.PERSON, "deals": EntityType.DEAL,
                   "activities": EntityType.ACTIVITY}


@pytest.fixture
def synced(sandbox_factory, connect, mapping, mapping_path, sqlite_url):
    """A sandbox, a store holding its backfill, and a way to run the next incremental pass as the CLI does."""
    server = sandbox_factory(contacts=800)
    store = Store(sqlite_url)
    connector = connect(server)
    report = Syncer(store, connector, mapping(connector)).backfill()

    def sync():
        # A new process: nothing cached but what the store kept, and the mapping loaded as a file.
        return Syncer(store, connect(server), SourceMapping.load(mapping_path)).sync()

    yield server, store, report, sync
    store.close()


def test_backfill_stores_every_record_with_its_associations(sandbox_factory, connect, mapping, sqlite_url):
    server = sandbox_factory(contacts=800)
    state = server.vendor("pipedrive").state
    with Store(sqlite_url) as store:
        connector = connect(server)
        report = Syncer(store, connector, mapping(connector)).backfill()
        counts = state.counts()
        expected = {"users": counts["users"], "pipelines": counts["pipelines"],
                    "organizations": counts["organizations"], "persons": counts["persons"],
                    "deals": counts["deals"], "activities": counts["activities"]}
        stored = {s: n["live"] for s, n in store.counts()["pipedrive"].items()}
        assert stored == expected
        assert all(s.quarantined == 0 for s in report.streams.values())
        # Every link the account holds is in the store, as the canonical model's id lists.
        deals = {d.source_id: d for d in store.iter_records(EntityType.DEAL, "pipedrive")}
        for row in state.tables["deals"].rows.values():
            deal = deals[str(row["id"])]
            assert deal.person_ids == ([str(row["person_id"])] if row["person_id"] else [])
            assert deal.company_ids == ([str(row["org_id"])] if row["org_id"] else [])
            assert deal.stage_id == str(row["stage_id"]) and deal.status.value == row["status"]
        people = {p.source_id: p for p in store.iter_records(EntityType.PERSON, "pipedrive")}
        assert sum(bool(p.company_ids) for p in people.values()) == sum(
            1 for r in state.tables["persons"].rows.values() if r["org_id"])
        acts = list(store.iter_records(EntityType.ACTIVITY, "pipedrive"))
        assert Counter(a.attributes["type"] for a in acts) == Counter(
            r["type"] for r in state.tables["activities"].rows.values())
        assert all(a.attributes.get("done_at") for a in acts if a.attributes["done"])
        assert store.link_count("pipedrive") > len(deals) + len(acts)
        owners = list(store.iter_records(EntityType.OWNER, "pipedrive"))
        assert {o.active for o in owners} == {True, False} and all(o.timezone for o in owners)
        (pipeline, *_) = [p for p in store.iter_records(EntityType.PIPELINE, "pipedrive") if p.source_id == "1"]
        assert [s.label for s in pipeline.stages][:2] == ["Appointment Scheduled", "Qualified To Buy"]
        # Custom fields arrive under their labels' canonical names.
        assert any(p.custom.get("bant_budget") for p in people.values())
        assert {p.seniority for p in people.values()} <= {"executive", "vp", "director", "manager", "senior",
                                                           "entry", "intern", "student", None}
        companies = list(store.iter_records(EntityType.COMPANY, "pipedrive"))
        assert all(c.domain and "www." not in c.domain and c.domain == c.domain.lower() for c in companies)
        assert all(c.country and len(c.country) == 2 for c in companies)


def test_backfill_pages_at_500_and_costs_the_page_floor(sandbox_factory, connect, mapping, sqlite_url):
    server = sandbox_factory(contacts=3000)
    with Store(sqlite_url) as store:
        connector = connect(server)
        Syncer(store, connector, mapping(connector)).backfill()
    stats = server.vendor("pipedrive").stats()
    counts = stats["counts"]
    for kind in ("persons", "organizations", "activities"):
        pages = -(-counts[kind] // 500)
        assert stats["calls"][f"GET /api/v2/{kind}"] == pages, kind
    assert stats["rate_limited"] == 0


def test_a_sync_with_no_change_costs_one_call_per_object_type(synced):
    server, _, _, sync = synced
    vendor = server.vendor("pipedrive")
    vendor.reset_stats()
    report = sync()
    calls = vendor.stats()["calls"]
    assert all(n == 1 for n in calls.values()), calls
    assert set(calls) == {"GET /v1/users", "GET /api/v2/pipelines", "GET /api/v2/stages",
                          "GET /api/v2/organizations", "GET /api/v2/persons", "GET /api/v2/deals",
                          "GET /api/v2/deals/archived", "GET /api/v2/activities"}
    assert all(s.stored.new == s.stored.changed == s.stored.archived == 0 for s in report.streams.values())


def test_sync_picks_up_exactly_the_modified_deleted_merged_and_archived_records(synced):
    server, store, _, sync = synced
    state = server.vendor("pipedrive").state
    sync()  # anything left from the backfill's own window is settled first
    persons, orgs, deals, acts = (state.live_ids(k) for k in ("persons", "organizations", "deals", "activities"))
    winner, loser, org_loser, org_winner = persons[2], persons[3], orgs[1], orgs[2]
    rows = {k: state.tables[k].rows for k in ("persons", "deals", "activities")}
    # Merging moves the loser's deals, activities (and an organization's people) to the survivor.
    moved = {k: {str(i) for i, r in rows[k].items() if r.get("person_id") == loser or r.get("org_id") == org_loser}
             for k in rows}
    state.update("persons", persons[0], {"job_title": "Chief Revenue Officer"})
    state.delete("persons", persons[1])
    state.merge("persons", loser, winner)
    state.update("organizations", orgs[0], {"name": "Renamed GmbH"})
    state.merge("organizations", org_loser, org_winner)
    state.update("deals", deals[0], {"status": "won"})
    state.archive_deal(deals[1])
    state.delete("deals", deals[2])
    state.update("activities", acts[0], {"done": True, "marked_as_done_time": state.now()})
    state.delete("activities", acts[1])

    report = sync()
    s = {name: r.stored for name, r in report.streams.items()}
    assert set(s["persons"].changed_ids) == {str(persons[0]), str(winner)} | moved["persons"] - {str(persons[1])}
    assert (s["persons"].archived, s["persons"].merged) == (1, 1)
    assert set(s["organizations"].changed_ids) == {str(orgs[0]), str(org_winner)}
    assert (s["organizations"].archived, s["organizations"].merged) == (0, 1)
    assert set(s["deals"].changed_ids) == {str(deals[0]), str(deals[1])} | moved["deals"] - {str(deals[2])}
    assert s["deals"].archived == 1
    assert set(s["activities"].changed_ids) == {str(acts[0])} | moved["activities"] - {str(acts[1])}
    assert s["activities"].archived == 1
    assert s["users"].changed_ids == [] and s["pipelines"].changed_ids == []
    person = store.get(EntityType.PERSON, "pipedrive", str(persons[0]))
    assert person.title == "Chief Revenue Officer"
    assert store.get(EntityType.PERSON, "pipedrive", str(loser)).source_id == str(winner)  # follows the merge
    assert store.get(EntityType.COMPANY, "pipedrive", str(org_loser)).source_id == str(org_winner)
    live = {e: {r.source_id for r in store.iter_records(e, "pipedrive")} for e in STREAM_ENTITIES.values()}
    assert str(persons[1]) not in live[EntityType.PERSON] and str(loser) not in live[EntityType.PERSON]
    assert str(org_loser) not in live[EntityType.COMPANY]
    assert not {str(deals[1]), str(deals[2])} & live[EntityType.DEAL]
    assert str(acts[1]) not in live[EntityType.ACTIVITY]
    assert store.get(EntityType.COMPANY, "pipedrive", str(orgs[0])).name == "Renamed GmbH"
    assert store.get(EntityType.DEAL, "pipedrive", str(deals[0])).status.value == "won"
    assert store.get(EntityType.ACTIVITY, "pipedrive", str(acts[0])).attributes["done"] is True
    # Whatever pointed at the merged-away records now points at the survivors.
    assert store.links_to("pipedrive", EntityType.PERSON, [str(loser)], EntityType.DEAL) == {}
    assert store.links_to("pipedrive", EntityType.COMPANY, [str(org_loser)], EntityType.PERSON) == {}
    # Live counts equal the account's.
    counts = state.counts()
    for stream, kind in (("persons", "persons"), ("organizations", "organizations"), ("deals", "deals"),
                         ("activities", "activities")):
        assert store.live_count("pipedrive", stream, STREAM_ENTITIES[stream]) == counts[kind], stream
    # A second pass finds nothing new.
    again = sync()
    assert all(r.stored.new == r.stored.changed == r.stored.archived == r.stored.merged == 0
               for r in again.streams.values())


def test_more_changes_than_a_page_are_walked_and_checkpointed(sandbox_factory, connect, mapping, mapping_path,
                                                              sqlite_url):
    server = sandbox_factory(contacts=1600)
    state = server.vendor("pipedrive").state
    with Store(sqlite_url) as store:
        connector = connect(server)
        Syncer(store, connector, mapping(connector)).backfill()
        touched = state.touch("activities", count=10_000)
        assert len(touched) > 1000
        report = Syncer(store, connect(server), SourceMapping.load(mapping_path)).sync(["activities"])
        assert set(report.streams["activities"].stored.changed_ids) == {str(i) for i in touched}
        assert report.api_calls["GET /api/v2/activities"] == -(-len(touched) // 500)
        cursor = store.get_cursor("pipedrive", "activities", "incremental")
        assert cursor["since"] == max(state.tables["activities"].rows[i]["update_time"] for i in touched)


def test_faults_and_rate_limits_converge_to_the_same_store(sandbox_factory, connect, mapping, tmp_path):
    clean = sandbox_factory(contacts=800)
    faulty = sandbox_factory(contacts=800, faults={"5xx": 0.15, "429": 0.1, "timeout": 0.12, "reset": 0.08},
                             pipedrive_stall_seconds=0.6, pipedrive_plan="lite", time_scale=20.0)
    snapshots = []
    for server, name in ((clean, "clean"), (faulty, "faulty")):
        with Store(f"sqlite:///{tmp_path / name}.db") as store:
            connector = connect(server, read_timeout=0.25, max_attempts=15, backoff_base_seconds=0.01,
                                backoff_max_seconds=0.05)
            report = Syncer(store, connector, mapping(connector)).backfill()
            snapshots.append(store.snapshot())
            if name == "faulty":
                assert report.retries > 0
    assert snapshots[0] == snapshots[1]
    faults = faulty.vendor("pipedrive").stats()["faults"]
    assert {"5xx", "429", "timeout"} <= set(faults)


def test_a_mapping_loaded_without_the_catalog_reads_the_same_values(sandbox_factory, connect, mapping, tmp_path):
    """The CLI loads mappings as files: ``label:`` then names the label, which the connector honours."""
    server = sandbox_factory(contacts=400)
    snapshots = []
    for name, resolve in (("resolved", True), ("plain", False)):
        with Store(f"sqlite:///{tmp_path / name}.db") as store:
            connector = connect(server)
            loaded = mapping(connector) if resolve else SourceMapping.load(mapping(connector).file)
            Syncer(store, connector, loaded).backfill()
            snapshots.append(store.snapshot())
    assert snapshots[0] == snapshots[1]
