"""HubSpot end to end on the sandbox: complete backfill, frugal and exact incremental sync."""

from __future__ import annotations

import time

import hubspot as sdk
import pytest

from crmbridge.model import EntityType
from crmbridge.sandbox import SandboxServer
from crmbridge.store import PageResult, Store
from crmbridge.sync import RunReport

from .conftest import TIME_SCALE, Backfilled, syncer

CRM_TYPES = ("contacts", "companies", "deals", "calls", "emails", "meetings", "notes", "tasks")

pytestmark = pytest.mark.xdist_group("hubspot-e2e")


def test_backfill_stores_every_live_record_of_every_object_type(hubspot: SandboxServer, store_copy: Store) -> None:
    sandbox = hubspot.vendor("hubspot")
    counts = store_copy.records.counts()["hubspot"]
    for object_type in CRM_TYPES:
        assert counts[object_type]["live"] == sandbox.count(object_type), object_type
    assert counts["web_events"]["live"] == len(sandbox.world.behaviours)
    assert counts["owners"]["live"] == len(sandbox.world.owners)
    assert counts["pipelines"]["live"] == len(sandbox.world.pipelines)


def test_backfill_maps_the_properties_people_are_scored_on(hubspot: SandboxServer, store_copy: Store) -> None:
    sandbox = hubspot.vendor("hubspot")
    for cid in sandbox.ids("contacts")[:500]:
        source = sandbox.get("contacts", cid)
        person = store_copy.records.get(EntityType.PERSON, "hubspot", cid)
        assert person.email == (source.get("email") or "").strip().lower() or None
        assert person.title == source.get("jobtitle")
        assert person.updated_at is not None and person.created_at is not None
    for cid in sandbox.ids("companies")[:200]:
        company, source = store_copy.records.get(EntityType.COMPANY, "hubspot", cid), sandbox.get("companies", cid)
        assert company.name == source.get("name")
        assert (company.industry is None) == (source.get("industry") is None)


def test_backfill_stores_every_association(hubspot: SandboxServer, store_copy: Store) -> None:
    sandbox = hubspot.vendor("hubspot")
    contacts = sandbox.ids("contacts")
    stored = store_copy.records.links_to("hubspot", EntityType.COMPANY, [
        c for cid in contacts for c in sandbox.associations("contacts", cid, "companies")], EntityType.PERSON)
    expected = {(cid, co) for cid in contacts for co in sandbox.associations("contacts", cid, "companies")}
    assert {(p, co) for co, people in stored.items() for p in people} == expected
    for cid in sandbox.ids("calls")[:300]:
        call = store_copy.records.get(EntityType.ACTIVITY, "hubspot", cid)
        assert set(call.person_ids) == set(sandbox.associations("calls", cid, "contacts"))
        assert set(call.deal_ids) == set(sandbox.associations("calls", cid, "deals"))


