"""What stands in front of every HubSpot route: call counting, bearer-token auth and scopes, rate limits,
faults.

Control routes under ``/_sandbox/`` pass straight through: they are never counted, limited or faulted.
The developer-account routes (webhooks v3) are counted and take the developer API key as ``hapikey``
instead of a bearer token, as HubSpot's do.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from crmbridge.logs import get_logger
from crmbridge.sandbox.faults import Decision, Fault, FaultInjector
from crmbridge.sandbox.stats import SandboxStats
from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.limits import RateLimits
from crmbridge_hubspot.sandbox.schema import object_type
from crmbridge_hubspot.sandbox.scopes import required_scopes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_TYPE_KEYS = ("object_type", "from_type", "to_type")
_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_READ_POSTS = re.compile(r"/(search|batch/read)$")
_SERVER_ERRORS = (502, 503, 500)
DEVELOPER_PREFIX = "/webhooks/v3/"
_log = get_logger("crmbridge.sandbox.hubspot")


def endpoint_name(request: web.Request, prefix: str) -> str:
    """``GET /crm/v3/objects/contacts``: the route template, with object types filled in."""
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return f"{request.method} {request.path[len(prefix):]}"
    template = resource.canonical
    if template.startswith(prefix):
        template = template[len(prefix):]
    template = template.rstrip("/") or "/"
    for key in _TYPE_KEYS:
        value = request.match_info.get(key)
        if value is not None:
            otype = object_type(value)
            template = template.replace("{" + key + "}", otype.name if otype else value)
    return f"{request.method} {template}"


def retry_after(seconds: float) -> str:
    """``Retry-After`` in seconds, as HubSpot sends it on a 429; fractional only when a time scale made the
    wait shorter than HubSpot's whole seconds (a client that reads it still paces right). Whole seconds
    are rounded up: it is the least a client must wait, and 1.4 s said as "1" brought an honest client
    back before the window had room (a second 429)."""
    if seconds >= 1.0:
        return str(math.ceil(seconds))
    return f"{max(seconds, 0.001):.3g}"


class Gateway:
    def __init__(self, limits: RateLimits, faults: FaultInjector, stats: SandboxStats, *,
                 tokens: Mapping[str, frozenset[str] | None], time_scale: float, prefix: str = "/hubspot",
                 developer_key: str | None = None) -> None:
        self.developer_key = developer_key
        self.limits = limits
        self.faults = faults
        self.stats = stats
        self.tokens = dict(tokens)  # accepted token -> its scopes (None: every scope)
        self.time_scale = time_scale
        self.prefix = prefix
        self._server_errors = itertools.cycle(_SERVER_ERRORS)

    def _token(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise errors.unauthorized()
        if not any(hmac.compare_digest(token.encode(), known.encode()) for known in self.tokens):
            raise errors.invalid_token()
        return token

    def _check_scopes(self, request: web.Request, path: str, token: str) -> None:
        held = self.tokens.get(token)
        if held is None:
            return
        for needed in required_scopes(request.method, path, request.match_info):
            if held.isdisjoint(needed):
                raise errors.missing_scopes(needed)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path[len(self.prefix):] if request.path.startswith(self.prefix) else request.path
        if path.startswith("/_sandbox/"):
            return await handler(request)
        self.stats.call(endpoint_name(request, self.prefix))
        if path.startswith(DEVELOPER_PREFIX):
            return await self._developer(request, handler, path)
        try:
            token = self._token(request)
            self._check_scopes(request, path, token)
        except errors.HubSpotError as exc:
            return exc.response()
        search = request.method == "POST" and path.endswith("/search")
        verdict = self.limits.admit(token, search)
        if not verdict.allowed:
            self.stats.limited()
            assert verdict.policy is not None
            headers = {**verdict.headers, "Retry-After": retry_after(verdict.retry_after)}
            return errors.json_response(errors.rate_limited_body(verdict.policy), 429, headers)
        is_write = request.method in _WRITE_METHODS and not _READ_POSTS.search(path)
        decision = self.faults.decide(is_write)
        if decision is not None and not decision.after_handler:
            early = await self._fault(request, decision)
            if early is not None:
                return early
        response = await self._handle(request, handler, path)
        if decision is not None and decision.after_handler:
            late = await self._fault(request, decision)
            if late is not None:
                return late
        if not search:
            response.headers.update(verdict.headers)
        return response

    async def _developer(self, request: web.Request, handler: Handler, path: str) -> web.StreamResponse:
        key = request.query.get("hapikey", "")
        if not key:
            return errors.unauthorized().response()
        if self.developer_key is None or not hmac.compare_digest(key.encode(), self.developer_key.encode()):
            return errors.invalid_api_key().response()
        return await self._handle(request, handler, path)

    async def _handle(self, request: web.Request, handler: Handler, path: str) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.HubSpotError as exc:
            return exc.response()
        except web.HTTPNotFound:
            return errors.json_response({"status": "error", "message": f"No route for {request.method} {path}",
                                         "correlationId": errors.correlation_id(),
                                         "category": "OBJECT_NOT_FOUND"}, 404)
        except web.HTTPMethodNotAllowed:
            return errors.json_response({"status": "error", "message": f"{request.method} is not allowed on {path}",
                                         "correlationId": errors.correlation_id(),
                                         "category": "VALIDATION_ERROR"}, 405)
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            # A body of the wrong shape ({"inputs": [1, 2]}, a string where an object belongs): HubSpot
            # answers 400, never 500. Logged, because it may also be a sandbox bug.
            _log.info("sandbox.bad_input", endpoint=path, method=request.method, error=repr(exc))
            return errors.validation(f"Invalid input: {type(exc).__name__}: {exc}").response()

    async def _fault(self, request: web.Request, decision: Decision) -> web.StreamResponse | None:
        """Answer with the fault, or None when the request should still be answered normally (a stall)."""
        kind = decision.fault
        self.stats.fault(kind.value)
        if kind is Fault.SERVER_ERROR:
            return errors.server_error(next(self._server_errors))
        if kind is Fault.RATE_LIMIT:
            self.stats.limited()
            return errors.json_response(errors.rate_limited_body("TEN_SECONDLY_ROLLING"), 429,
                                        {"Retry-After": retry_after(10.0 / self.time_scale)})
        if kind is Fault.TIMEOUT:
            await asyncio.sleep(self.faults.stall_seconds)
            return None
        transport: Any = request.transport
        if transport is not None:
            transport.abort()  # a reset: the connection drops with no response at all
        return web.Response(status=499)
