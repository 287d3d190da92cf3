"""Pipedrive's webhooks v2 as crmbridge events: HTTP Basic auth checked, the one event of a delivery parsed.

HTTP Basic credentials are Pipedrive's only webhook authentication: ``crmbridge setup`` registers
``CRMBRIDGE_WEBHOOK_USER``/``_PASSWORD`` with every subscription and this verifier checks them in
constant time. A delivery is one JSON object, ``{"meta": {...}, "data": {...}|null, "previous": ...}``;
only ``meta`` is read (the worker reads the record back from Pipedrive). A merge is not an action of
its own in v2: the merged-away record's ``delete`` (or ``change``) carries ``meta.merged_to_id``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from crmbridge.connectors import WebhookEvent, WebhookRejected, WebhookRequest
from crmbridge_pipedrive import streams as S

V1_ACTIONS = frozenset({"added", "updated", "merged", "deleted"})
V1_KEYS = frozenset({"current", "v", "event", "retry", "matches_filters"})
MAX_ID_CHARS = 128
MAX_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z
SECONDS_BELOW = 100_000_000_000  # an epoch number below this counts seconds (until the year 5138), else ms
V1_HINT = ("a webhooks v1 delivery: crmbridge reads webhooks v2 only; run `crmbridge setup`, which "
           "subscribes with version 2.0, and delete the v1 webhook")


def _bad(reason: str) -> WebhookRejected:
    return WebhookRejected(400, reason)


@dataclass(frozen=True, slots=True)
class _Meta:
    """The fields of ``meta`` crmbridge keeps, checked."""

    event_id: str
    action: str  # create, change or delete
    entity: str
    entity_id: str
    occurred_ms: int
    merged_to_id: str | None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict (tests, other hosts): look case-insensitively
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic base64(user:password)`` as (user, password); None when it is not that."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def _positive_id(value: Any, name: str) -> str:
    """A Pipedrive numeric id (an integer, or its digits as text) as text."""
    if isinstance(value, bool):
        raise _bad(f"meta.{name} must be an id")
    if isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value <= 0:
        raise _bad(f"meta.{name} must be a positive integer id")
    return str(value)


def _any_id(value: Any, name: str) -> str:
    """An id of any kind (numeric, or a UUID as leads and events have), as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= MAX_ID_CHARS:
        return value.strip()
    raise _bad(f"meta.{name} must be a non-empty id")


def occurred_ms(value: Any) -> int:
    """``meta.timestamp`` in epoch ms: RFC 3339 text (what v2 sends) or an epoch number (s or ms)."""
    ms: float
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise _bad("meta.timestamp must be a finite time")
        ms = value * 1000 if abs(value) < SECONDS_BELOW else value
    elif isinstance(value, str) and 0 < len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value.strip())
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            ms = parsed.timestamp() * 1000
        except (ValueError, OverflowError, OSError):
            raise _bad("meta.timestamp must be an RFC 3339 date-time") from None
    else:
        raise _bad("meta.timestamp must be an RFC 3339 date-time")
    if not 0 < ms <= MAX_MS:
        raise _bad("meta.timestamp is out of range")
    return int(ms)


