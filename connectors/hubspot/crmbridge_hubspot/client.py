"""``HubSpotClient``: every HubSpot call crmbridge makes, through the official SDK, paced and retried.

The SDK brings authentication, paths, parameters and its urllib3 transport, but no timeout, no
pacing, and (its urllib3 retry skips POST) no useful retry for search or batch calls. This wrapper
adds them in one place: a pacer shared by all threads (from HubSpot's quota headers), a separate
pacer for search (which sends no headers), a timeout on every call, errors typed by what the caller
can do, and one tenacity retry policy.

Responses are read with ``_preload_content=False`` and parsed with orjson: turning a page of 100
contacts into the SDK's model objects costs about 40 ms of CPU (measured against the sandbox),
several times what mapping and storing them costs, and we only need the plain JSON. The sandbox's
conformance tests check that the SDK's models do deserialise every answer.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import hubspot
import orjson
import urllib3
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from crmbridge.connectors import ApiUsage
from crmbridge.errors import (
    ApiError,
    AuthError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    SearchCapError,
)
from crmbridge.logs import get_logger, register_secret
from crmbridge.pacing import Pacer
from crmbridge.retrying import backoff
from crmbridge_hubspot.settings import HubSpotSettings

log = get_logger("crmbridge.hubspot")

SEARCH_CAP = 10_000


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _body(exc: Any) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    if not raw:
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def classify(exc: BaseException, endpoint: str) -> ApiError:
    """Turn whatever the SDK or urllib3 raised into an error typed by what the caller can do."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, orjson.JSONDecodeError):
        return RetryableError(f"{endpoint}: an answer that is not JSON", endpoint=endpoint)
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return RetryableError(f"{endpoint}: connection problem ({type(exc).__name__})", endpoint=endpoint)
    status = getattr(exc, "status", None)
    if status is None:
        return PermanentError(f"{endpoint}: {type(exc).__name__}", endpoint=endpoint)
    body = _body(exc)
    message = str(body.get("message") or getattr(exc, "reason", "") or "error")[:300]
    category = body.get("category") or body.get("errorType")
    text = f"{endpoint}: HubSpot answered {status}: {message}"
    if status == 429:
        retry_after = _header(getattr(exc, "headers", None), "Retry-After")
        return RateLimitedError(text, retry_after=float(retry_after) if retry_after else None,
                                policy=body.get("policyName"), status=status, endpoint=endpoint, category=category)
    if status == 0 or status >= 500:
        return RetryableError(text, status=status, endpoint=endpoint, category=category)
    if status in (401, 403):
        return AuthError(text, status=status, endpoint=endpoint, category=category)
    if status == 404:
        return NotFoundError(text, status=status, endpoint=endpoint, category=category)
    if status == 400 and str(SEARCH_CAP) in message.replace(",", ""):
        return SearchCapError(text, status=status, endpoint=endpoint, category=category)
    return PermanentError(text, status=status, endpoint=endpoint, category=category)


