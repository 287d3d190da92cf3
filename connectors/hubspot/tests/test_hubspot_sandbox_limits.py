"""Rate limits as HubSpot enforces and announces them, injected faults of every kind, and call counting."""

from __future__ import annotations

import time
from typing import Any

import pytest
import urllib3
from hubspot.crm.contacts.exceptions import ServiceException

RATE_LIMIT_KEYS = {"status", "message", "errorType", "correlationId", "policyName"}


def wait_until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_every_answer_carries_the_rate_limit_headers_of_the_tier(make_sandbox: Any) -> None:
    _, _, http = make_sandbox(contacts=20)
    first = http("GET", "/crm/v3/objects/contacts?limit=1")
    second = http("GET", "/crm/v3/owners")
    assert first.headers["x-hubspot-ratelimit-max"] == "190", "professional is the default tier"
    assert first.headers["x-hubspot-ratelimit-interval-milliseconds"] == "10000"
    assert first.headers["x-hubspot-ratelimit-daily"] == "625000"
    remaining = int(first.headers["x-hubspot-ratelimit-remaining"])
    assert int(second.headers["x-hubspot-ratelimit-remaining"]) == remaining - 1
    assert int(second.headers["x-hubspot-ratelimit-daily-remaining"]) == 625_000 - 2


