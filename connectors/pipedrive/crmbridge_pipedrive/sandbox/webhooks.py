"""Pipedrive's webhooks in the sandbox: subscriptions as ``POST /v1/webhooks`` checks them, and deliveries.

Each write the account's state reports (a ``Change``) goes to every active webhooks v2 subscription
whose ``event_action``/``event_object`` match it (``*`` matches all): one event per request, HTTP Basic
auth from the subscription, ``meta.attempt`` rendered per attempt, retried after 3, 30 and 150 s, and
ten failures in a row ban the subscription for 30 minutes (its events meanwhile are lost). Version 1.0
subscriptions are kept and listed but never delivered to: the sandbox speaks webhooks v2 only.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from crmbridge.connectors import SandboxOptions
from crmbridge.sandbox.stats import SandboxStats
from crmbridge.sandbox.webhooks import DeliveryPolicy, WebhookDispatcher
from crmbridge_pipedrive.sandbox.state import Change

# Which actions and objects each webhooks version accepts (``POST /v1/webhooks``).
ACTIONS = {"1.0": ("added", "updated", "merged", "deleted", "*"), "2.0": ("create", "change", "delete", "*")}
OBJECTS = {"1.0": ("activity", "activityType", "deal", "note", "organization", "person", "pipeline", "product",
                   "stage", "user", "*"),
           "2.0": ("activity", "board", "deal", "deal_installment", "deal_product", "lead", "note", "organization",
                   "person", "phase", "pipeline", "product", "project", "stage", "task", "user", "*")}
POLICY = DeliveryPolicy(batch_size=1, retry_delays=(3, 30, 150), timeout=10.0, concurrency=10, ban_after=10,
                        ban_seconds=1800)
COMPANY_ID = 13_000_001
HOST = "lumen.pipedrive.com"
USER_AGENT = "Pipedrive Webhooks"


def _bad_url(url: Any) -> str | None:
    if not isinstance(url, str):
        return "must be text"
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "invalid or non-reachable URL"
    if parts.hostname == "pipedrive.com" or parts.hostname.endswith(".pipedrive.com"):
        return "Pipedrive API endpoints cannot be used as the subscription URL"
    return None


def _one_of(value: Any, allowed: Sequence[str]) -> str | None:
    return None if isinstance(value, str) and value in allowed else f"must be one of {', '.join(allowed)}"


def subscription_errors(body: Mapping[str, Any], users: Mapping[int, Any]) -> dict[str, list[str]]:
    """What ``POST /v1/webhooks`` refuses in ``body``, as Pipedrive's ``errors`` object (empty: fine)."""
    errors: dict[str, list[str]] = {}
    for key in ("subscription_url", "event_action", "event_object"):
        if body.get(key) in (None, ""):
            errors[key] = [f"{key} is required"]
    version = "1.0" if body.get("version") is None else body.get("version")
    problem = _one_of(version, tuple(ACTIONS))
    if problem:
        errors["version"] = [problem]
        version = "2.0"  # still say which actions and objects are wrong
    checks = {"subscription_url": _bad_url(body.get("subscription_url")),
              "event_action": _one_of(body.get("event_action"), ACTIONS[version]),
              "event_object": _one_of(body.get("event_object"), OBJECTS[version])}
    for key, problem in checks.items():
        if problem and key not in errors:
            errors[key] = [f"{problem} (version {version})" if key != "subscription_url" else problem]
    for key in ("http_auth_user", "http_auth_password"):
        if body.get(key) is not None and not isinstance(body.get(key), str):
            errors[key] = ["must be text"]
    user_id = body.get("user_id")
    if user_id is not None and (not isinstance(user_id, int) or user_id not in users):
        errors["user_id"] = ["no such user"]
    return errors


def matches(hook: Mapping[str, Any], change: Change) -> bool:
    return bool(hook.get("is_active")) and (hook.get("additional_data") or {}).get("version") == "2.0" and \
        hook.get("event_action") in ("*", change.action) and hook.get("event_object") in ("*", change.entity)


