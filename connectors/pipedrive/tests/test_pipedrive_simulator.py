"""Sellers at work in the sandbox: calls and e-mails logged as done activities, deals moved on, won or lost."""

from __future__ import annotations

import orjson
import requests

H = {"x-api-token": "sandbox"}


def simulate(server, **body) -> requests.Response:
    return requests.post(server.url + "/_sandbox/simulate", params={"source": "pipedrive"}, json=body, timeout=30)


def test_sellers_log_done_calls_and_emails_as_their_own_activities(sandbox_factory) -> None:
    server = sandbox_factory(contacts=600)
    state = server.vendor("pipedrive").state
    done = server.vendor("pipedrive").simulate(activities=40, seed=5)
    assert done["activities"] == 40 and len(done["activity_ids"]) == 40
    for aid in done["activity_ids"]:
        activity = state.get("activities", aid)
        assert activity["done"] and activity["marked_as_done_time"] and activity["type"] in ("call", "email")
        assert activity["owner_id"] == activity["creator_user_id"] and activity["owner_id"] in state.users
        about = state.get("deals", activity["deal_id"]) if activity["deal_id"] else state.get(
            "persons", activity["person_id"])
        assert about["owner_id"] == activity["owner_id"]  # the record's owner logged it
        if activity["person_id"]:
            assert activity["participants"] == [{"person_id": activity["person_id"], "primary": True}]


def test_worked_deals_move_a_stage_on_or_are_won_or_lost(sandbox_factory) -> None:
    server = sandbox_factory(contacts=2000)
    state = server.vendor("pipedrive").state
    before = {d: state.get("deals", d) for d in state.live_ids("deals")}
    done = server.vendor("pipedrive").simulate(activities=400, seed=11)
    assert done["stage_moves"] and done["won"] and done["lost"]
    order = {s["id"]: s["order_nr"] for s in state.tables["stages"].rows.values()}
    for deal in done["stage_moves"]:
        now = state.get("deals", deal)
        assert now["pipeline_id"] == before[deal]["pipeline_id"]
        assert order[now["stage_id"]] == order[before[deal]["stage_id"]] + 1
    assert all(state.get("deals", d)["status"] == "won" and state.get("deals", d)["won_time"] for d in done["won"])
    assert all(state.get("deals", d)["lost_reason"] for d in done["lost"])
    assert all(before[d]["status"] == "open" for d in done["won"] + done["lost"] + done["stage_moves"])


def test_the_same_seed_does_the_same_work_in_the_same_account(sandbox_factory) -> None:
    one, two = sandbox_factory(contacts=600), sandbox_factory(contacts=600)
    first = one.vendor("pipedrive").simulate(activities=60, seed=3)
    assert first == two.vendor("pipedrive").simulate(activities=60, seed=3)
    assert first != one.vendor("pipedrive").simulate(activities=60, seed=4)


def test_simulated_work_goes_out_as_changes_made_in_the_app(sandbox_factory, receiver) -> None:
    server = sandbox_factory(contacts=600)
    vendor = server.vendor("pipedrive")
    requests.post(server.base_url("pipedrive") + "/v1/webhooks", headers=H, timeout=10, json={
        "subscription_url": receiver.url, "event_action": "*", "event_object": "*", "version": "2.0",
        "http_auth_user": "u", "http_auth_password": "p"})
    done = vendor.simulate(activities=20, seed=9)
    assert vendor.webhooks.drain(20)
    bodies = [orjson.loads(raw) for _, raw in receiver.deliveries]
    created = {int(b["meta"]["entity_id"]): b for b in bodies if b["meta"]["entity"] == "activity"}
    assert sorted(created) == sorted(done["activity_ids"])
    assert {b["meta"]["change_source"] for b in bodies} == {"app"}
    assert all(b["meta"]["user_id"] == str(b["data"]["owner_id"]) for b in created.values())
    changed_deals = {int(b["meta"]["entity_id"]) for b in bodies if b["meta"]["entity"] == "deal"}
    assert changed_deals == set(done["stage_moves"] + done["won"] + done["lost"])


def test_sales_ready_leads_are_not_made_in_the_sales_crm_and_the_answer_says_why(sandbox_factory) -> None:
    server = sandbox_factory()
    answer = simulate(server, sales_ready=3, activities=2, seed=1)
    assert answer.status_code == 200
    done = answer.json()["pipedrive"]
    assert done["sales_ready"] == [] and done["activities"] == 2 and "sales_ready is ignored" in done["note"]


def test_bad_simulation_requests_are_refused_with_400(sandbox_factory) -> None:
    server = sandbox_factory()
    for body in ({"activities": -1}, {"activities": "ten"}, {"activities": True}, {"seed": "x"},
                 {"visitors": 5}):
        answer = simulate(server, **body)
        assert answer.status_code == 400 and answer.json()["error"], body
