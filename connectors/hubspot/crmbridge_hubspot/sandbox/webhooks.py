"""The sandbox's public app: webhook settings and subscriptions (webhooks v3), and the deliveries they ask for.

``WebhookApp`` is the portal's ``ChangeListener``: every change made through ``HubSpotPortal`` becomes
the events the active subscriptions name, in HubSpot's payload shape, handed to one
``WebhookDispatcher`` that batches (100 per request), signs each attempt (``X-HubSpot-Signature-v3``
over POST + target URL + body + timestamp, and the legacy v1 signature), and retries on HubSpot's
schedule. With no target URL or no active subscription it does nothing at all, so bulk writes stay cheap.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from crmbridge.sandbox.webhooks import DeliveryPolicy, WebhookDispatcher
from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.clock import iso_ms, now_ms
from crmbridge_hubspot.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, v1_signature, v3_signature

BATCH_SIZE = 100
TIMEOUT_SECONDS = 5.0  # HubSpot counts an answer slower than this as a failure
DEFAULT_MAX_CONCURRENT = 10
MIN_MAX_CONCURRENT = 5
MAX_SUBSCRIPTIONS = 1000
# HubSpot retries a failed delivery up to 10 times, spread over the next 24 hours with growing delays
# (its documentation gives no exact table): 1, 5, 15, 30 minutes, then 1, 2, 3, 4, 6 and 7 hours.
RETRY_DELAYS: tuple[float, ...] = (60, 300, 900, 1800, 3600, 7200, 10800, 14400, 21600, 25200)

_OBJECTS = ("contact", "company", "deal", "ticket", "product", "line_item")
# The subscription types the webhooks API documents (and the SDK's models accept).
EVENT_TYPES: frozenset[str] = frozenset(
    [f"{o}.{e}" for o in _OBJECTS for e in ("propertyChange", "creation", "deletion", "merge", "restore")]
    + [f"{o}.associationChange" for o in _OBJECTS if o != "product"]
    + ["contact.privacyDeletion", "conversation.creation", "conversation.deletion", "conversation.newMessage",
       "conversation.privacyDeletion", "conversation.propertyChange"]
    + [f"object.{e}" for e in ("propertyChange", "creation", "deletion", "merge", "restore", "associationChange")]
)
# Sandbox object types that send webhooks, by the prefix of their subscription types.
PREFIX = {"contacts": "contact", "companies": "company", "deals": "deal"}
CHANGE_FLAGS = {"creation": "NEW", "deletion": "DELETED", "merge": "MERGED"}


@dataclass(slots=True)
class Subscription:
    id: int
    event_type: str
    property_name: str | None
    active: bool
    created_ms: int
    updated_ms: int

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": str(self.id), "eventType": self.event_type, "active": self.active,
                                "createdAt": iso_ms(self.created_ms), "updatedAt": iso_ms(self.updated_ms)}
        if self.property_name:
            body["propertyName"] = self.property_name
        return body


@dataclass(frozen=True, slots=True)
class AppSettings:
    target_url: str
    max_concurrent: int
    created_ms: int
    updated_ms: int

    def to_json(self) -> dict[str, Any]:
        return {"targetUrl": self.target_url, "throttling": {"maxConcurrentRequests": self.max_concurrent},
                "createdAt": iso_ms(self.created_ms), "updatedAt": iso_ms(self.updated_ms)}


@dataclass(frozen=True, slots=True)
class HubSpotTarget:
    """The app's target URL; each attempt is rendered anew: its ``attemptNumber``, timestamp and signatures."""

    key: str
    url: str
    secret: str

    def render(self, events: Sequence[Any], attempt: int) -> tuple[bytes, dict[str, str]]:
        body = orjson.dumps([{**event, "attemptNumber": attempt - 1} for event in events])
        stamp = str(time.time_ns() // 1_000_000)
        return body, {"Content-Type": "application/json",
                      SIGNATURE_HEADER: v3_signature(self.secret, "POST", self.url, body, stamp),
                      TIMESTAMP_HEADER: stamp,
                      "X-HubSpot-Signature": v1_signature(self.secret, body), "X-HubSpot-Signature-Version": "v1"}


@dataclass(frozen=True, slots=True)
class _Index:
    """Active subscriptions by what they listen to; rebuilt (and swapped whole) on every change."""

    events: Mapping[str, tuple[Subscription, ...]]  # "contact.creation" -> subscriptions
    properties: Mapping[str, Mapping[str, tuple[Subscription, ...]]]  # "contacts" -> property -> subscriptions

    @property
    def empty(self) -> bool:
        return not self.events and not self.properties


_EMPTY = _Index({}, {})


class WebhookApp:
    """The app's webhook configuration, and the portal's ``ChangeListener``."""

    def __init__(self, *, app_id: int, secret: str, developer_key: str, portal_id: int,
                 dispatcher: WebhookDispatcher, has_property: Callable[[str, str], bool],
                 clock: Callable[[], int] = now_ms) -> None:
        self.app_id = app_id
        self.secret = secret
        self.developer_key = developer_key
        self.portal_id = portal_id
        self.dispatcher = dispatcher
        self.has_property = has_property
        self.clock = clock
        self._lock = threading.Lock()
        self.settings: AppSettings | None = None
        self.subscriptions: dict[int, Subscription] = {}
        self._index = _EMPTY
        self._target: HubSpotTarget | None = None
        self._ids = itertools.count(1_000_001)
        self._event_ids = itertools.count(100_000_001)  # never restarts, so no reset makes a replay

    def reset(self) -> None:
        with self._lock:
            self.settings = None
            self.subscriptions.clear()
            self._reindex()
        self.dispatcher.forget()

    # -- settings --------------------------------------------------------------------------------------

    def put_settings(self, body: Any) -> AppSettings:
        if not isinstance(body, dict):
            raise errors.validation("Invalid input JSON: expected an object with targetUrl and throttling")
        url = body.get("targetUrl")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 2000:
            raise errors.validation("targetUrl must be an absolute http(s) URL", context={"targetUrl": [str(url)]})
        throttling = body.get("throttling") if isinstance(body.get("throttling"), dict) else {}
        n = throttling.get("maxConcurrentRequests", DEFAULT_MAX_CONCURRENT)
        if isinstance(n, bool) or not isinstance(n, int) or n < MIN_MAX_CONCURRENT:
            raise errors.validation(f"throttling.maxConcurrentRequests must be an integer of at least "
                                    f"{MIN_MAX_CONCURRENT}", context={"maxConcurrentRequests": [str(n)]})
        now = self.clock()
        with self._lock:
            created = self.settings.created_ms if self.settings else now
            self.settings = AppSettings(url, n, created, now)
            self._reindex()
        return self.settings

    def delete_settings(self) -> None:
        with self._lock:
            self.settings = None
            self._reindex()

    # -- subscriptions ---------------------------------------------------------------------------------

    def subscription(self, key: str) -> Subscription:
        found = self.subscriptions.get(int(key)) if key.isdigit() else None
        if found is None:
            raise errors.not_found(f"Subscription {key} not found", {"subscriptionId": [key]})
        return found

    def subscribe(self, body: Any) -> Subscription:
        event_type, prop, active = self._validated(body)
        now = self.clock()
        with self._lock:
            if any(s.event_type == event_type and s.property_name == prop for s in self.subscriptions.values()):
                raise errors.conflict(f"A subscription for {event_type}{' ' + prop if prop else ''} already exists")
            if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
                raise errors.validation(f"An app may have at most {MAX_SUBSCRIPTIONS} subscriptions")
            sub = Subscription(next(self._ids), event_type, prop, active, now, now)
            self.subscriptions[sub.id] = sub
            self._reindex()
        return sub

    def _validated(self, body: Any) -> tuple[str, str | None, bool]:
        if not isinstance(body, dict):
            raise errors.validation("Invalid input JSON: expected an object with eventType")
        event_type, prop, active = body.get("eventType"), body.get("propertyName"), body.get("active", True)
        if event_type not in EVENT_TYPES:
            raise errors.validation(f"eventType {event_type!r} is not one of the supported event types",
                                    context={"eventType": [str(event_type)]})
        if not isinstance(active, bool):
            raise errors.validation("active must be true or false", context={"active": [str(active)]})
        if event_type.endswith(".propertyChange"):
            if not isinstance(prop, str) or not prop:
                raise errors.validation("propertyName is required for propertyChange subscriptions",
                                        context={"propertyName": ["required"]})
            stream = next((t for t, p in PREFIX.items() if event_type.startswith(p + ".")), None)
            if stream is not None and not self.has_property(stream, prop):
                raise errors.validation(f"Property {prop} does not exist on {stream}", context={"propertyName": [prop]})
        elif prop is not None:
            raise errors.validation("propertyName is only allowed for propertyChange subscriptions",
                                    context={"propertyName": [str(prop)]})
        return event_type, prop, active

    def set_active(self, sub: Subscription, active: Any) -> Subscription:
        if not isinstance(active, bool):
            raise errors.validation("active must be true or false", context={"active": [str(active)]})
        with self._lock:
            sub.active, sub.updated_ms = active, self.clock()
            self._reindex()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self.subscriptions.pop(sub.id, None)
            self._reindex()

    def _reindex(self) -> None:
        """Called with the lock held, after any change to settings or subscriptions."""
        if self.settings is None:
            self._index, self._target = _EMPTY, None
            return
        events: dict[str, list[Subscription]] = {}
        properties: dict[str, dict[str, list[Subscription]]] = {}
        for sub in self.subscriptions.values():
            if not sub.active:
                continue
            if sub.property_name:
                stream = next((t for t, p in PREFIX.items() if sub.event_type == f"{p}.propertyChange"), None)
                if stream is not None:
                    properties.setdefault(stream, {}).setdefault(sub.property_name, []).append(sub)
            else:
                events.setdefault(sub.event_type, []).append(sub)
        n = self.settings.max_concurrent
        if self.dispatcher.policy.concurrency != n:  # a queue (and its semaphore) per concurrency setting
            self.dispatcher.policy = replace(self.dispatcher.policy, concurrency=n)
        self._target = HubSpotTarget(f"hubspot-app-{self.app_id}-c{n}", self.settings.target_url, self.secret)
        self._index = _Index({k: tuple(v) for k, v in events.items()},
                             {t: {p: tuple(v) for p, v in by.items()} for t, by in properties.items()})

    # -- the portal's ChangeListener --------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return not self._index.empty

    def watched(self, type_name: str) -> Sequence[str]:
        return tuple(self._index.properties.get(type_name, ()))

    def created(self, type_name: str, rid: int, at_ms: int, source: str) -> None:
        self._send(self._events(type_name, "creation", at_ms, source, {"objectId": rid}))

    def deleted(self, type_name: str, rid: int, at_ms: int, source: str) -> None:
        self._send(self._events(type_name, "deletion", at_ms, source, {"objectId": rid}))

    def changed(self, type_name: str, diffs: Sequence[tuple[int, Sequence[tuple[str, Any]]]], at_ms: int,
                source: str) -> None:
        by_property = self._index.properties.get(type_name, {})
        kind = f"{PREFIX.get(type_name)}.propertyChange"
        out = []
        for rid, changes in diffs:
            for name, value in changes:
                for sub in by_property.get(name, ()):
                    out.append(self._event(sub, kind, at_ms, source, {
                        "objectId": rid, "propertyName": name, "propertyValue": "" if value is None else str(value)}))
        self._send(out)

    def merged(self, type_name: str, primary: int, merged: int, new: int, moved: int, at_ms: int,
               source: str) -> None:
        """A merge makes a new record: the event names it in ``objectId`` and ``newObjectId``, beside the
        two ids that disappeared into it."""
        self._send(self._events(type_name, "merge", at_ms, source, {
            "objectId": new, "primaryObjectId": primary, "mergedObjectIds": [merged], "newObjectId": new,
            "numberOfPropertiesMoved": moved}))

    def associated(self, a_type: str, a_id: int, b_type: str, b_id: int, *, removed: bool, primary: bool,
                   at_ms: int, source: str) -> None:
        if a_type not in PREFIX or b_type not in PREFIX:
            return  # HubSpot reports association changes only among objects that send webhooks
        out = []
        for (x, x_id), (y, y_id) in (((a_type, a_id), (b_type, b_id)), ((b_type, b_id), (a_type, a_id))):
            out.extend(self._events(x, "associationChange", at_ms, source, {
                "objectId": x_id, "associationType": f"{PREFIX[x]}_TO_{PREFIX[y]}".upper(), "fromObjectId": x_id,
                "toObjectId": y_id, "associationRemoved": removed, "isPrimaryAssociation": primary}))
        self._send(out)

    def _events(self, type_name: str, event: str, at_ms: int, source: str, fields: dict[str, Any]
                ) -> list[dict[str, Any]]:
        prefix = PREFIX.get(type_name)
        if prefix is None:
            return []
        kind = f"{prefix}.{event}"
        flag = CHANGE_FLAGS.get(event)
        extra = {**fields, "changeFlag": flag} if flag else fields
        return [self._event(sub, kind, at_ms, source, extra) for sub in self._index.events.get(kind, ())]

    def _event(self, sub: Subscription, kind: str, at_ms: int, source: str, fields: Mapping[str, Any]
               ) -> dict[str, Any]:
        return {"eventId": next(self._event_ids), "subscriptionId": sub.id, "portalId": self.portal_id,
                "appId": self.app_id, "occurredAt": at_ms, "subscriptionType": kind, "changeSource": source, **fields}

    def _send(self, events: list[dict[str, Any]]) -> None:
        target = self._target
        if events and target is not None:
            self.dispatcher.emit(target, events)


def delivery_policy(max_concurrent: int = DEFAULT_MAX_CONCURRENT) -> DeliveryPolicy:
    return DeliveryPolicy(batch_size=BATCH_SIZE, retry_delays=RETRY_DELAYS, timeout=TIMEOUT_SECONDS,
                          concurrency=max_concurrent)
