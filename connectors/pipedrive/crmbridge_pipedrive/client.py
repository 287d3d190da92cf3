"""``PipedriveClient``: every Pipedrive call crmbridge makes, paced, timed out, retried and typed.

API v2 (persons, organizations, deals, activities, pipelines, stages) goes through a small client of
our own on a ``requests.Session``: ``pipedrive-python-lib`` 1.2.3 speaks only v1. The library is kept
for what is still v1 (users, ``*Fields``, leads) and its OAuth helpers, but never trusted on its own:
it would put the token in the query string, wait forever, and hand back an HTML error page as a
string. So every library call gets the token in the ``x-api-token`` header, a timeout, and a response
hook that raises a typed error for any non-2xx answer before the library sees it. Both paths share
one pacer (the per-token burst window), one search pacer, and one tenacity retry policy.

Pacing follows what Pipedrive's answers say: the burst window from ``x-ratelimit-*`` (a burst 429
holds everyone for ``x-ratelimit-reset``, or its ``Retry-After``), and the company's daily token budget
from ``x-daily-ratelimit-token-limit``/``-remaining``. Once a 429 says the day's tokens are spent
(``x-daily-ratelimit-token-remaining: 0``) no call is sent until its ``Retry-After`` has passed: each
fails at once with a ``RateLimitedError`` (policy ``daily``) that is not retried, since waiting hours
inside one call helps nobody and every further request would only be refused again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import requests
from pipedrive.client import Client as PipedriveV1
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay

from crmbridge.connectors import ApiUsage
from crmbridge.errors import (
    ApiError,
    AuthError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)
from crmbridge.logs import get_logger, register_secret
from crmbridge.pacing import Pacer
from crmbridge.retrying import backoff
from crmbridge_pipedrive import streams as S
from crmbridge_pipedrive.settings import PipedriveSettings

log = get_logger("crmbridge.pipedrive")

USER_AGENT = "crmbridge-pipedrive/0.1"
CDN_POLICY = "cdn"
DAILY_POLICY = "daily"
DAILY_LIMIT = "x-daily-ratelimit-token-limit"
DAILY_REMAINING = "x-daily-ratelimit-token-remaining"


class DailyBudget:
    """The company's daily token budget as Pipedrive's answers last told it, and when a spent one renews."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.limit: int | None = None
        self.remaining: int | None = None
        self._spent_until = 0.0
        self._lock = threading.Lock()

    def observe(self, limit: float | None, remaining: float | None) -> None:
        with self._lock:
            if limit is not None:
                self.limit = int(limit)
            if remaining is not None:
                self.remaining = int(remaining)

    def spent(self, retry_after: float | None, fallback: float) -> None:
        """A 429 said the day's tokens are gone: nothing is sent for ``retry_after`` (else ``fallback``)."""
        with self._lock:
            self.remaining = 0
            wait = retry_after if retry_after is not None else fallback
            self._spent_until = max(self._spent_until, self._clock() + wait)

    def wait_left(self) -> float:
        """Seconds until a spent budget renews (0: calls may go)."""
        with self._lock:
            return max(0.0, self._spent_until - self._clock())


@dataclass(frozen=True, slots=True)
class V2Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _json_body(response: requests.Response) -> Any:
    """The parsed body, or ``None`` when it is not JSON (an HTML page from a CDN or a proxy)."""
    if "json" not in response.headers.get("Content-Type", "").lower():
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def classify(response: requests.Response, endpoint: str) -> ApiError | None:
    """The typed error a non-2xx answer means (``None`` for success), whatever its body is."""
    status = response.status_code
    if status < 300:
        return None
    body = _json_body(response)
    if isinstance(body, dict):
        message = str(body.get("error") or body.get("message") or "error")[:300]
    else:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        message = f"a non-JSON answer ({kind}, {len(response.content)} bytes)"
    text = f"{endpoint}: Pipedrive answered {status}: {message}"
    if status == 429:
        headers = response.headers
        if _number(headers.get(DAILY_REMAINING)) == 0:
            return RateLimitedError(f"{text} (the company's daily API token budget is spent)",
                                    retry_after=_number(headers.get("Retry-After")), policy=DAILY_POLICY,
                                    status=status, endpoint=endpoint)
        # The burst window: its reset is the precise wait; Retry-After says the same in whole seconds.
        retry_after = _number(headers.get("x-ratelimit-reset"))
        if retry_after is None:
            retry_after = _number(headers.get("Retry-After"))
        return RateLimitedError(text, retry_after=retry_after, status=status, endpoint=endpoint)
    if status == 403 and body is None:
        # Clients that keep going after 429s get the CDN's HTML 403: a ban to wait out, not a bad token.
        return RateLimitedError(f"{endpoint}: Pipedrive's CDN refused the request (HTML 403) after repeated "
                                f"429s; backing off", policy=CDN_POLICY, status=status, endpoint=endpoint)
    if status >= 500:
        return RetryableError(text, status=status, endpoint=endpoint)
    if status in (401, 403):
        return AuthError(text, status=status, endpoint=endpoint)
    if status == 404:
        return NotFoundError(text, status=status, endpoint=endpoint)
    return PermanentError(text, status=status, endpoint=endpoint)