def test_backfill_list_calls_stay_within_five_percent_of_the_page_size_floor(
        hubspot: SandboxServer, backfilled: Backfilled) -> None:
    sandbox = hubspot.vendor("hubspot")
    floor = sum(-(-sandbox.count(t) // 100) for t in CRM_TYPES) + -(-len(sandbox.world.behaviours) // 100)
    lists = sum(n for endpoint, n in backfilled.report.api_calls.items()
                if endpoint.startswith("GET /crm/v3/objects/") or endpoint == "GET /events/v3/events")
    assert lists <= 1.05 * floor, (lists, floor)


def _per_stream_calls(report: RunReport) -> dict[str, int]:
    calls: dict[str, int] = {}
    for endpoint, n in report.api_calls.items():
        path = endpoint.split(" ", 1)[1]
        stream = {"/crm/v3/owners": "owners", "/crm/v3/pipelines/deals": "pipelines",
                  "/events/v3/events": "web_events"}.get(path) or path.split("/")[4]
        calls[stream] = calls.get(stream, 0) + n
    return calls


def test_a_sync_with_no_change_costs_at_most_one_call_per_object_type(
        hubspot: SandboxServer, store_copy: Store) -> None:
    report = syncer(hubspot, store_copy).sync()

    per_stream = _per_stream_calls(report)
    assert per_stream and max(per_stream.values()) == 1, per_stream
    assert report.total_calls <= len(report.streams)
    assert all(s.stored.new == s.stored.changed == s.stored.archived == 0 for s in report.streams.values())


# The longest the sandbox's search index takes to show a write (3 s at time scale 1).
MAX_SEARCH_LAG = 3.0 / TIME_SCALE


def sync_until_seen(server: SandboxServer, store: Store, ids: set[str], streams: list[str] | None = None,
                    passes: int = 5) -> tuple[dict[str, PageResult], RunReport]:
    """Incremental passes until every contact in ``ids`` was stored: each stream's results summed, and the
    last pass's report.

    Search shows a write only once the index caught up, so a pass right after the writes may miss some;
    the next pass reaches back over the cursor (the look-back) and picks them up, as it must in HubSpot.
    """
    job = syncer(server, store)
    total: dict[str, PageResult] = {}
    for _ in range(passes):
        report = job.sync(streams)
        for name, stream in report.streams.items():
            total.setdefault(name, PageResult()).add(stream.stored)
        if ids <= set(total["contacts"].changed_ids):
            return total, report
        time.sleep(MAX_SEARCH_LAG)
    raise AssertionError(f"never synced {sorted(ids - set(total['contacts'].changed_ids))[:10]}")


def test_a_sync_picks_up_exactly_the_modified_archived_and_merged_records(
        hubspot: SandboxServer, store_copy: Store, restore: None) -> None:
    sandbox = hubspot.vendor("hubspot")
    client = sdk.Client.create(access_token="sandbox", host=hubspot.base_url("hubspot"))
    contacts = sorted(sandbox.ids("contacts"), key=int)
    modified, archived = contacts[:50], contacts[50]
    (winner_a, loser_a), (winner_b, loser_b) = (contacts[60], contacts[61]), (contacts[70], contacts[71])
    client.crm.contacts.batch_api.update({"inputs": [
        {"id": cid, "properties": {"jobtitle": "Head of Revenue Operations"}} for cid in modified]})
    client.crm.contacts.basic_api.archive(archived)
    people_before = store_copy.identities.count(EntityType.PERSON)
    new_a = client.crm.contacts.basic_api.merge({"primaryObjectId": winner_a, "objectIdToMerge": loser_a}).id
    new_b = client.crm.contacts.basic_api.merge({"primaryObjectId": winner_b, "objectIdToMerge": loser_b}).id
    assert {new_a, new_b}.isdisjoint(contacts), "HubSpot gives a merged record a new id"

    stored, _ = sync_until_seen(hubspot, store_copy, {*modified, new_a, new_b})

    assert set(stored["contacts"].changed_ids) == {*modified, new_a, new_b}
    assert stored["contacts"].archived == 1 and stored["contacts"].merged == 4
    assert store_copy.records.get(EntityType.PERSON, "hubspot", modified[0]).title == "Head of Revenue Operations"
    for old in (winner_a, loser_a):  # both old ids end on the new record
        assert store_copy.records.get(EntityType.PERSON, "hubspot", old).source_id == new_a
    # One archived, and each merge leaves one person where there were two: no duplicate appeared.
    assert store_copy.identities.count(EntityType.PERSON) == people_before - 3
    assert store_copy.records.live_count("hubspot", "contacts", EntityType.PERSON) == sandbox.count("contacts")
    others = [result for name, result in stored.items() if name != "contacts"]
    assert all(r.changed == r.new == r.archived == 0 for r in others)


def test_more_than_ten_thousand_changes_inside_one_window_are_all_synced(tmp_path) -> None:
    from crmbridge.connectors import SandboxOptions

    with SandboxServer(SandboxOptions(seed=11, contacts=12_000, time_scale=100), ["hubspot"]) as server, \
            Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        syncer(server, store).backfill(["contacts"])
        # A change we read (a bare bump of last-modified is no change to the store).
        touched = server.vendor("hubspot").touch("contacts", count=12_000, properties={"jobtitle": "Head of Sync"})

        stored, last = sync_until_seen(server, store, set(touched), ["contacts"])

    assert len(touched) == 12_000
    assert set(stored["contacts"].changed_ids) == set(touched)
    assert last.streams["contacts"].complete
