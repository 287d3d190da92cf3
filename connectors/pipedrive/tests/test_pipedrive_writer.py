"""Pipedrive write-back at the HTTP level: a deal create that times out is looked for before it is retried."""

from __future__ import annotations

import requests
import responses

from crmbridge.errors import RetryableError
from crmbridge.writeback.contract import DealDraft, PersonUpdate
from crmbridge_pipedrive.client import PipedriveClient
from crmbridge_pipedrive.settings import PipedriveSettings
from crmbridge_pipedrive.writer import PipedriveWriter

BASE = "https://acme.pipedrive.test"
DEALS = f"{BASE}/api/v2/deals"
KEYS = {"handoff_key": "a" * 40, "score_summary": "b" * 40, "score": "c" * 40}


def writer() -> PipedriveWriter:
    settings = PipedriveSettings(api_token="secret-token", base_url=BASE, max_attempts=3, backoff_base_seconds=0.001,
                                 backoff_max_seconds=0.01, burst_interval_seconds=0.05, read_timeout=0.5)
    return PipedriveWriter(PipedriveClient(settings), settings)


def draft() -> DealDraft:
    return DealDraft("cb-123", "Acme: Dana Kim", "1", "9", "42", "7", "1001", "Score 72", KEYS)


def deal(deal_id: int, key: str | None) -> dict:
    return {"id": deal_id, "title": "Acme: Dana Kim", "status": "open", "stage_id": 9, "owner_id": 1001,
            "person_id": 42, "org_id": 7, "custom_fields": {KEYS["handoff_key"]: key}}


@responses.activate
def test_a_create_that_timed_out_but_was_made_is_found_and_not_repeated() -> None:
    responses.post(DEALS, body=requests.ConnectionError("reset by peer"))
    responses.get(DEALS, json={"success": True, "data": [deal(55, "cb-123")], "additional_data": {}})
    ref = writer().create_deal(draft())
    assert ref.id == "55" and ref.key == "cb-123"
    assert sum(1 for c in responses.calls if c.request.method == "POST") == 1


@responses.activate
def test_a_create_that_was_not_made_is_tried_again() -> None:
    responses.post(DEALS, body=requests.ConnectionError("reset by peer"))
    responses.post(DEALS, json={"success": True, "data": deal(56, "cb-123")})
    responses.get(DEALS, json={"success": True, "data": [deal(12, None)], "additional_data": {}})
    ref = writer().create_deal(draft())
    assert ref.id == "56"
    posts = [c for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 2
    assert b'"owner_id": 1001' in posts[1].request.body and b"cb-123" in posts[1].request.body


@responses.activate
def test_creates_that_keep_failing_end_in_a_typed_error_after_bounded_attempts() -> None:
    responses.post(DEALS, status=502, body="<html>bad gateway</html>", content_type="text/html")
    responses.get(DEALS, json={"success": True, "data": [], "additional_data": {}})
    try:
        writer().create_deal(draft())
    except RetryableError as exc:
        assert "502" in str(exc)
    else:
        raise AssertionError("expected a RetryableError")
    assert sum(1 for c in responses.calls if c.request.method == "POST") == 3


@responses.activate
def test_a_person_pipedrive_no_longer_has_fails_alone() -> None:
    responses.patch(f"{BASE}/api/v2/persons/1", json={"success": True, "data": {"id": 1}})
    responses.patch(f"{BASE}/api/v2/persons/2", status=404, json={"success": False, "error": "Person not found"})
    responses.patch(f"{BASE}/api/v2/persons/3", json={"success": True, "data": {"id": 3}})
    result = writer().write_people([PersonUpdate(str(i), {"score": 50}) for i in (1, 2, 3)], KEYS)
    assert result.written == ["1", "3"] and list(result.failed) == ["2"] and result.calls == 3
    assert b'{"custom_fields": {"' + KEYS["score"].encode() + b'": 50}}' == responses.calls[0].request.body
