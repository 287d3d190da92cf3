"""HubSpot's webhook deliveries as crmbridge events: the v3 signature checked, the event array parsed.

A delivery is signed with the app's client secret: ``X-HubSpot-Signature-v3`` is
base64(HMAC-SHA256(secret, method + URI + body + timestamp)) and ``X-HubSpot-Request-Timestamp`` the
milliseconds it was sent at; deliveries older than five minutes are replays. The body is a JSON array
of at most 100 events; each becomes a ``WebhookEvent`` that keeps which record changed and how, never
a property value (the worker reads the record back from HubSpot). The sandbox signs with the same
``v3_signature``, so both sides agree on the URI decoding HubSpot documents.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

import orjson

from crmbridge.connectors import WebhookEvent, WebhookRejected, WebhookRequest
from crmbridge.logs import register_secret

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_EVENTS = 100
MAX_AGE_MS = 5 * 60 * 1000  # HubSpot: reject a request whose timestamp is older than five minutes
MAX_SKEW_MS = 60 * 1000  # a sender's clock ahead of ours by more than this is not a clock, it is a forgery
MAX_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z

# HubSpot decodes these percent-encoded characters of the request URI before it signs; so must we.
_URI_DECODED = {"3A": ":", "2F": "/", "3F": "?", "40": "@", "21": "!", "24": "$", "27": "'", "28": "(",
                "29": ")", "2A": "*", "2C": ",", "3B": ";"}
_URI_ESCAPE = re.compile("%(" + "|".join(_URI_DECODED) + ")", re.IGNORECASE)

# Legacy subscription types name the object first: ``contact.creation``. Generic ones (``object.*``)
# say which object in ``objectTypeId``.
OBJECT_STREAMS = {"contact": "contacts", "company": "companies", "deal": "deals"}
OBJECT_TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals"}
ACTIONS = {"creation": "created", "propertyChange": "changed", "deletion": "deleted", "privacyDeletion": "deleted",
           "restore": "created", "merge": "merged", "associationChange": "associated"}


def signing_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the documented percent-escapes decoded, everything else kept."""
    return _URI_ESCAPE.sub(lambda m: _URI_DECODED[m.group(1).upper()], uri)


def v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.upper().encode() + signing_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def v1_signature(secret: str, body: bytes) -> str:
    """The legacy ``X-HubSpot-Signature`` (version v1): hex SHA-256 of secret + body, without a timestamp."""
    return hashlib.sha256(secret.encode() + body).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict (tests, other hosts): look case-insensitively
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == name.lower()), None)
    return value if isinstance(value, str) else None


def _bad(reason: str) -> WebhookRejected:
    return WebhookRejected(400, reason)


def _id(event: Mapping[str, Any], key: str, *, positive: bool = True) -> int:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < (1 if positive else 0):
        raise _bad(f"every event needs {key} as a {'positive' if positive else 'non-negative'} integer")
    return value


def _ids(event: Mapping[str, Any], key: str) -> list[int]:
    value = event.get(key)
    if not isinstance(value, list) or len(value) > 10_000:
        raise _bad(f"a merge event needs {key} as a list of ids")
    return [_id({key: v}, key) for v in value]


