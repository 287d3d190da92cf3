"""``PipedriveSandbox``: Pipedrive's API (v2 objects, v1 users/leads/fields/webhooks) as an aiohttp app.

Mounted by the sandbox host at ``/pipedrive``: v1 under ``/pipedrive/v1/…``, v2 under
``/pipedrive/api/v2/…``. Every request passes one gate: the API token (``x-api-token`` header or
``api_token`` query), the CDN's ban, the burst window and the daily token budget (each operation
costs its tokens), then fault injection; the answer carries ``x-ratelimit-*`` headers. Handlers
answer in the shapes of Pipedrive's OpenAPI descriptions. Writes made through the API reach the
registered webhooks with ``change_source`` "api" (``webhooks.py``); ``simulate`` has sellers work.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
from aiohttp import web

from crmbridge.connectors import SandboxOptions
from crmbridge.sandbox.faults import Decision, Fault, FaultInjector
from crmbridge.sandbox.sellers import SellerRequest, SurgeRequest
from crmbridge.sandbox.stats import SandboxStats
from crmbridge.sandbox.world import generate_world, parse_anchor
from crmbridge_pipedrive import streams as S
from crmbridge_pipedrive.sandbox import v1 as v1_shapes
from crmbridge_pipedrive.sandbox.auth import OAUTH, Caller, Credentials
from crmbridge_pipedrive.sandbox.limits import TokenLimits
from crmbridge_pipedrive.sandbox.references import Refused, check, check_references
from crmbridge_pipedrive.sandbox.render import FIELD_ENDPOINTS, iso, render
from crmbridge_pipedrive.sandbox.schemas import first_problem, request_schemas
from crmbridge_pipedrive.sandbox.sellers import SURGE_NOTE, PipedriveSalesDesk
from crmbridge_pipedrive.sandbox.simulator import SellerSimulator, count
from crmbridge_pipedrive.sandbox.state import BadCursor, PipedriveState, decode_cursor, encode_cursor
from crmbridge_pipedrive.sandbox.webhooks import WebhookSender, subscription_errors, v1_time

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CALLER = web.RequestKey("caller", Caller)
MOUNT = "/pipedrive"
CDN_PAGE = (b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1>"
            b"<p>Request blocked: too many requests. Please slow down.</p><hr><p>cloudflare</p></body></html>\n")
BAD_GATEWAY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n"

V2_SORTS = {"persons": ("id", "update_time", "add_time"), "organizations": ("id", "update_time", "add_time"),
            "deals": ("id", "update_time", "add_time"), "activities": ("id", "update_time", "add_time", "due_date"),
            "pipelines": ("id", "update_time", "add_time"), "stages": ("id", "update_time", "add_time", "order_nr")}
V2_FILTERS = {"persons": ("owner_id", "org_id"), "organizations": ("owner_id",),
              "deals": ("owner_id", "person_id", "org_id", "pipeline_id", "stage_id"),
              "activities": ("owner_id", "deal_id", "person_id", "org_id"), "pipelines": (), "stages": ("pipeline_id",)}
WITH_IDS = ("persons", "organizations", "deals", "activities")  # the v2 lists that document ``ids``
WITH_CUSTOM_FIELDS = {"persons": "person", "organizations": "organization", "deals": "deal"}
SINGULAR = {"persons": "Person", "organizations": "Organization", "deals": "Deal", "activities": "Activity",
            "pipelines": "Pipeline", "stages": "Stage"}
API = "api"  # meta.change_source of writes made through the API
ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
UNAUTHORIZED = "unauthorized access"
OWNED = ("persons", "organizations", "deals", "activities")  # the v2 records that have an owner_id


class Problem(Exception):
    """An error answer in Pipedrive's shape for the API version asked."""

    def __init__(self, status: int, message: str, *, v2: bool = True) -> None:
        self.status, self.message, self.v2 = status, message, v2
        super().__init__(message)

    def response(self) -> web.Response:
        if self.v2:
            code = "ERR_SCHEMA_VALIDATION_FAILED" if self.status == 400 else f"ERR_{self.status}"
            body = {"success": False, "error": self.message, "code": code, "error_info": ERROR_INFO,
                    "data": None, "additional_data": None}
        else:
            body = {"success": False, "error": self.message, "errorCode": self.status, "error_info": ERROR_INFO,
                    "data": None, "additional_data": None}
        return _json(body, self.status)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _ok(data: Any, additional: Mapping[str, Any] | None = None, status: int = 200) -> web.Response:
    body: dict[str, Any] = {"success": True, "data": data}
    if additional is not None:
        body["additional_data"] = dict(additional)
    return _json(body, status)


@dataclass(frozen=True, slots=True)
class RouteCost:
    tokens: int
    search: bool = False


