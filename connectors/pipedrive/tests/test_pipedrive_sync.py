"""Backfill and incremental sync of the Pipedrive sandbox through ``Syncer`` into a real SQLite store."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from requests.adapters import HTTPAdapter

from crmbridge.errors import ConfigError
from crmbridge.mapping import SourceMapping
from crmbridge.model import EntityType
from crmbridge.store import Store
from crmbridge.sync import Syncer

STREAM_ENTITIES = {"users": EntityType.OWNER, "pipelines": EntityType.PIPELINE,
                   "organizations": EntityType.COMPANY, "persons": EntityType.PERSON, "deals": EntityType.DEAL,
                   "activities": EntityType.ACTIVITY}
V2_LISTS = ("organizations", "persons", "deals", "activities")
NO_CHANGE_CALLS = {"GET /v1/users", "GET /api/v2/pipelines", "GET /api/v2/stages", "GET /api/v2/organizations",
                   "GET /api/v2/persons", "GET /api/v2/deals", "GET /api/v2/deals/archived",
                   "GET /api/v2/activities"}
DAY = 86_400


def epoch_ms(stamp: str) -> int:
    """A Pipedrive RFC 3339 time as epoch milliseconds."""
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def live_sets(store, state) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Live ids per v2 stream: (the store's, the CRM's)."""
    ours = {k: store.records.live_ids("pipedrive", k, STREAM_ENTITIES[k]) for k in V2_LISTS}
    theirs = {k: {str(i) for i in state.live_ids(k)} for k in V2_LISTS}
    return ours, theirs


@pytest.fixture
def synced(sandbox_factory, connect, mapping, sqlite_url):
    """A sandbox, a store holding its backfill, and a way to run the next incremental pass as the CLI does."""
    server = sandbox_factory(contacts=800)
    store = Store(sqlite_url)
    connector = connect(server)
    report = Syncer(store, connector, mapping(store, connector)).backfill()

    def sync(*, reconcile: bool = False, **options):
        # A new process: nothing cached but what the store kept (cursors, the core's field catalogs).
        fresh = connect(server, **options)
        return Syncer(store, fresh, mapping(store, fresh)).sync(reconcile=reconcile)

    yield server, store, report, sync
    store.close()


def sandbox_custom(state, mapping_file) -> dict[str, dict[str, str]]:
    """Each live person's custom fields as the account holds them, read through the mapping's labels and
    option values: person id -> canonical name -> canonical value (fields left empty are absent)."""
    custom = yaml.safe_load(mapping_file.read_text())["streams"]["persons"]["custom"]
    out: dict[str, dict[str, str]] = {}
    for pid in state.live_ids("persons"):
        row = state.tables["persons"].rows[pid].get("custom_fields") or {}
        values = {}
        for name, spec in custom.items():
            option = row.get(state.catalogs.key("person", spec["label"]))
            if option is not None:
                labels = {i: label for label, i in state.catalogs.options[("person", spec["label"])].items()}
                values[name] = spec["values"][labels[option]]
        out[str(pid)] = values
    return out


def stored_custom(people) -> dict[str, dict[str, str]]:
    return {sid: {k: v for k, v in p.custom.items() if v is not None} for sid, p in people.items()}


