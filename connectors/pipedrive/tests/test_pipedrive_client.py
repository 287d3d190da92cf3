"""The v2 client and the v1 library behind it, at the HTTP level: every failure typed, never data."""

from __future__ import annotations

import logging
import re

import pytest
import requests
import responses

from crmbridge.errors import AuthError, PermanentError, RateLimitedError, RetryableError
from crmbridge.logs import configure
from crmbridge.pacing import Pacer
from crmbridge_pipedrive.client import DailyBudget, PipedriveClient
from crmbridge_pipedrive.settings import PipedriveSettings

BASE = "https://acme.pipedrive.test"
TOKEN = "0123456789abcdef-secret-token"
PERSONS = f"{BASE}/api/v2/persons"
HTML_403 = "<!DOCTYPE html><html><body><h1>403 Forbidden</h1>cloudflare</body></html>"


def client(**overrides) -> PipedriveClient:
    values = {"api_token": TOKEN, "base_url": BASE, "max_attempts": 3, "backoff_base_seconds": 0.001,
              "backoff_max_seconds": 0.01, "cdn_block_seconds": 0.01, "burst_interval_seconds": 0.05,
              "read_timeout": 0.5, **overrides}
    return PipedriveClient(PipedriveSettings(**values))


def page(ids, cursor=None) -> dict:
    return {"success": True, "data": [{"id": i, "name": f"P{i}"} for i in ids],
            "additional_data": {"next_cursor": cursor}}


@responses.activate
def test_v2_list_follows_cursors_until_the_last_page():
    responses.get(PERSONS, json=page([1, 2], "c2"), match=[responses.matchers.query_param_matcher(
        {"limit": "500", "sort_by": "id"})])
    responses.get(PERSONS, json=page([3], None), match=[responses.matchers.query_param_matcher(
        {"limit": "500", "sort_by": "id", "cursor": "c2"})])
    c = client()
    first = c.v2_list("persons", {"limit": 500, "sort_by": "id"})
    second = c.v2_list("persons", {"limit": 500, "sort_by": "id", "cursor": first.next_cursor})
    assert [p["id"] for p in first.items + second.items] == [1, 2, 3]
    assert second.next_cursor is None
    assert c.usage().calls == {"GET /api/v2/persons": 2}


@responses.activate
def test_a_429_with_reset_headers_waits_and_retries():
    responses.get(PERSONS, status=429, json={"success": False, "error": "Request over limit", "errorCode": 429},
                  headers={"x-ratelimit-limit": "40", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "0.02"})
    responses.get(PERSONS, json=page([1]))
    c = client()
    assert [p["id"] for p in c.v2_list("persons", {}).items] == [1]
    usage = c.usage()
    assert (usage.rate_limited, usage.retries, usage.total) == (1, 1, 2)


@responses.activate
def test_a_429_without_headers_still_backs_off_and_gives_up_after_bounded_attempts():
    responses.get(PERSONS, status=429, json={"success": False, "error": "Request over limit", "errorCode": 429})
    c = client(max_attempts=3)
    with pytest.raises(RateLimitedError) as caught:
        c.v2_list("persons", {})
    assert caught.value.retry_after is None
    assert "GET /api/v2/persons: Pipedrive answered 429: Request over limit" in str(caught.value)
    assert len(responses.calls) == 3


@responses.activate
def test_a_spent_daily_budget_is_reported_at_once_and_nothing_more_is_sent_until_it_renews():
    responses.get(PERSONS, status=429, json={"success": False, "error": "Daily token budget exceeded"},
                  headers={"x-ratelimit-limit": "40", "x-ratelimit-remaining": "39", "x-ratelimit-reset": "2",
                           "x-daily-ratelimit-token-limit": "600000", "x-daily-ratelimit-token-remaining": "0",
                           "Retry-After": "43200"})
    c = client()
    with pytest.raises(RateLimitedError) as caught:
        c.v2_list("persons", {})
    assert (caught.value.policy, caught.value.retry_after) == ("daily", 43200)
    assert "daily API token budget" in str(caught.value)
    assert len(responses.calls) == 1  # not retried
    with pytest.raises(RateLimitedError) as again:
        c.users()  # any other call: refused here, never sent
    assert again.value.policy == "daily" and 43000 < again.value.retry_after <= 43200
    assert len(responses.calls) == 1
    assert (c.daily.limit, c.daily.remaining) == (600000, 0)


@responses.activate
def test_a_burst_429_waits_for_the_window_not_for_the_day():
    """A burst 429 still has daily tokens left: it is retried after the window, read from x-ratelimit-reset."""
    responses.get(PERSONS, status=429, json={"success": False, "error": "Request over limit"},
                  headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0.02", "Retry-After": "1",
                           "x-daily-ratelimit-token-remaining": "5000"})
    responses.get(PERSONS, json=page([1]), headers={"x-daily-ratelimit-token-limit": "600000",
                                                    "x-daily-ratelimit-token-remaining": "4990"})
    c = client()
    assert [p["id"] for p in c.v2_list("persons", {}).items] == [1]
    assert c.usage().retries == 1 and c.daily.remaining == 4990