def _int(query: Mapping[str, str], name: str, v2: bool = True) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise Problem(400, f"Validation failed: {name}: must be an integer", v2=v2) from None


def _limit(query: Mapping[str, str], default: int = 100, v2: bool = True) -> int:
    limit = _int(query, "limit", v2)
    if limit is None:
        return default
    if not 1 <= limit <= S.V2_PAGE:
        raise Problem(400, f"Validation failed: limit: Must be between 1 and {S.V2_PAGE}", v2=v2)
    return limit


def _instant(query: Mapping[str, str], name: str) -> str | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Problem(400, f"Validation failed: {name}: must be an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        raise Problem(400, f"Validation failed: {name}: must carry a time zone (RFC 3339)")
    if parsed.microsecond:
        # Update times are whole seconds: t >= 10:20:00.5 is t >= 10:20:01, and t < 10:20:00.5 is
        # t < 10:20:01, so a fraction moves either bound up to the next whole second.
        parsed = parsed.replace(microsecond=0) + timedelta(seconds=1)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _filter_id(query: Mapping[str, str]) -> None:
    """``filter_id`` names a saved filter; the sandbox's account has none, so any id is not found."""
    filter_id = _int(query, "filter_id")
    if filter_id is not None:
        raise Problem(404, f"Filter with id {filter_id} not found")


def _ids(query: Mapping[str, str]) -> set[int] | None:
    """``ids``: up to 100 comma-separated record ids to list (ids Pipedrive does not hold are left out)."""
    raw = query.get("ids")
    if raw is None or not raw.strip():
        return None
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise Problem(400, "Validation failed: ids: must be a comma separated list of integer ids")
    if len(parts) > S.IDS_PER_CALL:
        raise Problem(400, f"Validation failed: ids: A maximum of {S.IDS_PER_CALL} ids is allowed")
    return {int(p) for p in parts}


def _custom_fields(query: Mapping[str, str]) -> set[str] | None:
    """``custom_fields``: the custom field keys to include (at most 15); None when not asked."""
    raw = query.get("custom_fields")
    if raw is None:
        return None
    keys = {k.strip() for k in raw.split(",") if k.strip()}
    if len(keys) > S.MAX_CUSTOM_FIELDS:
        raise Problem(400, f"Validation failed: custom_fields: A maximum of {S.MAX_CUSTOM_FIELDS} keys is allowed")
    return keys


async def _body(request: web.Request, v2: bool = True) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise Problem(400, "Request body is not valid JSON", v2=v2) from None
    if not isinstance(body, dict):
        raise Problem(400, "Request body must be a JSON object", v2=v2)
    return body


class PipedriveSandbox:
    """A seeded Pipedrive company account with its users, pipelines and sales records."""

    name = "pipedrive"

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        extra = options.extra
        self.world = generate_world(options.seed, options.contacts, parse_anchor(extra.get("anchor")))
        self._stats = SandboxStats()
        self.webhooks = WebhookSender(self._stats, options)
        self.state = self._seeded()
        self.sellers = PipedriveSalesDesk(self.state)
        self.limits = self._limits()
        self.faults = FaultInjector(options.faults, seed=options.seed,
                                    stall_seconds=float(extra.get("pipedrive_stall_seconds", 30.0)))
        self._fault_rng = random.Random(options.seed)
        self._simulations = itertools.count()
        self.cdn_refused = 0
        self.credentials = Credentials(options.tokens, _listed(extra.get("pipedrive_oauth_tokens")),
                                       list(self.state.users))
        self.contracts_dir = extra.get("pipedrive_openapi_dir")
        request_schemas(self.contracts_dir)  # read Pipedrive's descriptions now, not on the first write
        self.costs: dict[tuple[str, str], RouteCost] = {}
        self.app = web.Application(middlewares=[self._gate], client_max_size=4 * 1024 * 1024)
        self._routes()

    def _seeded(self) -> PipedriveState:
        """The account as seeded (no webhook yet, so seeding sends nothing), its writes told to the sender."""
        state = PipedriveState(render(self.world))
        self.webhooks.attach(state)
        return state

    def _limits(self) -> TokenLimits:
        extra = self.options.extra
        return TokenLimits(str(extra.get("pipedrive_plan", "growth")), seats=int(extra.get("pipedrive_seats", 10)),
                           time_scale=self.options.time_scale, burst=extra.get("pipedrive_burst"),
                           daily_tokens=extra.get("pipedrive_daily_tokens"),
                           cdn_strikes=int(extra.get("pipedrive_cdn_strikes", 10)))

    # -- VendorSandbox -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        snapshot = self._stats.snapshot()
        snapshot.update(cdn_refused=self.cdn_refused, limits=self.limits.snapshot(), counts=self.state.counts(),
                        sellers=self.sellers.ledger.snapshot())
        return snapshot

    def reset(self) -> None:
        """Back to the seeded account: records, webhooks (and what they still had to deliver), budgets,
        bans and counters."""
        self.webhooks.forget()
        self.state = self._seeded()
        self.sellers.reset(self.state)
        self.limits = self._limits()
        self._stats.reset()
        self.cdn_refused = 0

    def reset_stats(self) -> None:
        """Zero the counters only (records, budgets and bans stay as they are)."""
        self._stats.reset()
        self.cdn_refused = 0

    def set_faults(self, rates: Mapping[str, float]) -> None:
        self.faults.set_rates(rates)

    def close(self) -> None:
        """Stop delivering webhooks (the host is stopping)."""
        self.webhooks.close()

    def drain_webhooks(self, timeout: float = 30.0) -> bool:
        """Wait until every emitted delivery succeeded or was given up (tests, the demo)."""
        return self.webhooks.drain(timeout)

    def webhook_options(self) -> dict[str, Any]:
        """What ``plugin.webhooks`` needs beyond the credentials ``setup`` registers: nothing."""
        return {}

    def banner(self) -> list[str]:
        tokens = ", ".join(self.credentials.api)
        return [f"API token (x-api-token header or api_token query): {tokens}",
                'webhooks v2: POST /pipedrive/v1/webhooks {"version": "2.0", ...} (deliveries to loopback only)']

    def simulate(self, sales_ready: int = 0, activities: int = 0, seed: int | None = None,
                 sellers: Any = None, surge: Any = None) -> dict[str, Any]:
        """Sellers log ``activities`` calls and e-mails (done, on persons and open deals), then move some
        of the deals they worked one stage on and win or lose a few; ``sellers`` (``{"until", "seed",
        "profiles"}``) answer hand-off deals up to a simulated instant. ``sales_ready`` and ``surge``
        are marketing behaviour, which this CRM does not hold: ignored (the answer says so)."""
        count(sales_ready, "sales_ready")
        n = count(activities, "activities")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        work = SellerRequest.parse(sellers, self.options.seed) if sellers is not None else None
        if surge is not None:
            SurgeRequest.parse(surge, self.options.seed)  # a bad request is refused here as in HubSpot
        chosen = seed if seed is not None else self.options.seed * 1_000 + next(self._simulations)
        done = SellerSimulator(self.state, chosen).run(n)
        if surge is not None:
            done["surge"] = {"accounts": [], "events": {}, "note": SURGE_NOTE}
        if work is not None:
            done["sellers"] = self.sellers.work(work)
        return done

    # -- the gate every request passes ---------------------------------------------------------

    def _template(self, request: web.Request) -> str | None:
        resource = request.match_info.route.resource
        if resource is None:
            return None
        canonical = resource.canonical
        return canonical[len(MOUNT):] if canonical.startswith(MOUNT) else canonical

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        template = self._template(request)
        if template is None:
            return Problem(404, f"Unknown method {request.path}", v2="/api/v2/" in request.path).response()
        if template.startswith("/_sandbox"):
            return await handler(request)
        endpoint = f"{request.method} {template}"
        cost = self.costs.get((request.method, template), RouteCost(1))
        caller = self.credentials.caller(request.headers, request.query)
        if caller is None:  # before any API version's own handling: one shape for both
            self._stats.call(endpoint)
            return Problem(401, UNAUTHORIZED, v2=False).response()
        request[CALLER] = caller
        verdict = self.limits.admit(cost.tokens, search=cost.search, token=caller.token, oauth=caller.kind == OAUTH)
        if verdict.status == 403:
            self._stats.call(endpoint)
            self.cdn_refused += 1
            return web.Response(body=CDN_PAGE, status=403, content_type="text/html")
        if verdict.status == 429:
            self._stats.call(endpoint)
            self._stats.limited()
            self.limits.strike()
            return self._too_many(verdict.headers, daily=verdict.reason == "daily")
        decision = self.faults.decide(is_write=request.method != "GET")
        if decision is not None and not decision.after_handler:
            self._stats.call(endpoint)
            return await self._fault(request, decision, verdict.headers)
        self._stats.call(endpoint, cost.tokens)
        try:
            response = await handler(request)
        except Problem as problem:
            response = problem.response()
        if decision is not None:
            return await self._fault(request, decision, verdict.headers)
        response.headers.update(verdict.headers)
        return response

    def _too_many(self, headers: Mapping[str, str], *, daily: bool = False) -> web.Response:
        body = {"success": False, "error": "Daily token budget exceeded" if daily else "Request over limit",
                "errorCode": 429,
                "error_info": "Please check developers.pipedrive.com for more information about Pipedrive API.",
                "data": None, "additional_data": None}
        response = _json(body, 429)
        response.headers.update(headers)
        return response

    async def _fault(self, request: web.Request, decision: Decision, headers: Mapping[str, str]) -> web.Response:
        self._stats.fault(decision.fault.value)
        if decision.fault is Fault.RATE_LIMIT:
            self._stats.limited()
            window = self.limits.window
            return self._too_many({**headers, "x-ratelimit-remaining": "0", "x-ratelimit-reset": f"{window:.3f}",
                                   "Retry-After": "1"})
        if decision.fault is Fault.SERVER_ERROR:
            if self._fault_rng.random() < 0.5:
                return web.Response(body=BAD_GATEWAY_PAGE, status=502, content_type="text/html")
            return _json({"success": False, "error": "Internal server error", "errorCode": 500}, 500)
        if decision.fault is Fault.TIMEOUT:
            await asyncio.sleep(self.faults.stall_seconds)
            return _json({"success": False, "error": "Gateway timeout", "errorCode": 504}, 504)
        if request.transport is not None:  # a reset: the connection drops without an answer
            request.transport.abort()
        return web.Response(status=500)

    # -- routes --------------------------------------------------------------------------------

    def _add(self, method: str, path: str, handler: Handler, tokens: int, *, search: bool = False) -> None:
        self.app.router.add_route(method, path, handler)
        template = path.replace(r"{id:\d+}", "{id}")
        self.costs[(method, template)] = RouteCost(tokens, search)

    def _routes(self) -> None:
        v2, v1, c2, c1 = S.V2_PREFIX, S.V1_PREFIX, S.V2_COST, S.V1_COST
        add = self._add
        add("GET", f"{v2}/deals/archived", partial(self.v2_list, "deals", archived=True),
            c2["list_archived_deals"])
        for kind in ("persons", "organizations"):
            add("GET", f"{v2}/{kind}/search", partial(self.v2_search, kind), c2["search"], search=True)
        for kind in ("persons", "organizations", "deals", "activities", "pipelines", "stages"):
            cost = c2.get(f"list_{kind}", c2["list"])
            add("GET", f"{v2}/{kind}", partial(self.v2_list, kind), cost)
            add("POST", f"{v2}/{kind}", partial(self.v2_create, kind), c2["create"])
            add("GET", f"{v2}/{kind}/{{id:\\d+}}", partial(self.v2_get, kind), c2["get"])
            add("PATCH", f"{v2}/{kind}/{{id:\\d+}}", partial(self.v2_update, kind), c2["update"])
            add("DELETE", f"{v2}/{kind}/{{id:\\d+}}", partial(self.v2_delete, kind), c2["delete"])
        add("GET", f"{v1}/users", self.v1_users, c1["list"])
        add("GET", f"{v1}/users/me", self.v1_me, c1["get"])
        add("GET", f"{v1}/users/{{id:\\d+}}", self.v1_user, c1["get"])
        for obj, endpoint in FIELD_ENDPOINTS.items():
            add("GET", f"{v1}/{endpoint}", partial(self.v1_fields, obj), c1["list"])
            add("POST", f"{v1}/{endpoint}", partial(self.v1_add_field, obj), c1["create"])
            add("GET", f"{v1}/{endpoint}/{{id:\\d+}}", partial(self.v1_field, obj), c1["get"])
        add("GET", f"{v1}/persons", self.v1_persons, c1["list"])
        add("GET", f"{v1}/pipelines", self.v1_pipelines, c1["list"])
        add("GET", f"{v1}/leads", self.v1_leads, c1["list"])
        add("POST", f"{v1}/leads", self.v1_add_lead, c1["create"])
        add("GET", f"{v1}/leads/{{id}}", self.v1_lead, c1["get"])
        add("PATCH", f"{v1}/leads/{{id}}", self.v1_update_lead, c1["update"])
        add("DELETE", f"{v1}/leads/{{id}}", self.v1_delete_lead, c1["delete"])
        for kind in ("persons", "organizations", "deals"):
            add("PUT", f"{v1}/{kind}/{{id:\\d+}}/merge", partial(self.v1_merge, kind), c1["update"])
        add("GET", f"{v1}/webhooks", self.v1_webhooks, c1["list"])
        add("POST", f"{v1}/webhooks", self.v1_add_webhook, c1["create"])
        add("DELETE", f"{v1}/webhooks/{{id:\\d+}}", self.v1_delete_webhook, c1["delete"])
        self.app.router.add_post("/_sandbox/touch", self.control_touch)
        self.app.router.add_get("/_sandbox/overlap", self.control_overlap)
        self.app.router.add_get("/_sandbox/state", self.control_state)

    # -- API v2 --------------------------------------------------------------------------------

    async def v2_list(self, kind: str, request: web.Request, *, archived: bool = False) -> web.Response:
        q = request.query
        limit = _limit(q)
        sort_by = q.get("sort_by", "id")
        if sort_by not in V2_SORTS[kind]:
            raise Problem(400, f"Validation failed: sort_by: must be one of {', '.join(V2_SORTS[kind])}")
        direction = q.get("sort_direction", "asc")
        if direction not in ("asc", "desc"):
            raise Problem(400, "Validation failed: sort_direction: must be one of asc, desc")
        since, until = _instant(q, "updated_since"), _instant(q, "updated_until")
        if kind in WITH_IDS:  # the lists that document filter_id
            _filter_id(q)
        try:
            after = decode_cursor(q["cursor"]) if q.get("cursor") else None
        except BadCursor:
            raise Problem(400, "Validation failed: cursor: invalid cursor") from None
        custom_fields = _custom_fields(q) if kind in WITH_CUSTOM_FIELDS else None
        ids = _ids(q) if kind in WITH_IDS else None
        visible = self._visibility(kind, q, archived)
        with self.state.lock:
            rows, nxt = self.state.table(kind).page(visible, sort_by=sort_by, descending=direction == "desc",
                                                    since=since, until=until, after=after, limit=limit, only=ids)
            data = [self._project(r, custom_fields) for r in rows]
        return _ok(data, {"next_cursor": encode_cursor(nxt) if nxt else None})

    def _visibility(self, kind: str, q: Mapping[str, str], archived: bool) -> Callable[[dict[str, Any]], bool]:
        filters = {f: _int(q, f) for f in V2_FILTERS[kind] if q.get(f)}
        done = q.get("done")
        statuses = set(q.get("status", "open,won,lost").split(",")) if kind == "deals" else set()
        recently = self.state.recently

        def visible(row: dict[str, Any]) -> bool:
            if any(row.get(f) != v for f, v in filters.items()):
                return False
            if done is not None and row.get("done") != (done.lower() == "true"):
                return False
            if kind == "deals":
                # Only deals list deleted records, when asked (status=deleted), for 30 days.
                if bool(row.get("is_archived")) != archived:
                    return False
                if row.get("is_deleted"):
                    return "deleted" in statuses and recently(row)
                return row.get("status") in statuses
            # Deleted persons, organizations and activities are in no list, updated_since or not.
            return not row.get("is_deleted")

        return visible

    @staticmethod
    def _project(row: dict[str, Any], custom_fields: set[str] | None) -> dict[str, Any]:
        if custom_fields is None:
            return row
        return {**row, "custom_fields": {k: v for k, v in (row.get("custom_fields") or {}).items()
                                         if k in custom_fields}}

    async def v2_get(self, kind: str, request: web.Request) -> web.Response:
        row = self.state.get(kind, int(request.match_info["id"]))
        if row is None:
            raise Problem(404, f"{SINGULAR[kind]} not found")
        return _ok(row)

    async def _valid_body(self, request: web.Request, route: str, *, v2: bool = True) -> dict[str, Any]:
        """The JSON body, refused (400) where Pipedrive's request schema for ``route`` refuses it."""
        body = await _body(request, v2)
        problem = first_problem(route, body, self.contracts_dir)
        if problem:
            raise Problem(400, problem, v2=v2)
        return body

    async def v2_create(self, kind: str, request: web.Request) -> web.Response:
        body = await self._valid_body(request, f"v2 post /{kind}")
        user = request[CALLER].user_id
        with self.state.lock:
            _refer(lambda: check_references(self.state, kind, body))
            if kind in OWNED:  # created without an owner: the requesting user's
                body.setdefault("owner_id", user)
            return _ok(self.state.create(kind, body, source=API, user_id=user))

    async def v2_update(self, kind: str, request: web.Request) -> web.Response:
        body = await self._valid_body(request, f"v2 patch /{kind}/{{id}}")
        record_id = int(request.match_info["id"])
        with self.state.lock:
            current = self.state.get(kind, record_id)
            if current is None or current.get("is_deleted"):
                raise Problem(404, f"{SINGULAR[kind]} not found")
            _refer(lambda: check_references(self.state, kind, body, current))
            row = self.state.update(kind, record_id, body, source=API, user_id=request[CALLER].user_id)
        if row is None:
            raise Problem(404, f"{SINGULAR[kind]} not found")
        return _ok(row)

    async def v2_delete(self, kind: str, request: web.Request) -> web.Response:
        row = self.state.delete(kind, int(request.match_info["id"]), source=API)
        if row is None:
            raise Problem(404, f"{SINGULAR[kind]} not found")
        return _ok({"id": row["id"]})

    async def v2_search(self, kind: str, request: web.Request) -> web.Response:
        q = request.query
        term = (q.get("term") or "").strip().lower()
        if len(term) < 2:
            raise Problem(400, "Validation failed: term: must be at least 2 characters long")
        exact = (q.get("exact_match") or "").lower() == "true"
        limit = _limit(q)
        start = int(q["cursor"]) if (q.get("cursor") or "").isdigit() else 0
        with self.state.lock:
            table = self.state.table(kind)
            found = [self._hit(kind, row) for row in (table.rows[i] for i in table.ids)
                     if not row.get("is_deleted") and _matches(kind, row, term, exact)]
        page = found[start:start + limit]
        nxt = str(start + limit) if start + limit < len(found) else None
        return _ok({"items": page}, {"next_cursor": nxt})

    def _hit(self, kind: str, row: dict[str, Any]) -> dict[str, Any]:
        custom = [str(v) for v in (row.get("custom_fields") or {}).values() if isinstance(v, str)]
        item: dict[str, Any] = {"id": row["id"], "type": kind[:-1] if kind != "persons" else "person",
                                "name": row["name"], "visible_to": row.get("visible_to"),
                                "owner": {"id": row.get("owner_id")}, "custom_fields": custom, "notes": []}
        if kind == "persons":
            org = self.state.tables["organizations"].rows.get(row.get("org_id") or -1)
            item.update(phones=[p["value"] for p in row.get("phones") or ()],
                        emails=[e["value"] for e in row.get("emails") or ()],
                        organization={"id": org["id"], "name": org["name"]} if org else None)
        else:
            item["address"] = (row.get("address") or {}).get("value")
        return {"result_score": 1.0, "item": item}

    # -- v1: users, fields, leads, merges, webhooks ------------------------------------------

    async def v1_users(self, request: web.Request) -> web.Response:
        return _ok(list(self.state.users.values()))

    async def v1_me(self, request: web.Request) -> web.Response:
        return _ok(next(iter(self.state.users.values())))

    async def v1_user(self, request: web.Request) -> web.Response:
        user = self.state.users.get(int(request.match_info["id"]))
        if user is None:
            raise Problem(404, "User not found", v2=False)
        return _ok(user)

    async def v1_fields(self, obj: str, request: web.Request) -> web.Response:
        items = self.state.catalogs.fields[obj]
        start = _int(request.query, "start", v2=False) or 0
        limit = _limit(request.query, default=S.V1_PAGE, v2=False)
        page = items[start:start + limit]
        return _ok(page, {"start": start, "limit": limit, "more_items_in_collection": start + limit < len(items)})

    async def v1_field(self, obj: str, request: web.Request) -> web.Response:
        wanted = int(request.match_info["id"])
        item = next((f for f in self.state.catalogs.fields[obj] if f["id"] == wanted), None)
        if item is None:
            raise Problem(404, "Field not found", v2=False)
        return _ok(item)

    async def v1_add_field(self, obj: str, request: web.Request) -> web.Response:
        body = await self._valid_body(request, f"v1 post /{FIELD_ENDPOINTS[obj]}", v2=False)
        options = [str(o.get("label")) for o in body.get("options") or () if isinstance(o, dict)]
        with self.state.lock:
            item = self.state.catalogs.add(obj, str(body["name"]), str(body["field_type"]), options,
                                           self.state.now())
        return _ok(item)

    async def v1_persons(self, request: web.Request) -> web.Response:
        """``GET /v1/persons``: every live person in v1's shape, paged by ``start``/``limit``, filtered by
        ``user_id`` (owner) and ``first_char``, sorted by ``sort`` (``field ASC|DESC``, comma-separated)."""
        q = request.query
        start = _int(q, "start", v2=False) or 0
        limit = _limit(q, v2=False)
        if q.get("filter_id"):
            raise Problem(404, f"Filter with id {_int(q, 'filter_id', v2=False)} not found", v2=False)
        owner, first = _int(q, "user_id", v2=False), (q.get("first_char") or "").lower()[:1]
        order = _v1_sort(q.get("sort"))
        with self.state.lock:
            table = self.state.tables["persons"]
            rows = [r for r in (table.rows[i] for i in table.ids) if not r.get("is_deleted")
                    and (owner is None or r.get("owner_id") == owner)
                    and (not first or str(r.get("name") or "").lower().startswith(first))]
            for field, descending in reversed(order):
                rows.sort(key=lambda r, f=field: (r.get(f) is None, r.get(f) or ""), reverse=descending)
            items = [v1_shapes.person(self.state, r) for r in rows[start:start + limit]]
            related = v1_shapes.related(self.state, items)
        more = start + limit < len(rows)
        pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        body = {"success": True, "data": items or None, "additional_data": {"pagination": pagination},
                "related_objects": related}
        return _json(body)

    async def v1_pipelines(self, request: web.Request) -> web.Response:
        """``GET /v1/pipelines``: every pipeline in v1's shape, in the order sales sees them (not paged)."""
        with self.state.lock:
            table = self.state.tables["pipelines"]
            rows = sorted((table.rows[i] for i in table.ids if not table.rows[i].get("is_deleted")),
                          key=lambda r: (r.get("order_nr") or 0, r["id"]))
            return _ok([v1_shapes.pipeline(r) for r in rows])

    async def v1_leads(self, request: web.Request) -> web.Response:
        q = request.query
        start = _int(q, "start", v2=False) or 0
        limit = _limit(q, v2=False)
        status = q.get("archived_status", "not_archived")
        items = [lead for lead in self.state.leads.values()
                 if status == "all" or lead["is_archived"] == (status == "archived")]
        return _ok(items[start:start + limit],
                   {"start": start, "limit": limit, "more_items_in_collection": start + limit < len(items)})

    async def v1_lead(self, request: web.Request) -> web.Response:
        lead = self.state.leads.get(request.match_info["id"])
        if lead is None:
            raise Problem(404, "Lead not found", v2=False)
        return _ok(lead)

    async def v1_add_lead(self, request: web.Request) -> web.Response:
        body = await self._valid_body(request, "v1 post /leads", v2=False)
        if not (body.get("person_id") or body.get("organization_id")):
            raise Problem(400, "A lead needs a title and a person_id or an organization_id", v2=False)
        _refer(lambda: check(self.state, body), v2=False)
        now = self.state.now()
        user = request[CALLER].user_id
        lead = {"id": str(uuid.uuid4()), "title": body["title"], "owner_id": body.get("owner_id") or user,
                "creator_id": user, "label_ids": list(body.get("label_ids") or []),
                "person_id": body.get("person_id"), "organization_id": body.get("organization_id"),
                "source_name": "API", "origin": "API", "origin_id": body.get("origin_id"), "channel": None,
                "channel_id": None, "is_archived": False, "was_seen": False, "value": body.get("value"),
                "expected_close_date": body.get("expected_close_date"), "next_activity_id": None,
                "add_time": now, "update_time": now, "visible_to": str(body.get("visible_to") or "3"),
                "cc_email": "lumen@pipedrivemail.com"}
        return _ok(self.state.create_lead(lead, source=API), status=201)

    async def v1_update_lead(self, request: web.Request) -> web.Response:
        body = await self._valid_body(request, "v1 patch /leads/{id}", v2=False)
        _refer(lambda: check(self.state, body), v2=False)
        lead = self.state.update_lead(request.match_info["id"], body, source=API)
        if lead is None:
            raise Problem(404, "Lead not found", v2=False)
        return _ok(lead)

    async def v1_delete_lead(self, request: web.Request) -> web.Response:
        lead = self.state.delete_lead(request.match_info["id"], source=API)
        if lead is None:
            raise Problem(404, "Lead not found", v2=False)
        return _ok({"id": lead["id"]})

    async def v1_merge(self, kind: str, request: web.Request) -> web.Response:
        body = await self._valid_body(request, f"v1 put /{kind}/{{id}}/merge", v2=False)
        winner = body["merge_with_id"]
        loser = int(request.match_info["id"])
        row = self.state.merge(kind, loser, winner, source=API)
        if row is None:
            raise Problem(404, f"{SINGULAR[kind]} not found (or not mergeable)", v2=False)
        if kind == "organizations":
            return _ok({"id": row["id"]})
        # v1 shapes: "YYYY-MM-DD HH:MM:SS" times; persons name their owner owner_id, deals user_id.
        data = {"id": row["id"], "merge_what_id": loser, "add_time": row["add_time"].replace("T", " ").rstrip("Z"),
                "update_time": row["update_time"].replace("T", " ").rstrip("Z")}
        if kind == "persons":
            data.update(name=row["name"], first_name=row.get("first_name"), last_name=row.get("last_name"),
                        owner_id=row.get("owner_id"), org_id=row.get("org_id"), active_flag=True,
                        email=row.get("emails") or [], phone=row.get("phones") or [])
        else:
            data.update(title=row["title"], user_id=row.get("owner_id"), creator_user_id=row.get("owner_id"),
                        person_id=row.get("person_id"), org_id=row.get("org_id"), value=row.get("value"),
                        currency=row.get("currency"), status=row.get("status"), stage_id=row.get("stage_id"),
                        pipeline_id=row.get("pipeline_id"), active=True, deleted=False)
        return _ok(data)

    async def v1_webhooks(self, request: web.Request) -> web.Response:
        with self.state.lock:  # deliveries update last_delivery_time and last_http_status meanwhile
            hooks = [dict(h) for h in self.state.webhooks.values()]
        return _json({"success": True, "status": "ok", "data": hooks})

    async def v1_add_webhook(self, request: web.Request) -> web.Response:
        body = await _body(request, v2=False)
        errors = subscription_errors(body, self.state.users)
        problem = None if errors else first_problem("v1 post /webhooks", body, self.contracts_dir)
        if problem:  # what the schema refuses beyond those checks: an unknown key, a wrong type
            errors = {"body": [problem]}
        if errors:
            return _json({"success": False, "status": "error", "errors": errors}, 400)
        with self.state.lock:
            hook_id = 1 + max(self.state.webhooks, default=0)
            admin = self.state.admin_id
            hook = {"id": hook_id, "company_id": 1, "owner_id": admin, "user_id": body.get("user_id") or admin,
                    "event_action": body["event_action"], "event_object": body["event_object"],
                    "subscription_url": body["subscription_url"].strip(), "is_active": 1,
                    "add_time": v1_time(self.state.clock()), "remove_time": None,
                    "type": "general", "http_auth_user": body.get("http_auth_user"),
                    "http_auth_password": body.get("http_auth_password"),
                    "additional_data": {"version": body.get("version") or "1.0"}, "remove_reason": None,
                    "last_delivery_time": None, "last_http_status": None, "admin_id": admin}
            self.state.webhooks[hook_id] = hook
            return _json({"success": True, "status": "ok", "data": dict(hook)}, 201)

    async def v1_delete_webhook(self, request: web.Request) -> web.Response:
        with self.state.lock:
            hook = self.state.webhooks.pop(int(request.match_info["id"]), None)
        if hook is None:
            return _json({"success": False, "status": "error", "errors": {"id": ["Webhook not found"]}}, 404)
        return _json({"success": True, "status": "ok"})

    # -- control routes (no token, no limits) -------------------------------------------------

    async def control_touch(self, request: web.Request) -> web.Response:
        """``POST /pipedrive/_sandbox/touch {"kind": "persons", "count": 100}`` or ``{"ids": [...]}``."""
        body = await _body(request)
        kind = str(body.get("kind", ""))
        if kind not in WITH_CUSTOM_FIELDS and kind not in ("activities", "pipelines", "stages"):
            raise Problem(400, "kind must be one of persons, organizations, deals, activities, pipelines, stages")
        touched = self.state.touch(kind, ids=body.get("ids"), count=int(body.get("count") or 0))
        return _json({"touched": touched})

    async def control_overlap(self, request: web.Request) -> web.Response:
        overlap = self.state.overlap()
        return _json({"persons": {str(k): v for k, v in overlap["persons"].items()},
                      "organizations": {str(k): v for k, v in overlap["organizations"].items()},
                      "pipedrive_only_persons": overlap["pipedrive_only_persons"]})

    async def control_state(self, request: web.Request) -> web.Response:
        return _json({"counts": self.state.counts(), "limits": self.limits.snapshot(), "now": iso(
            self.state.clock() * 1000)})


V1_PERSON_SORTS = ("id", "name", "first_name", "last_name", "add_time", "update_time", "owner_id", "org_id")


def _v1_sort(raw: str | None) -> list[tuple[str, bool]]:
    """v1's ``sort``: ``field_name ASC`` or ``DESC``, comma-separated; by id when not given."""
    if not raw:
        return [("id", False)]
    order = []
    for part in raw.split(","):
        field, _, direction = part.strip().partition(" ")
        direction = direction.strip().upper() or "ASC"
        if field not in V1_PERSON_SORTS or direction not in ("ASC", "DESC"):
            raise Problem(400, f"Invalid sort field or direction: {part.strip()}", v2=False)
        order.append((field, direction == "DESC"))
    return order


def _listed(value: Any) -> tuple[str, ...]:
    """An option that lists values: a list, or one comma-separated text."""
    if isinstance(value, str):
        value = value.split(",")
    return tuple(str(v).strip() for v in value or () if str(v).strip())


def _refer(check_ids: Callable[[], None], *, v2: bool = True) -> None:
    """Run a reference check, answering what it refuses in Pipedrive's shape."""
    try:
        check_ids()
    except Refused as refused:
        raise Problem(refused.status, refused.message, v2=v2) from None


def _matches(kind: str, row: Mapping[str, Any], term: str, exact: bool) -> bool:
    values = [str(row.get("name") or "")]
    if kind == "persons":
        values += [str(e.get("value") or "") for e in row.get("emails") or ()]
    values += [str(v) for v in (row.get("custom_fields") or {}).values() if isinstance(v, str)]
    values = [v.strip().lower() for v in values]
    return any(v == term for v in values) if exact else any(term in v for v in values)