def _check_v2(body: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    version, action = meta.get("version"), meta.get("action")
    if V1_KEYS & body.keys() or ("object" in meta and "entity" not in meta) or version == "1.0" or (
            isinstance(action, str) and action in V1_ACTIONS):
        raise _bad(V1_HINT)
    if version is not None and version != S.WEBHOOK_VERSION:
        raise _bad("meta.version must be 2.0")
    for part in ("data", "previous"):
        if not isinstance(body.get(part), dict | None):
            raise _bad(f"{part} must be an object or null")
    attempt = meta.get("attempt")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise _bad("meta.attempt must be a positive integer")
    if not isinstance(meta.get("change_source"), str | None):
        raise _bad("meta.change_source must be text")


def read_meta(body: Any) -> _Meta:
    """The checked ``meta`` of a v2 delivery body; ``WebhookRejected(400)`` for anything else."""
    if not isinstance(body, dict):
        raise _bad("expected one JSON object (a webhooks v2 event)")
    meta = body.get("meta")
    if not isinstance(meta, dict):
        raise _bad(V1_HINT if V1_KEYS & body.keys() else "missing meta object")
    _check_v2(body, meta)
    action, entity = meta.get("action"), meta.get("entity")
    if not isinstance(action, str) or action not in S.WEBHOOK_ACTIONS:
        raise _bad("meta.action must be one of create, change, delete")
    if not isinstance(entity, str) or not entity:
        raise _bad("meta.entity must be text")
    mapped = entity in S.WEBHOOK_STREAMS
    entity_id = (_positive_id if mapped else _any_id)(meta.get("entity_id"), "entity_id")
    merged = meta.get("merged_to_id")
    merged_to = _positive_id(merged, "merged_to_id") if merged is not None and mapped else None
    if merged_to is not None and merged_to == entity_id:
        raise _bad("meta.merged_to_id names the record itself")
    return _Meta(_any_id(meta.get("id"), "id"), action, entity, entity_id, occurred_ms(meta.get("timestamp")),
                 merged_to)


def _stage_pipeline(body: Mapping[str, Any]) -> str | None:
    """The pipeline a stage event is about (the stage's ``pipeline_id``, now or before)."""
    for part in ("data", "previous"):
        value = (body.get(part) or {}).get("pipeline_id")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return str(value)
    return None


def to_event(meta: _Meta, body: Mapping[str, Any]) -> WebhookEvent | None:
    """The crmbridge event a checked delivery means; None for objects crmbridge does not read."""
    stream = S.WEBHOOK_STREAMS.get(meta.entity)
    if stream is None:
        return None
    if meta.entity == "stage":  # the pipeline's record holds its stages: it changed
        pipeline = _stage_pipeline(body)
        return None if pipeline is None else WebhookEvent(meta.event_id, stream, pipeline, "changed",
                                                           meta.occurred_ms)
    if meta.merged_to_id is not None and meta.action in ("delete", "change"):
        return WebhookEvent(meta.event_id, stream, meta.entity_id, "merged", meta.occurred_ms,
                            merged_into=meta.merged_to_id, merged_ids=(meta.entity_id,))
    return WebhookEvent(meta.event_id, stream, meta.entity_id, S.WEBHOOK_ACTIONS[meta.action], meta.occurred_ms)


class PipedriveWebhooks:
    """``WebhookVerifier`` for Pipedrive: Basic credentials, then one v2 event per delivery."""

    source = "pipedrive"
    max_events = 1

    def __init__(self, user: str | None, password: str | None) -> None:
        self._user = (user or "").encode()
        self._password = (password or "").encode()

    def authenticate(self, headers: Mapping[str, str]) -> None:
        if not self._user or not self._password:
            raise WebhookRejected(401, "no webhook credentials configured: set CRMBRIDGE_WEBHOOK_USER and "
                                       "CRMBRIDGE_WEBHOOK_PASSWORD (the ones `crmbridge setup` registers)")
        given = basic_credentials(_header(headers, "Authorization"))
        user, password = given or ("", "")
        # Both comparisons always run, so the time taken says nothing about which part was wrong.
        user_ok = hmac.compare_digest(user.encode(), self._user)
        password_ok = hmac.compare_digest(password.encode(), self._password)
        if given is None:
            raise WebhookRejected(401, "missing or malformed HTTP Basic credentials")
        if not (user_ok and password_ok):
            raise WebhookRejected(401, "wrong HTTP Basic credentials")

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        self.authenticate(request.headers)
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            raise _bad("body is not valid JSON") from None
        event = to_event(read_meta(body), body)
        return [] if event is None else [event]


def verifier(user: Any = None, password: Any = None, **_: Any) -> PipedriveWebhooks:
    """From the core's options; a ``SecretStr`` password is accepted as well as text."""
    secret = password.get_secret_value() if hasattr(password, "get_secret_value") else password
    return PipedriveWebhooks(str(user) if user is not None else None, str(secret) if secret is not None else None)