@responses.activate
def test_a_429_with_only_retry_after_holds_every_caller_that_long():
    responses.get(PERSONS, status=429, json={"success": False, "error": "Request over limit"},
                  headers={"Retry-After": "1"})
    responses.get(PERSONS, json=page([1]))
    c = client()
    now, slept = [0.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    c.pacer = Pacer(40, 0.05, clock=lambda: now[0], sleep=sleep)
    c.v2_list("persons", {})
    assert sum(slept) == pytest.approx(1.0)  # the pacer held the retry for Retry-After's second


def test_a_spent_budget_renews_after_its_retry_after():
    now = [100.0]
    budget = DailyBudget(clock=lambda: now[0])
    budget.spent(60, fallback=300)
    assert budget.wait_left() == 60
    now[0] = 161.0
    assert budget.wait_left() == 0
    budget.spent(None, fallback=300)  # no Retry-After: the client's own longest wait
    assert budget.wait_left() == 300


@responses.activate
def test_the_cdn_html_403_is_a_ban_to_wait_out_not_data_and_not_a_bad_token():
    responses.get(PERSONS, status=403, body=HTML_403, content_type="text/html")
    responses.get(PERSONS, json=page([7]))
    c = client()
    assert [p["id"] for p in c.v2_list("persons", {}).items] == [7]
    assert c.usage().rate_limited == 1


@responses.activate
def test_a_lasting_cdn_ban_ends_in_a_typed_error_after_bounded_attempts():
    responses.get(PERSONS, status=403, body=HTML_403, content_type="text/html")
    with pytest.raises(RateLimitedError) as caught:
        client(max_attempts=2).v2_list("persons", {})
    assert caught.value.policy == "cdn"
    assert "CDN refused the request (HTML 403)" in str(caught.value)
    assert "<html" not in str(caught.value).lower()
    assert len(responses.calls) == 2


@responses.activate
def test_a_json_403_is_an_auth_error_with_pipedrives_message():
    responses.get(PERSONS, status=403, json={"success": False, "error": "You do not have permission"})
    with pytest.raises(AuthError, match="403: You do not have permission"):
        client().v2_list("persons", {})
    assert len(responses.calls) == 1


@responses.activate
def test_a_timeout_is_retried_then_typed():
    responses.get(PERSONS, body=requests.exceptions.ReadTimeout("read timed out"))
    responses.get(PERSONS, json=page([1]))
    assert [p["id"] for p in client().v2_list("persons", {}).items] == [1]

    responses.reset()
    responses.get(PERSONS, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(RetryableError, match="no answer in time"):
        client(max_attempts=2).v2_list("persons", {})


@responses.activate
def test_a_502_with_an_html_body_is_retried_never_passed_on_as_data():
    responses.get(PERSONS, status=502, body="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html")
    with pytest.raises(RetryableError) as caught:
        client(max_attempts=2).v2_list("persons", {})
    assert caught.value.status == 502
    assert "non-JSON answer (text/html" in str(caught.value)
    assert len(responses.calls) == 2


@responses.activate
def test_a_200_that_is_not_json_is_an_error_not_a_string():
    responses.get(PERSONS, status=200, body="<html>captive portal</html>", content_type="text/html")
    with pytest.raises(RetryableError, match="without a JSON body"):
        client(max_attempts=1).v2_list("persons", {})


@responses.activate
def test_an_unknown_cursor_is_a_permanent_error():
    responses.get(PERSONS, status=400, json={"success": False, "error": "Validation failed: cursor: invalid"})
    with pytest.raises(PermanentError, match="400: Validation failed: cursor"):
        client().v2_list("persons", {"cursor": "nope"})
    assert len(responses.calls) == 1


@responses.activate
def test_v1_through_the_library_raises_typed_errors_for_html_pages():
    """pipedrive-python-lib would return the CDN's page as a string; our response hook raises first."""
    responses.get(f"{BASE}/v1/users", status=403, body=HTML_403, content_type="text/html")
    with pytest.raises(RateLimitedError) as caught:
        client(max_attempts=1).users()
    assert caught.value.policy == "cdn"

    responses.reset()
    responses.get(f"{BASE}/v1/users", status=200, body="<html>not json</html>", content_type="text/html")
    with pytest.raises(RetryableError):
        client(max_attempts=1).users()


@responses.activate
def test_v1_field_lists_are_paged_with_start_and_limit():
    url = f"{BASE}/v1/personFields"
    field = {"key": "a" * 40, "name": "Tier", "field_type": "enum", "options": []}
    responses.get(url, json={"success": True, "data": [field], "additional_data": {
        "start": 0, "limit": 500, "more_items_in_collection": True}},
                  match=[responses.matchers.query_param_matcher({"start": "0", "limit": "500"})])
    responses.get(url, json={"success": True, "data": [dict(field, key="b" * 40)], "additional_data": {
        "pagination": {"start": 500, "limit": 500, "more_items_in_collection": False}}},
                  match=[responses.matchers.query_param_matcher({"start": "500", "limit": "500"})])
    assert [f["key"] for f in client().fields("personFields")] == ["a" * 40, "b" * 40]


@responses.activate
def test_the_token_travels_in_a_header_never_in_a_url_or_a_log_line(capsys, caplog):
    configure("DEBUG", "json")
    caplog.set_level(logging.DEBUG)
    responses.get(PERSONS, status=500, json={"success": False, "error": "boom"})
    responses.get(PERSONS, json=page([1]))
    responses.get(f"{BASE}/v1/users", json={"success": True, "data": [{"id": 1, "name": "A B"}]})
    c = client()
    c.v2_list("persons", {"limit": 500})
    c.users()
    responses.get(f"{BASE}/api/v2/deals", status=401, json={"success": False, "error": "unauthorized"})
    with pytest.raises(AuthError) as caught:
        c.v2_list("deals", {})
    for call in responses.calls:
        assert TOKEN not in call.request.url
        assert "api_token" not in call.request.url
        assert call.request.headers["x-api-token"] == TOKEN
    captured = capsys.readouterr()
    logged = captured.out + captured.err + caplog.text
    assert "pipedrive.retry" in logged  # the retry was logged ...
    assert TOKEN not in logged and TOKEN not in str(caught.value)  # ... without the token
    assert re.search(r"GET /api/v2/persons", logged)
