"""HubSpot webhook deliveries: the v3 signature and timestamp decide 401, the body decides 400, the rest parses."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hubspot.utils.signature import Signature
from hypothesis import given, settings
from hypothesis import strategies as st

from crmbridge.connectors import WebhookEvent, WebhookRejected, WebhookRequest, WebhookVerifier, plugin
from crmbridge_hubspot.webhooks import HubSpotWebhooks, signing_uri, v3_signature

SECRET = "7f3c1e9a-client-secret"
URI = "https://crmbridge.example.com/webhooks/hubspot"
NOW = 1_796_000_000_000


def delivery(body: Any, *, secret: str = SECRET, uri: str = URI, sent_ms: int = NOW, received_ms: int = NOW,
             signature: str | None = None, headers: dict[str, str] | None = None) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    stamp = str(sent_ms)
    signed = signature if signature is not None else v3_signature(secret, "POST", uri, raw, stamp)
    found = {"Content-Type": "application/json", "X-HubSpot-Signature-v3": signed,
             "X-HubSpot-Request-Timestamp": stamp} if headers is None else headers
    return WebhookRequest("POST", uri, found, raw, received_ms)


def event(kind: str = "contact.creation", **fields: Any) -> dict[str, Any]:
    return {"eventId": 4001, "subscriptionId": 12, "portalId": 62515, "appId": 54321, "occurredAt": NOW - 1000,
            "subscriptionType": kind, "attemptNumber": 0, "objectId": 1001, "changeSource": "CRM_UI", **fields}


def rejected(request: WebhookRequest, verifier: HubSpotWebhooks | None = None) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        (verifier or HubSpotWebhooks(SECRET)).parse(request)
    return caught.value


# -- authentication --------------------------------------------------------------------------------------


def test_a_delivery_signed_by_the_official_sdk_helper_is_accepted() -> None:
    body = orjson.dumps([event()]).decode()
    stamp = str(NOW)
    signature = Signature.get_signature(SECRET, body, signature_version="v3", http_uri=URI, http_method="POST",
                                        timestamp=stamp)
    request = WebhookRequest("POST", URI, {"X-HubSpot-Signature-v3": signature,
                                           "X-HubSpot-Request-Timestamp": stamp}, body.encode(), NOW)
    assert HubSpotWebhooks(SECRET).parse(request) == [
        WebhookEvent("12:4001", "contacts", "1001", "created", NOW - 1000)]


def test_the_verifier_satisfies_the_core_protocol_and_reads_its_secret_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT_CLIENT_SECRET", SECRET)
    verifier = plugin("hubspot").webhooks(user="ignored", password="ignored")
    assert isinstance(verifier, WebhookVerifier)
    assert (verifier.source, verifier.max_events) == ("hubspot", 100)
    assert verifier.parse(delivery([event()]))[0].object_id == "1001"


def test_without_a_client_secret_every_delivery_is_refused(monkeypatch) -> None:
    monkeypatch.delenv("CRMBRIDGE_HUBSPOT_CLIENT_SECRET", raising=False)
    error = rejected(delivery([event()]), plugin("hubspot").webhooks())
    assert error.status == 401 and "CRMBRIDGE_HUBSPOT_CLIENT_SECRET" in error.reason


def test_an_explicit_secret_option_wins_over_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT_CLIENT_SECRET", "someone-else")
    assert plugin("hubspot").webhooks(secret=SECRET).parse(delivery([event()]))


@pytest.mark.parametrize("request_", [
    pytest.param(delivery([event()], secret="the-wrong-secret"), id="wrong secret"),
    pytest.param(delivery([event()], signature="bm90IGEgc2lnbmF0dXJl"), id="garbage signature"),
    pytest.param(delivery([event()], signature="ü\x00"), id="non-ascii signature"),
    pytest.param(WebhookRequest("POST", URI + "?changed=1", delivery([event()]).headers,
                                delivery([event()]).body, NOW), id="another URI"),
    pytest.param(WebhookRequest("POST", URI, delivery([event()]).headers, orjson.dumps([event(objectId=2)]), NOW),
                 id="a changed body"),
    pytest.param(delivery([event()], headers={"X-HubSpot-Request-Timestamp": str(NOW)}), id="no signature"),
    pytest.param(delivery([event()], headers={"X-HubSpot-Signature-v3": "x"}), id="no timestamp"),
    pytest.param(delivery([event()], headers={"X-HubSpot-Signature-v3": "x", "X-HubSpot-Request-Timestamp": "soon"}),
                 id="garbled timestamp"),
    pytest.param(delivery([event()], sent_ms=NOW - 5 * 60 * 1000 - 1), id="older than five minutes"),
    pytest.param(delivery([event()], sent_ms=NOW + 61_000), id="from the future"),
])
def test_bad_signatures_and_timestamps_get_401(request_: WebhookRequest) -> None:
    assert rejected(request_).status == 401


def test_a_delivery_just_inside_the_five_minutes_and_the_clock_skew_is_accepted() -> None:
    verifier = HubSpotWebhooks(SECRET)
    assert verifier.parse(delivery([event()], sent_ms=NOW - 5 * 60 * 1000))
    assert verifier.parse(delivery([event()], sent_ms=NOW + 60_000))


def test_headers_are_found_whatever_their_case() -> None:
    signed = delivery([event()])
    lower = {k.lower(): v for k, v in signed.headers.items()}
    assert HubSpotWebhooks(SECRET).parse(WebhookRequest("POST", URI, lower, signed.body, NOW))


def test_the_uri_is_signed_with_hubspots_documented_characters_decoded() -> None:
    encoded = "https://crmbridge.example.com/webhooks/hubspot?tenant=acme%3Aeu%2C1&x=%28a%29%40b%21"
    assert signing_uri(encoded) == "https://crmbridge.example.com/webhooks/hubspot?tenant=acme:eu,1&x=(a)@b!"
    assert signing_uri("https://h/p?q=a%20b%25c") == "https://h/p?q=a%20b%25c", "others stay encoded"
    body = orjson.dumps([event()]).decode()
    signature = Signature.get_signature(SECRET, body, "v3", http_uri=signing_uri(encoded), timestamp=str(NOW))
    request = WebhookRequest("POST", encoded, {"X-HubSpot-Signature-v3": signature,
                                               "X-HubSpot-Request-Timestamp": str(NOW)}, body.encode(), NOW)
    assert HubSpotWebhooks(SECRET).parse(request)


# -- the body --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    pytest.param(b"[{not json", id="malformed JSON"),
    pytest.param(b"", id="empty body"),
    pytest.param({"eventId": 1}, id="an object, not an array"),
    pytest.param([event()] * 101, id="more than 100 events"),
    pytest.param(["contact.creation"], id="an event that is not an object"),
    *[pytest.param([{k: v for k, v in event().items() if k != missing}], id=f"missing {missing}")
      for missing in ("eventId", "subscriptionType", "objectId", "occurredAt")],
    pytest.param([event(eventId="4001")], id="eventId as text"),
    pytest.param([event(objectId=True)], id="objectId as a boolean"),
    pytest.param([event(objectId=-3)], id="a negative objectId"),
    pytest.param([event(occurredAt=1.5)], id="occurredAt as a float"),
    pytest.param([event(subscriptionType=7)], id="subscriptionType as a number"),
    pytest.param([event("contact.propertyChange")], id="propertyChange without propertyName"),
    pytest.param([event("contact.merge", primaryObjectId=1, mergedObjectIds="2")], id="merge ids as text"),
    pytest.param([event("company.associationChange", fromObjectId=None)], id="association without fromObjectId"),
])
def test_malformed_oversized_or_mistyped_batches_get_400(body: Any) -> None:
    assert rejected(delivery(body)).status == 400


def test_a_batch_of_exactly_100_events_is_accepted() -> None:
    events = [event(eventId=i, objectId=1000 + i) for i in range(100)]
    assert len(HubSpotWebhooks(SECRET).parse(delivery(events))) == 100


@pytest.mark.parametrize(("kind", "stream", "action"), [
    ("contact.creation", "contacts", "created"), ("contact.deletion", "contacts", "deleted"),
    ("contact.privacyDeletion", "contacts", "deleted"), ("contact.restore", "contacts", "created"),
    ("company.creation", "companies", "created"), ("company.deletion", "companies", "deleted"),
    ("company.restore", "companies", "created"), ("deal.creation", "deals", "created"),
    ("deal.deletion", "deals", "deleted"), ("deal.restore", "deals", "created"),
])
def test_each_subscription_type_becomes_its_stream_and_action(kind: str, stream: str, action: str) -> None:
    [parsed] = HubSpotWebhooks(SECRET).parse(delivery([event(kind, objectId=77)]))
    assert (parsed.stream, parsed.action, parsed.object_id, parsed.event_id) == (stream, action, "77", "12:4001")


def test_a_property_change_keeps_the_property_name_and_never_its_value() -> None:
    [parsed] = HubSpotWebhooks(SECRET).parse(delivery([event("deal.propertyChange", propertyName="dealstage",
                                                             propertyValue="closedwon")]))
    assert (parsed.stream, parsed.action, parsed.property_name) == ("deals", "changed", "dealstage")
    assert "closedwon" not in repr(parsed)


def test_a_merge_names_the_survivor_and_every_id_that_disappeared() -> None:
    verifier = HubSpotWebhooks(SECRET)
    [kept] = verifier.parse(delivery([event("contact.merge", primaryObjectId=10, mergedObjectIds=[11, 12])]))
    assert (kept.action, kept.object_id, kept.merged_into, kept.merged_ids) == ("merged", "10", "10", ("11", "12"))
    [renewed] = verifier.parse(delivery([event("company.merge", primaryObjectId=10, mergedObjectIds=[11],
                                               newObjectId=99)]))
    assert (renewed.stream, renewed.merged_into, renewed.merged_ids) == ("companies", "99", ("11", "10"))


def test_an_association_change_is_about_the_from_object() -> None:
    body = [{**{k: v for k, v in event("contact.associationChange").items() if k != "objectId"},
             "associationType": "CONTACT_TO_COMPANY", "fromObjectId": 5, "toObjectId": 6,
             "associationRemoved": False, "isPrimaryAssociation": True}]
    [parsed] = HubSpotWebhooks(SECRET).parse(delivery(body))
    assert (parsed.stream, parsed.action, parsed.object_id) == ("contacts", "associated", "5")


def test_generic_object_subscriptions_name_the_object_by_type_id() -> None:
    [parsed] = HubSpotWebhooks(SECRET).parse(delivery([event("object.creation", objectTypeId="0-2")]))
    assert (parsed.stream, parsed.action) == ("companies", "created")


def test_subscription_types_crmbridge_does_not_read_are_skipped_not_refused() -> None:
    body = [event("ticket.creation"), event("conversation.newMessage"), event("object.creation", objectTypeId="0-5"),
            event("contact.somethingNew"), event(eventId=9)]
    assert [e.event_id for e in HubSpotWebhooks(SECRET).parse(delivery(body))] == ["12:9"]


# -- never anything but a list or a rejection --------------------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
                     | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner,
                                                                                   max_size=6), max_leaves=30)
_field = st.sampled_from(["eventId", "subscriptionType", "objectId", "occurredAt", "propertyName", "primaryObjectId",
                          "mergedObjectIds", "newObjectId", "fromObjectId", "objectTypeId"])
_kind = st.sampled_from(["contact.creation", "contact.propertyChange", "contact.merge", "deal.associationChange",
                         "object.deletion", "company.restore", "ticket.creation", ""])
_events = st.lists(st.builds(lambda kind, extra: {**event(kind), **extra}, _kind,
                             st.dictionaries(_field, _json, max_size=4)), max_size=4)


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # unlike orjson, writes integers beyond 64 bits (and Infinity)


def _only_events_or_rejections(request: WebhookRequest) -> None:
    try:
        out = HubSpotWebhooks(SECRET).parse(request)
    except WebhookRejected as exc:
        assert exc.status in (400, 401)
        return
    assert isinstance(out, list) and all(isinstance(e, WebhookEvent) for e in out)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | _json.map(_dumps) | _events.map(_dumps))
def test_any_signed_body_gives_events_or_a_rejection_never_another_error(raw: bytes) -> None:
    _only_events_or_rejections(delivery(raw))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp", "x-other"]),
                       st.text(max_size=40), max_size=3), st.text(max_size=60), st.integers(-2**40, 2**60))
def test_any_headers_uri_and_clock_give_events_or_a_rejection(headers: dict[str, str], uri: str, now: int) -> None:
    _only_events_or_rejections(WebhookRequest("POST", uri, headers, b"[]", now))