def iso_ms(ms: int) -> str:
    """RFC 3339 with milliseconds, as webhooks v2 stamp ``meta.timestamp``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def v1_time(seconds: float) -> str:
    """The sandbox's v1 webhook times (``add_time``, ``last_delivery_time``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def meta(change: Change, hook: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    """``meta`` of one event as a subscription receives it (``attempt`` is set per attempt)."""
    out: dict[str, Any] = {
        "action": change.action, "entity": change.entity, "entity_id": str(change.entity_id), "id": event_id,
        "timestamp": iso_ms(change.at_ms), "attempt": 1, "change_source": change.source,
        "company_id": str(COMPANY_ID), "correlation_id": change.correlation_id, "host": HOST,
        "is_bulk_edit": change.bulk, "permitted_user_ids": [str(hook.get("user_id"))], "type": "general",
        "user_id": str(change.user_id), "version": "2.0", "webhook_id": str(hook["id"]),
        "webhook_owner_id": str(hook.get("owner_id")),
    }
    if change.merged_to_id is not None:
        out["merged_to_id"] = str(change.merged_to_id)
    return out


@dataclass(frozen=True, slots=True)
class Event:
    """One event on its way to one subscription."""

    meta: dict[str, Any]
    data: dict[str, Any] | None
    previous: dict[str, Any] | None


@dataclass(slots=True)
class Subscription:
    """A ``Target``: where one webhook's events go, how they are authenticated, and where its delivery
    outcome (``last_delivery_time``, ``last_http_status``) is kept."""

    key: str
    url: str
    hook: dict[str, Any]  # the listed webhook, updated in place
    lock: threading.RLock | threading.Lock
    clock: Callable[[], float]

    def render(self, events: Sequence[Any], attempt: int) -> tuple[bytes, dict[str, str]]:
        event = events[0]
        body = {"data": event.data, "previous": event.previous, "meta": {**event.meta, "attempt": attempt}}
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        user, password = self.hook.get("http_auth_user"), self.hook.get("http_auth_password")
        if user:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return orjson.dumps(body), headers

    def answered(self, status: int | None) -> None:
        with self.lock:
            self.hook["last_delivery_time"] = v1_time(self.clock())
            self.hook["last_http_status"] = status


class WebhookSender:
    """The sandbox's one delivery engine: a ``Change`` in, an event out to each matching subscription."""

    def __init__(self, stats: SandboxStats, options: SandboxOptions) -> None:
        extra = options.extra
        self.dispatcher = WebhookDispatcher(
            POLICY, stats, retry_scale=float(extra.get("webhook_retry_scale", 1.0)),
            duplicates=float(extra.get("webhook_duplicates", 0.0)), shuffle=bool(extra.get("webhook_shuffle", False)),
            seed=options.seed, any_host=bool(extra.get("webhook_any_host", False)))

    def attach(self, state: Any) -> None:
        """Be told of ``state``'s writes; its lock guards the listed webhooks, its clock stamps deliveries."""

        def listener(change: Change, hooks: list[dict[str, Any]]) -> None:
            self.send(change, hooks, state.lock, state.clock)

        state.listener = listener

    def send(self, change: Change, hooks: list[dict[str, Any]], lock: threading.RLock | threading.Lock,
             clock: Callable[[], float]) -> None:
        event_id = str(uuid.uuid4())
        for hook in hooks:
            if matches(hook, change):
                target = Subscription(f"pipedrive-webhook-{hook['id']}", str(hook["subscription_url"]), hook, lock,
                                      clock)
                self.dispatcher.emit(target, [Event(meta(change, hook, event_id), change.data, change.previous)])

    def forget(self) -> None:
        self.dispatcher.forget()

    def drain(self, timeout: float = 30.0) -> bool:
        return self.dispatcher.drain(timeout)

    def close(self) -> None:
        self.dispatcher.close()