class HubSpotWebhooks:
    """Implements ``crmbridge.connectors.WebhookVerifier`` for HubSpot's webhooks API (signature v3)."""

    source = "hubspot"
    max_events = MAX_EVENTS

    def __init__(self, secret: str | None) -> None:
        self._secret = secret or None
        if self._secret:
            register_secret(self._secret)

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        self._verify(request)
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            raise _bad("the body is not JSON") from None
        if not isinstance(body, list):
            raise _bad("the body must be a JSON array of events")
        if len(body) > MAX_EVENTS:
            raise _bad(f"more than {MAX_EVENTS} events in one delivery")
        events = [parse_event(item) for item in body]
        return [e for e in events if e is not None]

    def _verify(self, request: WebhookRequest) -> None:
        if not self._secret:
            raise WebhookRejected(401, "no HubSpot client secret configured (CRMBRIDGE_HUBSPOT_CLIENT_SECRET)")
        signature = _header(request.headers, SIGNATURE_HEADER)
        stamp = _header(request.headers, TIMESTAMP_HEADER)
        if not signature or not stamp:
            raise WebhookRejected(401, f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
        stamp = stamp.strip()
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 15):
            raise WebhookRejected(401, f"{TIMESTAMP_HEADER} is not epoch milliseconds")
        age = request.received_ms - int(stamp)
        if age > MAX_AGE_MS:
            raise WebhookRejected(401, "the delivery is older than five minutes (a replay, or a clock far behind)")
        if age < -MAX_SKEW_MS:
            raise WebhookRejected(401, "the delivery's timestamp is in the future")
        expected = v3_signature(self._secret, request.method, request.uri, request.body, stamp)
        if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
            raise WebhookRejected(401, f"{SIGNATURE_HEADER} does not match (wrong client secret, or a changed URI "
                                       "or body)")


def _stream_action(event: Mapping[str, Any], kind: str) -> tuple[str, str] | None:
    prefix, _, suffix = kind.partition(".")
    stream = OBJECT_TYPE_IDS.get(str(event.get("objectTypeId"))) if prefix == "object" else OBJECT_STREAMS.get(prefix)
    action = ACTIONS.get(suffix)
    return (stream, action) if stream and action else None


def parse_event(event: Any) -> WebhookEvent | None:
    """One event of a delivery; None for subscription types crmbridge does not read."""
    if not isinstance(event, dict):
        raise _bad("every event must be a JSON object")
    event_id = _id(event, "eventId", positive=False)
    kind = event.get("subscriptionType")
    if not isinstance(kind, str) or not kind:
        raise _bad("every event needs subscriptionType as text")
    occurred = _id(event, "occurredAt", positive=False)
    if occurred > MAX_MS:
        raise _bad("occurredAt is not epoch milliseconds")
    found = _stream_action(event, kind)
    if found is None:
        return None
    stream, action = found
    # HubSpot does not promise eventId is unique across subscriptions; a redelivery repeats both.
    subscription = event.get("subscriptionId")
    key = f"{subscription}:{event_id}" if isinstance(subscription, int | str) and subscription != "" else str(event_id)
    base = {"event_id": key, "stream": stream, "action": action, "occurred_ms": occurred}
    if action == "associated":  # association events name the record in fromObjectId
        return WebhookEvent(object_id=str(_id(event, "fromObjectId")), **base)
    if action == "merged":
        return _merge(event, base)
    object_id = str(_id(event, "objectId"))
    if action == "changed":
        name = event.get("propertyName")
        if not isinstance(name, str) or not name:
            raise _bad("a propertyChange event needs propertyName as text")
        return WebhookEvent(object_id=object_id, property_name=name, **base)
    return WebhookEvent(object_id=object_id, **base)


def _merge(event: Mapping[str, Any], base: dict[str, Any]) -> WebhookEvent:
    primary = _id(event, "primaryObjectId")
    merged = _ids(event, "mergedObjectIds")
    new = _id(event, "newObjectId") if event.get("newObjectId") is not None else None
    survivor = new or primary
    gone = [m for m in merged if m != survivor]
    if new is not None and new != primary:
        gone.append(primary)  # the survivor got a new id: the primary's old one disappeared too
    ids = tuple(str(i) for i in dict.fromkeys(gone))
    return WebhookEvent(object_id=str(survivor), merged_into=str(survivor), merged_ids=ids, **base)


def verifier(secret: str | None = None, **_: Any) -> HubSpotWebhooks:
    """The verifier with ``secret``, or else ``CRMBRIDGE_HUBSPOT_CLIENT_SECRET``; other options (the
    basic-auth ``user``/``password`` other vendors use) mean nothing to HubSpot."""
    if secret is None:
        from crmbridge_hubspot.settings import HubSpotSettings

        configured = HubSpotSettings().client_secret
        secret = configured.get_secret_value() if configured else None
    return HubSpotWebhooks(secret)