def classify_exception(exc: BaseException, endpoint: str) -> ApiError:
    """A transport failure as a typed error; its text never repeats the URL or the request."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, requests.Timeout):
        return RetryableError(f"{endpoint}: no answer in time ({type(exc).__name__})", endpoint=endpoint)
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError | ConnectionError):
        return RetryableError(f"{endpoint}: connection problem ({type(exc).__name__})", endpoint=endpoint)
    return PermanentError(f"{endpoint}: request failed ({type(exc).__name__})", endpoint=endpoint)


def _worth_retrying(settings: PipedriveSettings) -> Callable[[BaseException], bool]:
    def check(exc: BaseException) -> bool:
        if isinstance(exc, RateLimitedError) and (exc.policy == DAILY_POLICY or
                                                  (exc.retry_after or 0) > settings.max_retry_seconds):
            return False  # the daily token budget is spent: waiting inside one call would not help
        return isinstance(exc, RetryableError)

    return check


def retry_policy(settings: PipedriveSettings, before_sleep: Callable[[RetryCallState], None]) -> Retrying:
    """The one retry policy of the connector: bounded in attempts and in time, with jittered back-off.

    A rate-limited call waits nothing here: the pacer already holds every caller until the vendor's
    window (or the CDN's ban) has passed.
    """

    return Retrying(
        stop=stop_after_attempt(settings.max_attempts) | stop_after_delay(settings.max_retry_seconds),
        wait=backoff(settings.backoff_base_seconds, settings.backoff_max_seconds,
                     paced=lambda e: isinstance(e, RateLimitedError)),
        retry=retry_if_exception(_worth_retrying(settings)),
        before_sleep=before_sleep,
        reraise=True,
    )


class PipedriveClient:
    """API v2 on our own session and v1 through the library, behind one pacer and one retry policy."""

    def __init__(self, settings: PipedriveSettings, session: requests.Session | None = None) -> None:
        token = settings.api_token.get_secret_value() if settings.api_token else ""
        register_secret(token)
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.update({"x-api-token": token, "Accept": "application/json", "User-Agent": USER_AGENT})
        self._v1_headers = {"x-api-token": token, "Accept": "application/json", "User-Agent": USER_AGENT}
        # The library's v1 root; its own token setter is never called (it would put the token in URLs).
        self.v1 = PipedriveV1(domain=self.base_url)
        burst = settings.burst_limit or S.PLAN_BURST[settings.plan]
        self.pacer = Pacer(burst, settings.burst_interval_seconds, margin=1)
        self.search_pacer = Pacer(settings.search_per_window, settings.burst_interval_seconds, margin=0)
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self.daily = DailyBudget()
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._retries = 0
        self._rate_limited = 0

    def usage(self) -> ApiUsage:
        with self._lock:
            return ApiUsage(dict(self._calls), self._retries, self._rate_limited)

    def close(self) -> None:
        self.session.close()

    # -- the one path every call takes ---------------------------------------------------------

    def call(self, endpoint: str, send: Callable[[Callable[..., None]], Any], *, search: bool = False,
             retry: bool = True) -> Any:
        """Run ``send(hook)`` (one HTTP request whose answer passes through ``hook``) paced and retried.

        ``retry=False`` is for creates that must not be repeated blindly: a timeout does not say
        whether Pipedrive made the record, so the caller looks before it tries again.
        """
        if not retry:
            return self._once(endpoint, send, search)
        retrying = retry_policy(self.settings, self._before_sleep)
        return retrying(self._once, endpoint, send, search)

    def _once(self, endpoint: str, send: Callable[[Callable[..., None]], Any], search: bool) -> Any:
        pacer = self.search_pacer if search else self.pacer
        left = self.daily.wait_left()
        if left > 0:  # refused before it is sent: the vendor would only refuse it again
            raise RateLimitedError(f"{endpoint}: Pipedrive's daily API token budget is spent; it renews in "
                                   f"{left:.0f} s", retry_after=left, policy=DAILY_POLICY, endpoint=endpoint)
        pacer.wait()
        with self._lock:
            self._calls[endpoint] += 1

        def hook(response: requests.Response, *_: Any, **__: Any) -> None:
            self._inspect(response, endpoint, search)

        try:
            return send(hook)
        except Exception as exc:
            error = classify_exception(exc, endpoint)
            if isinstance(error, RateLimitedError):
                with self._lock:
                    self._rate_limited += 1
                if error.policy == CDN_POLICY:
                    self.pacer.block(self.settings.cdn_block_seconds)
                elif error.policy == DAILY_POLICY:
                    self.daily.spent(error.retry_after, self.settings.max_retry_seconds)
                else:
                    pacer.block(error.retry_after if error.retry_after is not None else pacer.interval)
            raise error from None

    def _inspect(self, response: requests.Response, endpoint: str, search: bool) -> None:
        """Every answer: learn the quota from its headers, and raise if it is not a success."""
        headers = response.headers
        limit, remaining = _number(headers.get("x-ratelimit-limit")), _number(headers.get("x-ratelimit-remaining"))
        if not search and limit:
            self.pacer.observe(limit=int(limit), remaining=int(remaining) if remaining is not None else None)
        self.daily.observe(_number(headers.get(DAILY_LIMIT)), _number(headers.get(DAILY_REMAINING)))
        error = classify(response, endpoint)
        if error is not None:
            raise error

    def _before_sleep(self, state: RetryCallState) -> None:
        with self._lock:
            self._retries += 1
        error = state.outcome.exception() if state.outcome else None
        log.info("pipedrive.retry", endpoint=getattr(error, "endpoint", None), attempt=state.attempt_number,
                 status=getattr(error, "status", None), error=type(error).__name__)

    # -- API v2 --------------------------------------------------------------------------------

    def _v2(self, method: str, path: str, endpoint: str, *, params: Mapping[str, Any] | None = None,
            body: Mapping[str, Any] | None = None, search: bool = False, retry: bool = True) -> dict[str, Any]:
        url = f"{self.base_url}{S.V2_PREFIX}/{path}"

        def send(hook: Callable[..., None]) -> dict[str, Any]:
            response = self.session.request(method, url, params=dict(params or {}), json=body,
                                            timeout=self._timeout, hooks={"response": hook})
            return self._payload(response, endpoint)

        return self.call(endpoint, send, search=search, retry=retry)

    @staticmethod
    def _payload(response: requests.Response, endpoint: str) -> dict[str, Any]:
        body = _json_body(response)
        if not isinstance(body, dict):
            # A 2xx that is not Pipedrive's JSON (a proxy's page): never pass it on as data.
            raise RetryableError(f"{endpoint}: Pipedrive answered {response.status_code} without a JSON body",
                                 status=response.status_code, endpoint=endpoint)
        if body.get("success") is False:
            raise PermanentError(f"{endpoint}: Pipedrive answered success=false: {str(body.get('error'))[:300]}",
                                 status=response.status_code, endpoint=endpoint)
        return body

    def v2_list(self, path: str, params: Mapping[str, Any], *, search: bool = False) -> V2Page:
        """One page of a v2 list; ``path`` is relative to ``/api/v2`` (``persons``, ``deals/archived``)."""
        body = self._v2("GET", path, f"GET {S.V2_PREFIX}/{path}", params=params, search=search)
        data = body.get("data")
        if not isinstance(data, list):
            raise PermanentError(f"GET {S.V2_PREFIX}/{path}: expected a list of records, got {type(data).__name__}")
        nxt = (body.get("additional_data") or {}).get("next_cursor")
        return V2Page(data, str(nxt) if nxt else None)

    def v2_search(self, kind: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Search results (``GET /api/v2/{kind}/search``): ``data.items``, each ``{result_score, item}``."""
        body = self._v2("GET", f"{kind}/search", f"GET {S.V2_PREFIX}/{kind}/search", params=params, search=True)
        items = (body.get("data") or {}).get("items") if isinstance(body.get("data"), dict) else None
        return list(items or [])

    def v2_get(self, kind: str, record_id: int | str) -> dict[str, Any]:
        return self._v2("GET", f"{kind}/{record_id}", f"GET {S.V2_PREFIX}/{kind}/{{id}}")["data"]

    def v2_create(self, kind: str, body: Mapping[str, Any], *, retry: bool = True) -> dict[str, Any]:
        return self._v2("POST", kind, f"POST {S.V2_PREFIX}/{kind}", body=body, retry=retry)["data"]

    def v2_update(self, kind: str, record_id: int | str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._v2("PATCH", f"{kind}/{record_id}", f"PATCH {S.V2_PREFIX}/{kind}/{{id}}", body=body)["data"]

    def v2_delete(self, kind: str, record_id: int | str) -> dict[str, Any]:
        return self._v2("DELETE", f"{kind}/{record_id}", f"DELETE {S.V2_PREFIX}/{kind}/{{id}}")["data"]

    # -- v1, through pipedrive-python-lib ------------------------------------------------------

    def _v1(self, endpoint: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        def send(hook: Callable[..., None]) -> dict[str, Any]:
            result = fn(*args, headers=self._v1_headers, timeout=self._timeout, hooks={"response": hook}, **kwargs)
            if not isinstance(result, dict):
                # The library returns any non-JSON body as a string; it is never data.
                raise RetryableError(f"{endpoint}: Pipedrive answered without a JSON body", endpoint=endpoint)
            if result.get("success") is False:
                raise PermanentError(f"{endpoint}: success=false: {str(result.get('error'))[:300]}",
                                     endpoint=endpoint)
            return result

        return self.call(endpoint, send)

    def users(self) -> list[dict[str, Any]]:
        """Every user of the company, active or not (one call: ``GET /v1/users`` is not paged)."""
        return list(self._v1(f"GET {S.V1_PREFIX}/users", self.v1.users.get_all_users).get("data") or [])

    def _v1_pages(self, endpoint: str, fn: Callable[..., Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start: int | None = 0
        while start is not None:
            body = self._v1(endpoint, fn, params={"start": start, "limit": S.V1_PAGE})
            items.extend(body.get("data") or [])
            start = _next_start(body.get("additional_data"), start)
        return items

    def fields(self, kind: str) -> list[dict[str, Any]]:
        """All field definitions of ``kind`` (``personFields``, ``organizationFields``, ``dealFields``)."""
        fn = {"personFields": self.v1.persons.get_person_fields,
              "organizationFields": self.v1.organizations.get_organization_fields,
              "dealFields": self.v1.deals.get_deal_fields}[kind]
        return self._v1_pages(f"GET {S.V1_PREFIX}/{kind}", fn)

    def add_field(self, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a custom field (``POST /v1/personFields`` and friends; the library has no call for it)."""
        url = f"{self.v1.BASE_URL}{kind}"
        return self._v1(f"POST {S.V1_PREFIX}/{kind}", self.v1._post, url, json=dict(body)).get("data") or {}

    def webhooks(self) -> list[dict[str, Any]]:
        return list(self._v1(f"GET {S.V1_PREFIX}/webhooks", self.v1.webhooks.get_hooks_subscription).get("data")
                    or [])

    def add_webhook(self, body: Mapping[str, Any]) -> dict[str, Any]:
        url = f"{self.v1.BASE_URL}webhooks"
        return self._v1(f"POST {S.V1_PREFIX}/webhooks", self.v1._post, url, json=dict(body)).get("data") or {}

    def delete_webhook(self, hook_id: int | str) -> None:
        self._v1(f"DELETE {S.V1_PREFIX}/webhooks/{{id}}", self.v1.webhooks.delete_hook_subscription, hook_id)

    def leads(self) -> list[dict[str, Any]]:
        return self._v1_pages(f"GET {S.V1_PREFIX}/leads", self.v1.leads.get_all_leads)

    def authorization_url(self, redirect_uri: str, state: str | None = None) -> str:
        """The OAuth consent URL (the library's helper; app credentials come from the caller)."""
        return self.v1.authorization_url(redirect_uri, state)


def _next_start(additional: Any, start: int) -> int | None:
    """v1 paging: ``additional_data.pagination`` (or ``additional_data`` itself) says if more follow."""
    if not isinstance(additional, dict):
        return None
    pagination = additional.get("pagination", additional)
    if not pagination.get("more_items_in_collection"):
        return None
    nxt = pagination.get("next_start")
    return int(nxt) if nxt is not None else start + int(pagination.get("limit") or S.V1_PAGE)