class HubSpotClient:
    """The official SDK behind one pacer, one timeout and one retry policy."""

    def __init__(self, settings: HubSpotSettings) -> None:
        token = settings.access_token.get_secret_value() if settings.access_token else ""
        register_secret(token)
        self.settings = settings
        sdk = hubspot.Client.create(access_token=token, host=settings.base_url.rstrip("/"), retry=False)
        self.objects = sdk.crm.objects.basic_api
        self.search = sdk.crm.objects.search_api
        self.batch = sdk.crm.objects.batch_api
        self.owners = sdk.crm.owners.owners_api
        self.pipelines = sdk.crm.pipelines.pipelines_api
        self.events = sdk.events.events_api
        self.forms = sdk.marketing.forms.forms_api
        self.properties = sdk.crm.properties.core_api
        self.associations = sdk.crm.associations.v4.batch_api
        self.stages = sdk.crm.pipelines.pipeline_stages_api
        self.property_groups = sdk.crm.properties.groups_api
        self.properties_batch = sdk.crm.properties.batch_api
        self.webhook_settings, self.webhook_subscriptions = self._developer_apis(settings)
        self.pacer = Pacer(settings.burst_limit, settings.burst_interval_seconds, margin=1)
        self.search_pacer = Pacer(max(1, round(settings.search_per_second)), 1.0, margin=0)
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._retries = 0
        self._rate_limited = 0
        self._daily_remaining: int | None = None

    @staticmethod
    def _developer_apis(settings: HubSpotSettings) -> tuple[Any, Any]:
        """The webhooks API authenticates with the developer account's key (``hapikey``), not the token."""
        if settings.developer_api_key is None:
            return None, None
        key = settings.developer_api_key.get_secret_value()
        register_secret(key)
        sdk = hubspot.Client.create(api_key=key, host=settings.base_url.rstrip("/"), retry=False)
        return sdk.webhooks.settings_api, sdk.webhooks.subscriptions_api

    def usage(self) -> ApiUsage:
        with self._lock:
            return ApiUsage(dict(self._calls), self._retries, self._rate_limited)

    # -- the one path every call takes ---------------------------------------------------------

    def call(self, endpoint: str, fn: Callable[..., Any], *args: Any, search: bool = False, **kwargs: Any) -> Any:
        """Call ``fn`` (an SDK ``*_with_http_info`` method) with pacing, timeout and retries; JSON back."""
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.max_attempts) | stop_after_delay(self.settings.max_retry_seconds),
            # A rate-limited call waits nothing more: the pacer already holds every caller until the window has room.
            wait=backoff(self.settings.backoff_base_seconds, self.settings.backoff_max_seconds,
                         paced=lambda e: isinstance(e, RateLimitedError)),
            retry=retry_if_exception_type(RetryableError),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retrying(self._once, endpoint, fn, args, kwargs, search)

    def _once(self, endpoint: str, fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any],
              search: bool) -> Any:
        pacer = self.search_pacer if search else self.pacer
        pacer.wait()
        with self._lock:
            self._calls[endpoint] += 1
        try:
            response = fn(*args, _request_timeout=self._timeout, _preload_content=False, **kwargs)
            headers = response.headers
            data = orjson.loads(response.data) if response.data else {}
        except Exception as exc:
            error = classify(exc, endpoint)
            if isinstance(error, RateLimitedError):
                with self._lock:
                    self._rate_limited += 1
                pacer.block(error.retry_after if error.retry_after is not None else pacer.interval)
            raise error from None
        if not search:
            self._learn(headers)
        return data

    def _learn(self, headers: Any) -> None:
        limit = _header(headers, "X-HubSpot-RateLimit-Max")
        remaining = _header(headers, "X-HubSpot-RateLimit-Remaining")
        interval = _header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        daily = _header(headers, "X-HubSpot-RateLimit-Daily-Remaining")
        self.pacer.observe(limit=int(limit) if limit else None,
                           interval=int(interval) / 1000 if interval else None,
                           remaining=int(remaining) if remaining else None)
        if daily is not None:
            self._daily_remaining = int(daily)

    def _before_sleep(self, state: RetryCallState) -> None:
        with self._lock:
            self._retries += 1
        error = state.outcome.exception() if state.outcome else None
        log.info("hubspot.retry", endpoint=getattr(error, "endpoint", None), attempt=state.attempt_number,
                 status=getattr(error, "status", None), error=type(error).__name__)

    # -- reads ---------------------------------------------------------------------------------

    def list_page(self, object_type: str, *, after: str | None, properties: Sequence[str],
                  associations: Sequence[str], archived: bool = False, limit: int = 100) -> Any:
        return self.call(f"GET /crm/v3/objects/{object_type}", self.objects.get_page_with_http_info, object_type,
                         limit=limit, after=after, properties=list(properties) or None,
                         associations=list(associations) or None, archived=archived)

    def search_page(self, object_type: str, body: dict[str, Any]) -> Any:
        return self.call(f"POST /crm/v3/objects/{object_type}/search", self.search.do_search_with_http_info,
                         object_type, body, search=True)

    def owners_page(self, *, after: str | None, archived: bool, limit: int = 500) -> Any:
        return self.call("GET /crm/v3/owners", self.owners.get_page_with_http_info, after=after, limit=limit,
                         archived=archived)

    def pipelines_of(self, object_type: str) -> Any:
        return self.call(f"GET /crm/v3/pipelines/{object_type}", self.pipelines.get_all_with_http_info, object_type)

    def events_page(self, *, after: str | None, occurred_after: Any, limit: int = 100) -> Any:
        return self.call("GET /events/v3/events", self.events.get_page_with_http_info, object_type="contact",
                         after=after, occurred_after=occurred_after, limit=limit, sort=["ASCENDING"])

    def forms_page(self, *, after: str | None, limit: int = 50) -> Any:
        return self.call("GET /marketing/v3/forms", self.forms.get_page_with_http_info, after=after, limit=limit)

    def property_definitions(self, object_type: str) -> Any:
        return self.call(f"GET /crm/v3/properties/{object_type}", self.properties.get_all_with_http_info,
                         object_type)

    def batch_read(self, object_type: str, ids: Sequence[str], properties: Sequence[str]) -> Any:
        """Up to 100 records by id; ids HubSpot no longer holds come back as a 207's errors."""
        body = {"inputs": [{"id": i} for i in ids], "properties": list(properties)}
        return self.call(f"POST /crm/v3/objects/{object_type}/batch/read", self.batch.read_with_http_info,
                         object_type, body, archived=False)

    def associations_batch(self, from_type: str, to_type: str, ids: Sequence[str]) -> Any:
        body = {"inputs": [{"id": i} for i in ids]}
        return self.call(f"POST /crm/v4/associations/{from_type}/{to_type}/batch/read",
                         self.associations.get_page_with_http_info, from_type, to_type, body)
