"""The sandbox sends webhooks as Pipedrive does: v2 bodies, Basic auth, retries, bans, subscriptions checked.

Every delivery is received over real HTTP on 127.0.0.1 and read back with the connector's own verifier.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import requests

from crmbridge.connectors import WebhookEvent, WebhookRequest
from crmbridge_pipedrive.webhooks import PipedriveWebhooks

H = {"x-api-token": "sandbox"}
USER, PASSWORD = "crmbridge", "hook-password-1"


def call(server, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, server.base_url("pipedrive") + path, json=body, headers=H, timeout=10)


def subscribe(server, url: str, action: str = "*", obj: str = "*", version: str = "2.0", **extra: Any) -> dict:
    body = {"subscription_url": url, "event_action": action, "event_object": obj, "version": version,
            "http_auth_user": USER, "http_auth_password": PASSWORD, **extra}
    answer = call(server, "POST", "/v1/webhooks", body)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def delivered(server, receiver) -> list[tuple[dict[str, Any], WebhookEvent | None]]:
    """Every delivery so far (once the sandbox has nothing pending): its body and what our verifier makes of it."""
    assert server.vendor("pipedrive").webhooks.drain(20)
    verifier = PipedriveWebhooks(USER, PASSWORD)
    out = []
    for headers, raw in receiver.deliveries:
        events = verifier.parse(WebhookRequest("POST", receiver.url, headers, raw, 0))
        out.append((orjson.loads(raw), events[0] if events else None))
    return out


def webhook_stats(server) -> dict[str, int]:
    return requests.get(server.url + "/_sandbox/stats", timeout=5).json()["pipedrive"]["webhooks"]


# -- what is sent ------------------------------------------------------------------------------------

def test_an_api_write_reaches_the_webhook_as_a_v2_event_our_verifier_accepts(sandbox_factory, receiver) -> None:
    server = sandbox_factory()
    hook = subscribe(server, receiver.url)
    person = server.vendor("pipedrive").state.live_ids("persons")[0]
    before = call(server, "GET", f"/api/v2/persons/{person}").json()["data"]
    call(server, "PATCH", f"/api/v2/persons/{person}", {"name": "Ada Head-of-RevOps"})
    [(body, event)] = delivered(server, receiver)
    assert event is not None and (event.stream, event.object_id, event.action) == ("persons", str(person), "changed")
    meta = body["meta"]
    assert (meta["action"], meta["entity"], meta["entity_id"], meta["change_source"]) == (
        "change", "person", str(person), "api")
    assert (meta["version"], meta["webhook_id"], meta["attempt"]) == ("2.0", str(hook["id"]), 1)
    assert event.event_id == meta["id"] and len(meta["id"]) == 36
    assert body["data"]["name"] == "Ada Head-of-RevOps" and body["data"]["id"] == person
    assert body["previous"]["name"] == before["name"] and "emails" not in body["previous"]
    headers = receiver.deliveries[0][0]
    assert headers["Authorization"].startswith("Basic ") and headers["Content-Type"] == "application/json"


def test_creates_and_deletes_through_the_api_and_the_state_each_send_one_event(sandbox_factory, receiver) -> None:
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    subscribe(server, receiver.url)
    made = call(server, "POST", "/api/v2/organizations", {"name": "Analytical Engines Ltd"}).json()["data"]
    call(server, "DELETE", f"/api/v2/organizations/{made['id']}")
    activity = state.create("activities", {"subject": "Intro call", "type": "call"})
    state.delete("activities", activity["id"])
    sent = delivered(server, receiver)
    seen = {(b["meta"]["entity"], b["meta"]["action"], b["meta"]["change_source"]) for b, _ in sent}
    assert seen == {("organization", "create", "api"), ("organization", "delete", "api"),
                    ("activity", "create", "app"), ("activity", "delete", "app")}
    for body, event in sent:
        assert event is not None
        if body["meta"]["action"] == "create":
            assert body["previous"] is None and body["data"]["id"] == int(event.object_id)
        else:
            assert body["data"] is None and body["previous"]["id"] == int(event.object_id)
            assert event.action == "deleted"


def test_a_merge_tells_the_receiver_who_survived(sandbox_factory, receiver) -> None:
    server = sandbox_factory(contacts=600)
    state = server.vendor("pipedrive").state
    with_deals = {d["person_id"] for d in state.tables["deals"].rows.values()}
    loser, winner = [p for p in state.live_ids("persons") if p in with_deals][:2]
    subscribe(server, receiver.url)
    assert call(server, "PUT", f"/v1/persons/{loser}/merge", {"merge_with_id": winner}).status_code == 200
    sent = delivered(server, receiver)
    merges = [e for _, e in sent if e is not None and e.action == "merged"]
    assert merges == [WebhookEvent(merges[0].event_id, "persons", str(loser), "merged", merges[0].occurred_ms,
                                   merged_into=str(winner), merged_ids=(str(loser),))]
    changed = {(e.stream, e.object_id) for _, e in sent if e is not None and e.action == "changed"}
    assert ("persons", str(winner)) in changed
    assert {s for s, _ in changed} >= {"deals"}  # the deals that moved to the survivor
    assert len({b["meta"]["correlation_id"] for b, _ in sent}) == 1


def test_touched_records_are_changes_and_a_bulk_touch_says_so(sandbox_factory, receiver) -> None:
    server = sandbox_factory()
    subscribe(server, receiver.url, obj="deal")
    touched = requests.post(server.base_url("pipedrive") + "/_sandbox/touch", json={"kind": "deals", "count": 3},
                            timeout=5).json()["touched"]
    sent = delivered(server, receiver)
    assert sorted(int(e.object_id) for _, e in sent if e is not None) == sorted(touched)
    assert all(b["meta"]["is_bulk_edit"] and set(b["previous"]) == {"update_time"} for b, _ in sent)


def test_leads_send_lead_events_that_crmbridge_ignores(sandbox_factory, receiver) -> None:
    server = sandbox_factory()
    subscribe(server, receiver.url, obj="lead")
    person = server.vendor("pipedrive").state.live_ids("persons")[0]
    lead = call(server, "POST", "/v1/leads", {"title": "Demo request", "person_id": person}).json()["data"]
    [(body, event)] = delivered(server, receiver)
    assert (body["meta"]["entity"], body["meta"]["entity_id"], event) == ("lead", lead["id"], None)


def test_only_matching_subscriptions_receive_an_event(sandbox_factory, receiver) -> None:
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    subscribe(server, receiver.url, action="create", obj="deal")
    state.update("persons", state.live_ids("persons")[0], {"job_title": "CTO"})
    state.update("deals", state.live_ids("deals")[0], {"title": "Renamed"})
    made = state.create("deals", {"title": "New pilot"})
    assert [(e.stream, e.object_id, e.action) for _, e in delivered(server, receiver)] == [
        ("deals", str(made["id"]), "created")]


def test_v1_subscriptions_are_listed_but_never_delivered_to(sandbox_factory, receiver) -> None:
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    subscribe(server, receiver.url, action="updated", obj="person", version="1.0")
    state.update("persons", state.live_ids("persons")[0], {"job_title": "CTO"})
    assert delivered(server, receiver) == [] and webhook_stats(server)["emitted"] == 0
    assert [h["additional_data"]["version"] for h in call(server, "GET", "/v1/webhooks").json()["data"]] == ["1.0"]


def test_nothing_is_built_or_sent_without_a_webhook(sandbox_factory) -> None:
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    seen: list[Any] = []
    state.listener = lambda change, hooks: seen.append(change)
    state.touch("activities", count=1000)
    state.update("persons", state.live_ids("persons")[0], {"job_title": "CTO"})
    assert seen == [] and webhook_stats(server)["emitted"] == 0


# -- delivery: retries, bans, status -----------------------------------------------------------------

def test_a_failed_delivery_is_retried_with_the_attempt_in_meta(sandbox_factory, receiver) -> None:
    server = sandbox_factory(webhook_retry_scale=1000)
    state = server.vendor("pipedrive").state
    hook = subscribe(server, receiver.url, obj="person")
    receiver.fail = 2
    state.update("persons", state.live_ids("persons")[0], {"job_title": "CTO"})
    [(body, event)] = delivered(server, receiver)
    assert body["meta"]["attempt"] == 3 and event is not None
    stats = webhook_stats(server)
    assert (stats["emitted"], stats["failed"], stats["delivered"]) == (1, 2, 1)
    listed = next(h for h in call(server, "GET", "/v1/webhooks").json()["data"] if h["id"] == hook["id"])
    assert listed["last_http_status"] == 200 and listed["last_delivery_time"]


def test_ten_failures_in_a_row_ban_the_webhook_and_its_events_are_lost(sandbox_factory, receiver) -> None:
    server = sandbox_factory(webhook_retry_scale=10_000)
    state = server.vendor("pipedrive").state
    hook = subscribe(server, receiver.url, obj="person")
    receiver.fail, receiver.status = 10_000, 503
    for person in state.live_ids("persons")[:3]:  # 4 attempts each: the tenth failure (3rd event, 2nd try) bans
        state.update("persons", person, {"job_title": "CTO"})
        assert server.vendor("pipedrive").webhooks.drain(20)
    assert delivered(server, receiver) == []
    stats = webhook_stats(server)
    assert (stats["emitted"], stats["failed"], stats["dropped"], stats["banned"]) == (3, 10, 2, 1)
    listed = next(h for h in call(server, "GET", "/v1/webhooks").json()["data"] if h["id"] == hook["id"])
    assert listed["last_http_status"] == 503


def test_a_subscription_to_another_machine_is_not_called(sandbox_factory) -> None:
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    subscribe(server, "https://crmbridge.example.com/webhooks/pipedrive", obj="person")
    state.update("persons", state.live_ids("persons")[0], {"job_title": "CTO"})
    stats = webhook_stats(server)
    assert (stats["emitted"], stats["dropped"], stats["requests"]) == (1, 1, 0)


def test_a_deleted_subscription_receives_nothing_more(sandbox_factory, receiver) -> None:
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    hook = subscribe(server, receiver.url, obj="person")
    assert call(server, "DELETE", f"/v1/webhooks/{hook['id']}").json() == {"success": True, "status": "ok"}
    state.update("persons", state.live_ids("persons")[0], {"job_title": "CTO"})
    assert delivered(server, receiver) == []


def test_reset_forgets_subscriptions(sandbox_factory, receiver) -> None:
    server = sandbox_factory()
    subscribe(server, receiver.url)
    requests.post(server.url + "/_sandbox/reset", timeout=5)
    state = server.vendor("pipedrive").state
    state.update("persons", state.live_ids("persons")[0], {"job_title": "CTO"})
    assert delivered(server, receiver) == [] and call(server, "GET", "/v1/webhooks").json()["data"] == []


def test_duplicates_when_asked_carry_the_same_event_id(sandbox_factory, receiver) -> None:
    server = sandbox_factory(webhook_duplicates=1.0)
    state = server.vendor("pipedrive").state
    subscribe(server, receiver.url, obj="person")
    state.update("persons", state.live_ids("persons")[0], {"job_title": "CTO"})
    first, second = delivered(server, receiver)
    assert first[1] == second[1]


# -- subscriptions ------------------------------------------------------------------------------------

BAD_SUBSCRIPTIONS = [
    ({"event_action": "*", "event_object": "*"}, "subscription_url"),
    ({"subscription_url": "ftp://example.com/x", "event_action": "*", "event_object": "*"}, "subscription_url"),
    ({"subscription_url": "not a url", "event_action": "*", "event_object": "*"}, "subscription_url"),
    ({"subscription_url": "https://api.pipedrive.com/v1/x", "event_action": "*", "event_object": "*"},
     "subscription_url"),
    ({"subscription_url": "https://x.example/h", "event_action": "create", "event_object": "deal",
      "version": "1.0"}, "event_action"),
    ({"subscription_url": "https://x.example/h", "event_action": "added", "event_object": "deal",
      "version": "2.0"}, "event_action"),
    ({"subscription_url": "https://x.example/h", "event_action": "*", "event_object": "lead"}, "event_object"),
    ({"subscription_url": "https://x.example/h", "event_action": "*", "event_object": "activityType",
      "version": "2.0"}, "event_object"),
    ({"subscription_url": "https://x.example/h", "event_action": "*", "event_object": "*", "version": "3.0"},
     "version"),
    ({"subscription_url": "https://x.example/h", "event_action": "*", "event_object": "*", "version": "2.0",
      "user_id": 1}, "user_id"),
]


@pytest.mark.parametrize(("body", "field"), BAD_SUBSCRIPTIONS)
def test_subscriptions_are_checked_as_pipedrive_checks_them(sandbox_factory, check_shape, body, field) -> None:
    server = sandbox_factory()
    answer = call(server, "POST", "/v1/webhooks", body)
    assert answer.status_code == 400 and answer.json()["success"] is False and field in answer.json()["errors"]
    assert check_shape("v1", "post", "/webhooks", answer.json(), status="400") == []
    assert call(server, "GET", "/v1/webhooks").json()["data"] == []


def test_a_subscription_keeps_its_credentials_and_version(sandbox_factory, check_shape) -> None:
    server = sandbox_factory()
    hook = subscribe(server, "http://127.0.0.1:9/hook", action="change", obj="deal")
    assert (hook["http_auth_user"], hook["http_auth_password"], hook["additional_data"]) == (
        USER, PASSWORD, {"version": "2.0"})
    assert (hook["last_delivery_time"], hook["last_http_status"], hook["is_active"]) == (None, None, 1)
    assert check_shape("v1", "get", "/webhooks", call(server, "GET", "/v1/webhooks").json()) == []


def test_a_rejected_delivery_counts_as_a_failure(sandbox_factory, receiver) -> None:
    """A receiver that refuses a delivery (our verifier's 401 for other credentials) fails it."""
    server = sandbox_factory(webhook_retry_scale=10_000)
    state = server.vendor("pipedrive").state
    subscribe(server, receiver.url, obj="person")
    receiver.fail, receiver.status = 4, 401
    state.update("persons", state.live_ids("persons")[0], {"job_title": "CTO"})
    assert delivered(server, receiver) == []
    stats = webhook_stats(server)
    assert (stats["failed"], stats["dropped"], stats["delivered"]) == (4, 1, 0)