def test_backfill_stores_every_record_with_its_associations(sandbox_factory, connect, mapping, sqlite_url,
                                                              mapping_path):
    server = sandbox_factory(contacts=800)
    state = server.vendor("pipedrive").state
    with Store(sqlite_url) as store:
        connector = connect(server)
        report = Syncer(store, connector, mapping(store, connector)).backfill()
        counts = state.counts()
        expected = {"users": counts["users"], "pipelines": counts["pipelines"],
                    "organizations": counts["organizations"], "persons": counts["persons"],
                    "deals": counts["deals"], "activities": counts["activities"]}
        stored = {s: n["live"] for s, n in store.records.counts()["pipedrive"].items()}
        assert stored == expected
        assert all(s.quarantined == 0 for s in report.streams.values())
        # Every link the account holds is in the store, as the canonical model's id lists.
        deals = {d.source_id: d for d in store.records.iter(EntityType.DEAL, "pipedrive")}
        for row in state.tables["deals"].rows.values():
            deal = deals[str(row["id"])]
            assert deal.person_ids == ([str(row["person_id"])] if row["person_id"] else [])
            assert deal.company_ids == ([str(row["org_id"])] if row["org_id"] else [])
            assert deal.stage_id == str(row["stage_id"]) and deal.status.value == row["status"]
        people = {p.source_id: p for p in store.records.iter(EntityType.PERSON, "pipedrive")}
        assert sum(bool(p.company_ids) for p in people.values()) == sum(
            1 for r in state.tables["persons"].rows.values() if r["org_id"])
        acts = list(store.records.iter(EntityType.ACTIVITY, "pipedrive"))
        assert Counter(a.attributes["type"] for a in acts) == Counter(
            r["type"] for r in state.tables["activities"].rows.values())
        assert all(a.attributes.get("done_at") for a in acts if a.attributes["done"])
        assert store.records.link_count("pipedrive") > len(deals) + len(acts)
        owners = list(store.records.iter(EntityType.OWNER, "pipedrive"))
        assert {o.active for o in owners} == {True, False} and all(o.timezone for o in owners)
        (pipeline, *_) = [p for p in store.records.iter(EntityType.PIPELINE, "pipedrive") if p.source_id == "1"]
        assert [s.label for s in pipeline.stages][:2] == ["Appointment Scheduled", "Qualified To Buy"]
        # Custom fields arrive under their labels' canonical names, each person's own value.
        expected = sandbox_custom(state, mapping_path)
        assert sum(1 for v in expected.values() if v) > len(expected) // 4  # not a comparison of empties
        assert stored_custom(people) == expected
        assert {p.seniority for p in people.values()} <= {"executive", "vp", "director", "manager", "senior",
                                                           "entry", "intern", "student", None}
        companies = list(store.records.iter(EntityType.COMPANY, "pipedrive"))
        assert all(c.domain and "www." not in c.domain and c.domain == c.domain.lower() for c in companies)
        assert all(c.country and len(c.country) == 2 for c in companies)


def test_backfill_pages_at_500_and_costs_the_page_floor(sandbox_factory, connect, mapping, sqlite_url):
    server = sandbox_factory(contacts=3000)
    with Store(sqlite_url) as store:
        connector = connect(server)
        Syncer(store, connector, mapping(store, connector)).backfill()
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
    # One call per endpoint, and no field catalog read: the store keeps them (the cursors carry none).
    assert all(n == 1 for n in calls.values()), calls
    assert set(calls) == NO_CHANGE_CALLS
    assert all(s.stored.new == s.stored.changed == s.stored.archived == 0 for s in report.streams.values())