def test_the_burst_window_answers_429_with_hubspots_body_once_exceeded(make_sandbox: Any) -> None:
    # The free tier allows 100 calls per 10 s; a time scale of 0.5 stretches the window to 20 s so the
    # burst below always lands inside it.
    server, _, http = make_sandbox(contacts=20, hubspot_tier="free", time_scale=0.5, tokens=("sandbox", "second-app"))
    answers = [http("GET", "/crm/v3/objects/contacts?limit=1") for _ in range(101)]
    assert [a.status for a in answers[:100]] == [200] * 100
    assert [int(a.headers["x-hubspot-ratelimit-remaining"]) for a in answers[:100]] == list(range(99, -1, -1))
    refused = answers[100]
    assert refused.status == 429
    assert set(refused.body) == RATE_LIMIT_KEYS
    assert refused.body["message"] == "You have reached your ten_secondly_rolling limit."
    assert (refused.body["errorType"], refused.body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert refused.headers["x-hubspot-ratelimit-remaining"] == "0"
    assert refused.headers["x-hubspot-ratelimit-max"] == "100"
    assert refused.headers["x-hubspot-ratelimit-interval-milliseconds"] == "20000"
    assert 1 <= int(refused.headers["retry-after"]) <= 20, "HubSpot says in whole seconds when to come back"
    assert http("GET", "/crm/v3/objects/contacts?limit=1", token="second-app").status == 200, "per token"
    stats = server.vendor("hubspot").stats()
    assert stats["rate_limited"] == 1
    assert stats["calls"]["GET /crm/v3/objects/contacts"] == 102, "refused calls are counted too"


def test_a_time_scale_shrinks_the_window_so_the_limit_clears_sooner(make_sandbox: Any) -> None:
    _, _, http = make_sandbox(contacts=20, hubspot_burst_limit=3, time_scale=10)
    statuses = [http("GET", "/crm/v3/owners").status for _ in range(4)]
    assert statuses[:3] == [200] * 3 and 429 in statuses[3:]
    answer = http("GET", "/crm/v3/owners")
    assert answer.headers["x-hubspot-ratelimit-interval-milliseconds"] == "1000"
    assert wait_until(lambda: http("GET", "/crm/v3/owners").status == 200)


def test_the_daily_quota_answers_429_with_the_daily_policy(make_sandbox: Any) -> None:
    _, _, http = make_sandbox(contacts=20, hubspot_daily_limit=3)
    answers = [http("GET", "/crm/v3/owners") for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    assert answers[2].headers["x-hubspot-ratelimit-daily-remaining"] == "0"
    assert answers[3].body["policyName"] == "DAILY"
    assert answers[3].body["message"] == "You have reached your daily limit."


def test_reset_restores_the_seed_and_zeroes_stats_and_limits(make_sandbox: Any) -> None:
    server, _, http = make_sandbox(contacts=20, hubspot_burst_limit=2, time_scale=0.1)
    hs = server.vendor("hubspot")
    contact_id = hs.ids("contacts")[0]
    hs.update("contacts", contact_id, {"jobtitle": "Changed"})
    http("GET", "/crm/v3/owners")
    http("GET", "/crm/v3/owners")
    assert http("GET", "/crm/v3/owners").status == 429
    host = urllib3.PoolManager(retries=False)
    assert host.request("POST", server.url + "/_sandbox/reset").status == 200
    assert hs.get("contacts", contact_id)["jobtitle"] != "Changed"
    assert hs.stats()["total_calls"] == 0 and hs.stats()["rate_limited"] == 0
    assert http("GET", "/crm/v3/owners").status == 200


# -- faults ---------------------------------------------------------------------------------------------------


def test_injected_server_errors_reach_the_sdk_with_a_hubspot_body(make_sandbox: Any) -> None:
    server, client, _ = make_sandbox(contacts=20, faults={"5xx": 1.0})
    for _ in range(3):
        with pytest.raises(ServiceException) as failed:
            client.crm.contacts.basic_api.get_page(limit=1)
        assert failed.value.status in (500, 502, 503)
        assert '"status":"error"' in failed.value.body
    assert server.vendor("hubspot").stats()["faults"] == {"5xx": 3}


def test_an_injected_429_says_when_to_retry(make_sandbox: Any) -> None:
    server, _, http = make_sandbox(contacts=20, faults={"429": 1.0}, time_scale=10)
    answer = http("GET", "/crm/v3/objects/contacts")
    assert answer.status == 429
    assert answer.headers["retry-after"] == "1", "ten seconds, scaled by ten"
    assert set(answer.body) == RATE_LIMIT_KEYS and answer.body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert server.vendor("hubspot").stats()["rate_limited"] == 1


def test_an_injected_timeout_stalls_past_the_clients_deadline(make_sandbox: Any) -> None:
    _, _, http = make_sandbox(contacts=20, faults={"timeout": 1.0}, stall_seconds=0.6)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        http("GET", "/crm/v3/objects/contacts", timeout=0.15)


def test_an_injected_reset_drops_the_connection_without_an_answer(make_sandbox: Any) -> None:
    _, _, http = make_sandbox(contacts=20, faults={"reset": 1.0})
    with pytest.raises(urllib3.exceptions.ProtocolError):
        http("GET", "/crm/v3/objects/contacts")


def test_a_fault_after_a_write_leaves_the_write_applied(make_sandbox: Any) -> None:
    server, _, http = make_sandbox(contacts=20, faults={"5xx": 1.0}, fault_after_share=1.0)
    hs = server.vendor("hubspot")
    contact_id = hs.ids("contacts")[0]
    answer = http("PATCH", f"/crm/v3/objects/contacts/{contact_id}", {"properties": {"jobtitle": "Applied"}})
    assert answer.status >= 500
    assert hs.get("contacts", contact_id)["jobtitle"] == "Applied", "the client must treat the write as maybe-done"


def test_faults_never_touch_the_control_routes_and_can_be_switched_off(make_sandbox: Any) -> None:
    server, _, http = make_sandbox(contacts=20, faults={"5xx": 1.0})
    host = urllib3.PoolManager(retries=False)
    assert host.request("GET", server.url + "/_sandbox/stats").status == 200
    touched = http("POST", "/_sandbox/touch", {"objectType": "contacts", "count": 2})
    assert touched.status == 200 and touched.body["touched"] == 2
    assert host.request("POST", server.url + "/_sandbox/faults", body=b'{"hubspot": {"5xx": 0}}',
                        headers={"Content-Type": "application/json"}).status == 200
    assert http("GET", "/crm/v3/objects/contacts").status == 200


def test_faults_are_drawn_at_the_configured_rate(make_sandbox: Any) -> None:
    server, _, http = make_sandbox(contacts=20, faults={"5xx": 0.3}, hubspot_burst_limit=10_000)
    statuses = [http("GET", "/crm/v3/owners").status for _ in range(200)]
    failed = sum(s >= 500 for s in statuses)
    assert 30 <= failed <= 90
    assert server.vendor("hubspot").stats()["faults"]["5xx"] == failed


def test_stats_count_calls_per_endpoint_template(http: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[0]
    http("GET", "/crm/v3/objects/contacts")
    http("GET", "/crm/v3/objects/contacts?limit=5")
    http("GET", f"/crm/v3/objects/contacts/{contact_id}")
    http("GET", "/crm/v3/objects/0-2")
    http("POST", "/crm/v3/objects/contacts/search", {})
    http("POST", "/crm/v4/associations/contact/company/batch/read", {"inputs": [{"id": contact_id}]})
    calls = hs.stats()["calls"]
    assert calls == {
        "GET /crm/v3/objects/contacts": 2, "GET /crm/v3/objects/contacts/{objectId}": 1,
        "GET /crm/v3/objects/companies": 1, "POST /crm/v3/objects/contacts/search": 1,
        "POST /crm/v4/associations/contacts/companies/batch/read": 1,
    }
