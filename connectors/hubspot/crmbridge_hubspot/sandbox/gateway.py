"""What stands in front of every HubSpot route: call counting, bearer-token auth, rate limits, faults.

Control routes under ``/_sandbox/`` pass straight through: they are never counted, limited or faulted.
The developer-account routes (webhooks v3) are counted and take the developer API key as ``hapikey``
instead of a bearer token, as HubSpot's do.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from crmbridge.logs import get_logger
from crmbridge.sandbox.faults import Decision, Fault, FaultInjector
from crmbridge.sandbox.stats import SandboxStats
from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.limits import RateLimits
from crmbridge_hubspot.sandbox.schema import object_type

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


class Gateway:
    def __init__(self, limits: RateLimits, faults: FaultInjector, stats: SandboxStats, *,
                 token: str | None, time_scale: float, prefix: str = "/hubspot",
                 developer_key: str | None = None) -> None:
        self.developer_key = developer_key
        self.limits = limits
        self.faults = faults
        self.stats = stats
        self.token = token
        self.time_scale = time_scale
        self.prefix = prefix
        self._server_errors = itertools.cycle(_SERVER_ERRORS)

    def _token(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or (self.token is not None and token != self.token):
            raise errors.unauthorized()
        return token

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
        except errors.HubSpotError as exc:
            return exc.response()
        search = request.method == "POST" and path.endswith("/search")
        verdict = self.limits.admit(token, search)
        if not verdict.allowed:
            self.stats.limited()
            assert verdict.policy is not None
            return errors.json_response(errors.rate_limited_body(verdict.policy), 429, verdict.headers)
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
            wait = 10.0 / self.time_scale
            retry_after = str(int(wait)) if float(wait).is_integer() else f"{wait:.3g}"
            return errors.json_response(errors.rate_limited_body("TEN_SECONDLY_ROLLING"), 429,
                                        {"Retry-After": retry_after})
        if kind is Fault.TIMEOUT:
            await asyncio.sleep(self.faults.stall_seconds)
            return None
        transport: Any = request.transport
        if transport is not None:
            transport.abort()  # a reset: the connection drops with no response at all
        return web.Response(status=499)