def test_sync_picks_up_exactly_the_modified_deleted_merged_and_archived_records(synced):
    server, store, _, sync = synced
    state = server.vendor("pipedrive").state
    sync()  # anything left from the backfill's own window is settled first
    persons, orgs, deals, acts = (state.live_ids(k) for k in ("persons", "organizations", "deals", "activities"))
    rows = {k: state.tables[k].rows for k in ("persons", "deals", "activities")}
    # Merged away: a person with deals, and an organization with people and deals.
    linked = {k: {r.get(f) for r in rows[k].values()} for k, f in (("deals", "person_id"), ("persons", "org_id"))}
    deal_orgs = {r["org_id"] for r in rows["deals"].values()}
    winner, org_winner = persons[2], orgs[2]
    loser = next(p for p in persons[4:] if p in linked["deals"])
    org_loser = next(o for o in orgs[3:] if o in linked["persons"] and o in deal_orgs)

    def pointing_at(person: int | None, org: int | None) -> dict[str, set[str]]:
        return {k: {str(i) for i, r in rows[k].items() if not r["is_deleted"] and (
            (person and (r.get("person_id") == person or any(
                p.get("person_id") == person for p in r.get("participants") or ())))
            or (org and r.get("org_id") == org))} for k in rows}

    # A merge moves the merged-away record's deals, activities (and an organization's people) to the
    # survivor; Pipedrive lists them as updated, and lists the merged-away record nowhere.
    moved = pointing_at(loser, org_loser)
    to_winner, to_org_winner = pointing_at(loser, None)["deals"], pointing_at(None, org_loser)["deals"]
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
    gone_persons = {str(persons[1]), str(loser)}
    # A person the organization merge moved is a change only if what we hold still names another company
    # (a bare bump of its update time is none).
    held = {sid: store.records.get(EntityType.PERSON, "pipedrive", sid) for sid in moved["persons"]}
    moved_persons = {sid for sid, person in held.items()
                     if person is None or person.company_ids != [str(rows["persons"][int(sid)]["org_id"])]}

    report = sync(reconcile=True)
    s = {name: r.stored for name, r in report.streams.items()}
    # The merge's survivor is listed as updated, but nothing it says changed (the sandbox's merge moves the
    # loser's links, not its fields): the merged-away person is archived below, the survivor stays as held.
    assert set(s["persons"].changed_ids) == ({str(persons[0])} | moved_persons) - gone_persons
    assert (s["persons"].archived, s["persons"].merged) == (2, 0)  # deleted, and merged away
    assert set(s["organizations"].changed_ids) == {str(orgs[0])}  # the survivor, likewise, says nothing new
    assert (s["organizations"].archived, s["organizations"].merged) == (1, 0)
    assert set(s["deals"].changed_ids) == ({str(deals[0]), str(deals[1])} | moved["deals"]) - {str(deals[2])}
    assert s["deals"].archived == 1
    assert set(s["activities"].changed_ids) == ({str(acts[0])} | moved["activities"]) - {str(acts[1])}
    assert s["activities"].archived == 1
    assert s["users"].changed_ids == [] and s["pipelines"].changed_ids == []
    assert all(r.reconciled for name, r in report.streams.items() if name in V2_LISTS)
    # The store holds exactly the account's live records.
    ours, theirs = live_sets(store, state)
    assert ours == theirs
    assert not gone_persons & ours["persons"] and str(org_loser) not in ours["organizations"]
    assert store.records.get(EntityType.DEAL, "pipedrive", str(deals[1])).archived  # kept, as an archived deal
    assert store.records.get(EntityType.PERSON, "pipedrive", str(persons[0])).title == "Chief Revenue Officer"
    assert store.records.get(EntityType.COMPANY, "pipedrive", str(orgs[0])).name == "Renamed GmbH"
    assert store.records.get(EntityType.DEAL, "pipedrive", str(deals[0])).status.value == "won"
    assert store.records.get(EntityType.ACTIVITY, "pipedrive", str(acts[0])).attributes["done"] is True
    # What pointed at the merged-away records came back pointing at the survivors.
    assert moved["deals"] and moved["activities"] and moved["persons"]
    for entity in (EntityType.DEAL, EntityType.ACTIVITY):
        assert store.records.links_to("pipedrive", EntityType.PERSON, [str(loser)], entity) == {}
        assert store.records.links_to("pipedrive", EntityType.COMPANY, [str(org_loser)], entity) == {}
    assert store.records.links_to("pipedrive", EntityType.COMPANY, [str(org_loser)], EntityType.PERSON) == {}
    for entity, survivor, expected in ((EntityType.PERSON, winner, to_winner),
                                       (EntityType.COMPANY, org_winner, to_org_winner)):
        followers = store.records.links_to("pipedrive", entity, [str(survivor)], EntityType.DEAL)
        assert {d for ids in followers.values() for d in ids} >= expected - {str(deals[2])}
    # A second pass finds nothing new, reconciling or not.
    for again in (sync(), sync(reconcile=True)):
        assert all(r.stored.new == r.stored.changed == r.stored.archived == r.stored.merged == 0
                   for r in again.streams.values())


