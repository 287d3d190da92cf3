"""Records read back by id after webhook events: v2 lists with ``ids`` (100 a call), archived and gone ids."""

from __future__ import annotations

import requests

from crmbridge.connectors import WebhookRequest
from crmbridge.model import EntityType
from crmbridge.store import Store
from crmbridge.sync import Syncer
from crmbridge_pipedrive.webhooks import PipedriveWebhooks

H = {"x-api-token": "sandbox"}


def listed(server, kind: str, **params) -> requests.Response:
    return requests.get(f"{server.base_url('pipedrive')}/api/v2/{kind}", params=params, headers=H, timeout=10)


def test_fetch_reads_records_100_ids_a_call_as_the_incremental_path_builds_them(sandbox_factory, connect) -> None:
    server = sandbox_factory(contacts=2500)
    vendor = server.vendor("pipedrive")
    ids = [str(i) for i in vendor.state.live_ids("persons")[:250]]
    assert len(ids) == 250
    connector = connect(server)
    backfilled = {r.id: r for page in connector.backfill("persons", None) for r in page.records}
    vendor.reset_stats()
    pages = list(connector.fetch("persons", ids))
    assert [len(p.records) for p in pages] == [100, 100, 50] and all(p.archived_ids == [] for p in pages)
    assert vendor.stats()["calls"] == {"GET /api/v2/persons": 3}
    fetched = {r.id: r for p in pages for r in p.records}
    assert list(fetched) == ids
    assert all(fetched[i] == backfilled[i] for i in ids)  # same flattening, custom fields by key and label


def test_ids_pipedrive_no_longer_holds_come_back_as_archived(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    for kind in ("persons", "organizations", "activities"):
        gone, kept = state.live_ids(kind)[:2]
        state.delete(kind, gone)
        [page] = connect(server).fetch(kind, [str(gone), str(kept), "999999", "not-an-id"])
        assert [r.id for r in page.records] == [str(kept)]
        assert sorted(page.archived_ids) == sorted([str(gone), "999999", "not-an-id"]), kind


def test_archived_deals_are_records_marked_archived_and_deleted_deals_are_archived_ids(sandbox_factory,
                                                                                        connect) -> None:
    server = sandbox_factory()
    vendor = server.vendor("pipedrive")
    live, shelved, gone = vendor.state.live_ids("deals")[:3]
    vendor.state.archive_deal(shelved)
    vendor.state.delete("deals", gone)
    vendor.reset_stats()
    [page] = connect(server).fetch("deals", [str(live), str(shelved), str(gone)])
    assert {(r.id, r.archived) for r in page.records} == {(str(live), False), (str(shelved), True)}
    assert page.archived_ids == [str(gone)]
    # (and the deal field catalog, read once by a new connector)
    assert vendor.stats()["calls"] == {"GET /api/v2/deals": 1, "GET /api/v2/deals/archived": 1,
                                       "GET /v1/dealFields": 1}


def test_users_and_pipelines_have_no_ids_parameter_and_are_read_whole_once(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    vendor = server.vendor("pipedrive")
    user = str(next(iter(vendor.state.users)))
    vendor.reset_stats()
    connector = connect(server)
    [users] = connector.fetch("users", [user, "1"])
    [pipelines] = connector.fetch("pipelines", ["1", "77"])
    assert ([r.id for r in users.records], users.archived_ids) == ([user], ["1"])
    assert ([r.id for r in pipelines.records], pipelines.archived_ids) == (["1"], ["77"])
    assert pipelines.records[0].properties["stages"]
    assert vendor.stats()["calls"] == {"GET /v1/users": 1, "GET /api/v2/pipelines": 1, "GET /api/v2/stages": 1}


def test_no_stream_needs_a_followup_pass(sandbox_factory, connect) -> None:
    connector = connect(sandbox_factory())
    assert all(tuple(connector.followups(s.name)) == () for s in connector.streams())
    assert list(connector.fetch("persons", [])) == []


def test_the_sandbox_lists_honour_ids_as_pipedrive_documents_them(sandbox_factory) -> None:
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    for kind in ("persons", "organizations", "deals", "activities"):
        wanted = state.live_ids(kind)[5:8]
        answer = listed(server, kind, ids=",".join(str(i) for i in reversed(wanted))).json()
        assert [r["id"] for r in answer["data"]] == wanted and answer["additional_data"]["next_cursor"] is None
    too_many = listed(server, "persons", ids=",".join(str(i) for i in range(1, 102)))
    assert too_many.status_code == 400 and "100" in too_many.json()["error"]
    assert listed(server, "persons", ids="1,two").status_code == 400
    assert listed(server, "persons", ids=",".join(str(i) for i in range(1, 101))).status_code == 200


def test_a_delivered_merge_ends_with_the_survivor_stored_and_the_loser_merged(sandbox_factory, connect, mapping,
                                                                             receiver, sqlite_url) -> None:
    """Sandbox delivery -> our verifier -> fetch -> store: what a webhook batch does, end to end."""
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    with Store(sqlite_url) as store:
        connector = connect(server)
        syncer = Syncer(store, connector, mapping(store, connector))
        syncer.backfill()
        requests.post(server.base_url("pipedrive") + "/v1/webhooks", headers=H, timeout=10, json={
            "subscription_url": receiver.url, "event_action": "*", "event_object": "person", "version": "2.0",
            "http_auth_user": "u", "http_auth_password": "p"})
        loser, winner = state.live_ids("persons")[:2]
        state.merge("persons", loser, winner)
        assert server.vendor("pipedrive").webhooks.drain(20)
        verifier = PipedriveWebhooks("u", "p")
        events = [e for h, raw in receiver.deliveries
                  for e in verifier.parse(WebhookRequest("POST", receiver.url, h, raw, 0))]
        [merge] = [e for e in events if e.action == "merged"]
        pages = list(connector.fetch("persons", [merge.merged_into]))
        pages[0].merged.update({gone: merge.merged_into for gone in merge.merged_ids})
        syncer.apply(pages)
        live = store.records.live_ids("pipedrive", "persons", EntityType.PERSON)
        assert str(winner) in live and str(loser) not in live
