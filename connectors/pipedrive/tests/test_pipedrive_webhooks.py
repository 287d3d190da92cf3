"""Pipedrive webhooks v2 as the receiver sees them: HTTP Basic auth, one event per delivery, merges, rejections."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from crmbridge.connectors import WebhookEvent, WebhookRejected, WebhookRequest, WebhookVerifier, plugin
from crmbridge_pipedrive.webhooks import PipedriveWebhooks

USER, PASSWORD = "crmbridge", "s3cret-hook-password"
STAMP = "2026-06-01T10:00:00.250Z"
STAMP_MS = 1_780_308_000_250


def basic(user: str = USER, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def body(action: str = "change", entity: str = "person", entity_id: Any = "42", **meta: Any) -> dict[str, Any]:
    """A webhooks v2 delivery as Pipedrive sends it."""
    return {"data": {"id": 42, "name": "Dana Kim", "pipeline_id": 3}, "previous": {"name": "Dana"},
            "meta": {"action": action, "entity": entity, "entity_id": entity_id,
                     "id": "4b0b8c2e-0a5f-4b55-9f7a-1f1d1c7f0a11", "timestamp": STAMP, "attempt": 1,
                     "change_source": "app", "company_id": "13000001", "user_id": "12000001", "version": "2.0",
                     "webhook_id": "7", "webhook_owner_id": "12000001", "host": "acme.pipedrive.com",
                     "type": "general", "is_bulk_edit": False, "permitted_user_ids": ["12000001"], **meta}}


def delivery(payload: Any, authorization: str | None = None) -> WebhookRequest:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    headers = {"Content-Type": "application/json", "Authorization": basic() if authorization is None else authorization}
    return WebhookRequest("POST", "https://crmbridge.example.com/webhooks/pipedrive", headers, raw, 0)


def parse(payload: Any, authorization: str | None = None) -> list[WebhookEvent]:
    return PipedriveWebhooks(USER, PASSWORD).parse(delivery(payload, authorization))


def rejected(payload: Any, authorization: str | None = None) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        parse(payload, authorization)
    return caught.value


# -- what events mean ----------------------------------------------------------------------------

@pytest.mark.parametrize(("entity", "stream"), [("person", "persons"), ("organization", "organizations"),
                                                ("deal", "deals"), ("activity", "activities"), ("user", "users"),
                                                ("pipeline", "pipelines")])
def test_each_object_crmbridge_reads_becomes_an_event_of_its_stream(entity, stream) -> None:
    assert parse(body(entity=entity)) == [WebhookEvent("4b0b8c2e-0a5f-4b55-9f7a-1f1d1c7f0a11", stream, "42",
                                                       "changed", STAMP_MS)]


@pytest.mark.parametrize(("action", "meaning"), [("create", "created"), ("change", "changed"), ("delete", "deleted")])
def test_v2_actions_become_created_changed_and_deleted(action, meaning) -> None:
    [event] = parse(body(action=action))
    assert event.action == meaning and event.object_id == "42" and event.occurred_ms == STAMP_MS


def test_a_delete_with_merged_to_id_is_a_merge_into_the_survivor() -> None:
    [event] = parse(body(action="delete", entity_id="42", merged_to_id="7"))
    assert (event.action, event.object_id, event.merged_into, event.merged_ids) == ("merged", "42", "7", ("42",))


def test_a_stage_event_is_a_change_of_its_pipeline() -> None:
    [event] = parse(body(entity="stage", entity_id="11"))
    assert (event.stream, event.object_id, event.action) == ("pipelines", "3", "changed")
    gone = body(action="delete", entity="stage", entity_id="11")
    gone["data"], gone["previous"] = None, {"id": 11, "pipeline_id": 5}
    assert [(e.object_id, e.action) for e in parse(gone)] == [("5", "changed")]


@pytest.mark.parametrize("entity", ["lead", "note", "product", "project", "deal_product", "something_new"])
def test_events_about_objects_crmbridge_does_not_read_are_accepted_and_ignored(entity) -> None:
    lead_id = "adf21080-0e10-11eb-879b-05d71fb426ec"
    assert parse(body(entity=entity, entity_id=lead_id)) == []


def test_numeric_ids_and_epoch_timestamps_are_read_too() -> None:
    [seconds] = parse(body(entity_id=42, id=991, timestamp=1_727_447_128))
    assert (seconds.object_id, seconds.event_id, seconds.occurred_ms) == ("42", "991", 1_727_447_128_000)
    [millis] = parse(body(timestamp=1_727_447_128_500))
    assert millis.occurred_ms == 1_727_447_128_500


def test_a_redelivery_keeps_the_event_id() -> None:
    first, again = parse(body(attempt=1)), parse(body(attempt=3))
    assert first == again


# -- authentication --------------------------------------------------------------------------------

@pytest.mark.parametrize("authorization", [
    basic(password="wrong"), basic(user="someone"), basic(user="", password=""), "Bearer " + PASSWORD,
    "Basic not-base64!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic", ""])
def test_wrong_or_malformed_credentials_are_refused_with_401(authorization) -> None:
    refused = rejected(body(), authorization)
    assert refused.status == 401 and PASSWORD not in refused.reason


def test_a_delivery_without_credentials_is_refused_with_401() -> None:
    request = WebhookRequest("POST", "/webhooks/pipedrive", {"Content-Type": "application/json"},
                             orjson.dumps(body()), 0)
    with pytest.raises(WebhookRejected) as caught:
        PipedriveWebhooks(USER, PASSWORD).parse(request)
    assert caught.value.status == 401 and "Basic" in caught.value.reason


def test_credentials_are_checked_before_the_body_is_read() -> None:
    assert rejected(b"{not json", basic(password="wrong")).status == 401


@pytest.mark.parametrize(("user", "password"), [(None, None), (USER, None), (None, PASSWORD), ("", "")])
def test_without_configured_credentials_every_delivery_is_refused_naming_the_settings(user, password) -> None:
    with pytest.raises(WebhookRejected) as caught:
        PipedriveWebhooks(user, password).parse(delivery(body()))
    assert caught.value.status == 401 and "CRMBRIDGE_WEBHOOK_PASSWORD" in caught.value.reason


def test_header_names_are_case_insensitive() -> None:
    request = WebhookRequest("POST", "/webhooks/pipedrive", {"authorization": basic()}, orjson.dumps(body()), 0)
    assert len(PipedriveWebhooks(USER, PASSWORD).parse(request)) == 1


def test_the_plugin_builds_the_verifier_from_the_credentials_setup_registers() -> None:
    verifier = plugin("pipedrive").webhooks(user=USER, password=SecretStr(PASSWORD))
    assert isinstance(verifier, WebhookVerifier)
    assert (verifier.source, verifier.max_events) == ("pipedrive", 1)
    assert len(verifier.parse(delivery(body()))) == 1


# -- malformed deliveries ----------------------------------------------------------------------------

def _without(key: str) -> dict[str, Any]:
    payload = body()
    del payload["meta"][key]
    return payload


MALFORMED = {
    "not JSON": b"{\"meta\": ",
    "not UTF-8": b"\xff\xfe{}",
    "an array": [body()],
    "a string": "meta",
    "no meta": {"data": {}, "previous": None},
    "meta not an object": {"meta": ["change"]},
    "no action": _without("action"),
    "no entity": _without("entity"),
    "no entity_id": _without("entity_id"),
    "no event id": _without("id"),
    "no timestamp": _without("timestamp"),
    "no attempt": _without("attempt"),
    "unknown action": body(action="archive"),
    "action not text": body(action=["change"]),
    "entity not text": body(entity={"x": 1}),
    "entity_id not an id": body(entity_id="42; DROP"),
    "entity_id negative": body(entity_id=-4),
    "entity_id a bool": body(entity_id=True),
    "event id empty": body(id="  "),
    "timestamp not a time": body(timestamp="yesterday"),
    "timestamp out of range": body(timestamp=9 * 10**18),
    "timestamp too large for a double": orjson.dumps(body(timestamp=1)).replace(b'"timestamp":1', b'"timestamp":1e400'),
    "timestamp negative": body(timestamp=-5),
    "attempt zero": body(attempt=0),
    "attempt text": body(attempt="1"),
    "change_source not text": body(change_source=3),
    "merged_to_id not an id": body(action="delete", merged_to_id="x"),
    "merged into itself": body(action="delete", merged_to_id="42"),
    "version unknown": body(version="3.0"),
    "data not an object": {**body(), "data": "x"},
}


@pytest.mark.parametrize("payload", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_deliveries_are_refused_with_400(payload) -> None:
    refused = rejected(payload)
    assert refused.status == 400 and refused.reason


def test_a_webhooks_v1_delivery_is_refused_with_a_hint_to_run_setup() -> None:
    v1 = {"v": 1, "matches_filters": {"current": []}, "event": "updated.person", "retry": 0,
          "meta": {"v": 1, "action": "updated", "object": "person", "id": 42, "timestamp": 1523440213},
          "current": {"id": 42}, "previous": {"id": 42}}
    refused = rejected(v1)
    assert refused.status == 400 and "v1" in refused.reason and "crmbridge setup" in refused.reason
    assert "crmbridge setup" in rejected(body(version="1.0")).reason


# -- never anything but WebhookRejected -------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=5), max_leaves=20)
META_VALUES = st.one_of(JSON, st.sampled_from(["create", "change", "delete", "person", "deal", "stage", "lead",
                                               "2.0", "1.0", STAMP, "42", "0", "-1", "", "1" * 30]),
                        st.integers(min_value=-2, max_value=10**20))
META = st.dictionaries(st.sampled_from(["action", "entity", "entity_id", "id", "timestamp", "attempt",
                                        "change_source", "merged_to_id", "version", "object"]), META_VALUES)


def _only_rejections(raw: bytes) -> None:
    try:
        events = PipedriveWebhooks(USER, PASSWORD).parse(delivery(raw))
    except WebhookRejected as exc:
        assert exc.status in (400, 401)
        return
    assert len(events) <= 1 and all(isinstance(e, WebhookEvent) for e in events)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_only_ever_rejected_with_400(raw) -> None:
    _only_rejections(raw)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_arbitrary_json_is_only_ever_rejected_or_parsed(value) -> None:
    _only_rejections(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS) if _dumpable(value) else b"null")


@settings(max_examples=500, deadline=None)
@given(META, st.one_of(st.none(), JSON), st.one_of(st.none(), JSON))
def test_arbitrary_meta_is_only_ever_rejected_or_parsed(meta, data, previous) -> None:
    payload = {"meta": meta, "data": data, "previous": previous}
    if _dumpable(payload):
        _only_rejections(orjson.dumps(payload))


def _dumpable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True