def test_deletions_pipedrive_lists_nowhere_are_found_only_by_reconciling(synced):
    server, store, _, sync = synced
    state = server.vendor("pipedrive").state
    person, org, act, deal = (state.live_ids(k)[-1] for k in ("persons", "organizations", "activities", "deals"))
    state.delete("persons", person)
    state.delete("organizations", org)
    state.delete("activities", act)
    state.delete("deals", deal)
    real = state.clock
    state.clock = lambda: real() + 31 * DAY  # the deal's deletion is now older than deals' 30 days

    plain = sync()
    assert all(r.stored.archived == 0 for r in plain.streams.values())
    ours, theirs = live_sets(store, state)
    assert {k: ours[k] - theirs[k] for k in V2_LISTS} == {
        "persons": {str(person)}, "organizations": {str(org)}, "activities": {str(act)}, "deals": {str(deal)}}

    reconciled = sync(reconcile=True)
    assert {k: reconciled.streams[k].stored.archived for k in V2_LISTS} == dict.fromkeys(V2_LISTS, 1)
    ours, theirs = live_sets(store, state)
    assert ours == theirs


class RecordingAdapter(HTTPAdapter):
    """Keeps the path (under /api/v2) and query of every request a connector sends."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[str, dict[str, list[str]]]] = []

    def send(self, request, *args, **kwargs):
        url = urlsplit(request.url)
        self.asked.append((url.path.rsplit("/api/v2/", 1)[-1], parse_qs(url.query)))
        return super().send(request, *args, **kwargs)


def test_reconciling_lists_every_live_id_at_500_a_page_with_one_custom_field(synced, connect, mapping):
    server, store, _, _ = synced
    vendor = server.vendor("pipedrive")
    counts = vendor.state.counts()
    connector, recorder = connect(server), RecordingAdapter()
    connector.client.session.mount("http://", recorder)
    vendor.reset_stats()
    report = Syncer(store, connector, mapping(store, connector)).sync(reconcile=True)
    assert all(r.stored.archived == 0 and r.reconciled for k, r in report.streams.items() if k in V2_LISTS)
    stats = vendor.stats()
    pages = {k: -(-counts[k] // 500) for k in V2_LISTS}
    # On top of the no-change pass: ceil(n / 500) id pages per stream, 10 tokens each.
    expected = dict.fromkeys(NO_CHANGE_CALLS, 1)
    for kind, n in pages.items():
        expected[f"GET /api/v2/{kind}"] += n
    assert stats["calls"] == expected
    no_change_tokens = 20 + 5 + 5 + 10 * 4 + 20  # users (v1), pipelines, stages, four lists, archived deals
    assert stats["tokens_spent"] == no_change_tokens + 10 * sum(pages.values())
    # The id listings (by id; the incremental pass sorts by update time): 500 a page, and of the custom
    # fields (which persons, organizations and deals would all send) a single one.
    listings = [(path, q) for path, q in recorder.asked if q.get("sort_by") == ["id"] and path in V2_LISTS]
    assert Counter(path for path, _ in listings) == pages
    for path, query in listings:
        assert query["limit"] == ["500"] and "updated_since" not in query and "status" not in query
        if path == "activities":
            assert "custom_fields" not in query  # activities have no custom fields
        else:
            assert len(query["custom_fields"][0].split(",")) == 1, query


def test_more_changes_than_a_page_are_walked_and_checkpointed(sandbox_factory, connect, mapping, sqlite_url):
    server = sandbox_factory(contacts=1600)
    state = server.vendor("pipedrive").state
    with Store(sqlite_url) as store:
        connector = connect(server)
        Syncer(store, connector, mapping(store, connector)).backfill()
        touched = state.touch("activities", count=10_000, changes={"subject": "Followed up", "done": True})
        assert len(touched) > 1000
        fresh = connect(server)
        report = Syncer(store, fresh, mapping(store, fresh)).sync(["activities"])
        assert set(report.streams["activities"].stored.changed_ids) == {str(i) for i in touched}
        assert report.api_calls["GET /api/v2/activities"] == -(-len(touched) // 500)
        # The watermark is the newest update time the pass saw, and the record seen last at it.
        mark = store.cursors.watermark("pipedrive", "activities", "incremental")
        newest = max(state.tables["activities"].rows[i]["update_time"] for i in touched)
        assert mark.timestamp_ms == epoch_ms(newest)
        at_newest = {str(i) for i in touched if state.tables["activities"].rows[i]["update_time"] == newest}
        assert mark.last_id in at_newest and not set(mark.position) & {"since", "fields"}


def test_faults_and_rate_limits_converge_to_the_same_store(sandbox_factory, connect, mapping, tmp_path):
    clean = sandbox_factory(contacts=800)
    faulty = sandbox_factory(contacts=800, faults={"5xx": 0.15, "429": 0.1, "timeout": 0.12, "reset": 0.08},
                             pipedrive_stall_seconds=0.6, pipedrive_plan="lite", time_scale=20.0)
    snapshots = []
    later = time.time() + 600  # after either backfill has started, however long the faults make it
    for server, name in ((clean, "clean"), (faulty, "faulty")):
        state = server.vendor("pipedrive").state
        state.clock = lambda: later  # both accounts stamp their changes alike
        with Store(f"sqlite:///{tmp_path / name}.db") as store:
            connector = connect(server, read_timeout=0.25, max_attempts=15, backoff_base_seconds=0.01,
                                backoff_max_seconds=0.05)
            report = Syncer(store, connector, mapping(store, connector)).backfill()
            # The same changes in both accounts, then a reconciling pass through the same faults.
            persons = state.live_ids("persons")
            state.delete("persons", persons[0])
            state.merge("persons", persons[1], persons[2])
            state.delete("activities", state.live_ids("activities")[0])
            state.update("deals", state.live_ids("deals")[0], {"status": "lost"})
            synced = Syncer(store, connector, mapping(store, connector)).sync(reconcile=True)
            snapshots.append(store.snapshot())
            ours, theirs = live_sets(store, state)
            assert ours == theirs, name
            if name == "faulty":
                assert report.retries + synced.retries > 0
    assert snapshots[0] == snapshots[1]
    faults = faulty.vendor("pipedrive").stats()["faults"]
    assert {"5xx", "429", "timeout"} <= set(faults)


def test_a_mapping_loaded_without_the_field_catalogs_is_refused_with_a_clear_message(sandbox_factory, connect,
                                                                                      mapping_path, sqlite_url):
    """``label:`` names a custom field only once resolved against Pipedrive's catalog (``load_mapping``)."""
    server = sandbox_factory(contacts=200)
    with Store(sqlite_url) as store:
        syncer = Syncer(store, connect(server), SourceMapping.load(mapping_path))
        with pytest.raises(ConfigError) as caught:
            syncer.backfill(["persons"])
    message = str(caught.value)
    assert "BANT budget" in message and "crmbridge.sync.load_mapping" in message
    assert "streams.persons" in message


def test_field_catalogs_are_read_once_a_day_not_on_every_pass(synced):
    server, store, _, sync = synced
    vendor = server.vendor("pipedrive")
    fields = {"GET /v1/personFields", "GET /v1/organizationFields", "GET /v1/dealFields"}
    vendor.reset_stats()
    sync()
    sync(reconcile=True)
    assert not fields & set(vendor.stats()["calls"])
    for stream in ("persons", "organizations", "deals"):  # the core's copies are a day and a second old
        cached = store.catalogs.get("pipedrive", stream)
        store.catalogs.put("pipedrive", stream, replace(cached, fetched_ms=cached.fetched_ms - (DAY + 1) * 1000))
    vendor.reset_stats()
    sync()
    assert {k: v for k, v in vendor.stats()["calls"].items() if k in fields} == dict.fromkeys(fields, 1)
    vendor.reset_stats()
    sync()
    assert set(vendor.stats()["calls"]) == NO_CHANGE_CALLS
