"""A HubSpot-compatible sandbox: the seeded world served in HubSpot's shapes, errors and limits.

``HubSpotSandbox(options)`` is what the plugin hands the sandbox host (mounted at ``/hubspot``); tests
also use its Python API to look at and change the state directly (counts, touches, merges, links).
Its public app (webhooks v3) sends signed deliveries of every change to the subscribed target URL.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web

from crmbridge.connectors import SandboxOptions
from crmbridge.sandbox.faults import FaultInjector
from crmbridge.sandbox.sellers import SellerRequest, SurgeRequest
from crmbridge.sandbox.stats import SandboxStats
from crmbridge.sandbox.webhooks import WebhookDispatcher
from crmbridge.sandbox.world import World, generate_world, parse_anchor
from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.clock import iso_ms
from crmbridge_hubspot.sandbox.errors import json_response
from crmbridge_hubspot.sandbox.gateway import Gateway
from crmbridge_hubspot.sandbox.inputs import json_body
from crmbridge_hubspot.sandbox.limits import RateLimits
from crmbridge_hubspot.sandbox.portal import HubSpotPortal
from crmbridge_hubspot.sandbox.routes_associations import AssociationRoutes
from crmbridge_hubspot.sandbox.routes_legacy import LegacyRoutes
from crmbridge_hubspot.sandbox.routes_metadata import MetadataRoutes
from crmbridge_hubspot.sandbox.routes_objects import ObjectRoutes
from crmbridge_hubspot.sandbox.routes_webhooks import WebhookRoutes
from crmbridge_hubspot.sandbox.schema import ObjectType, object_type
from crmbridge_hubspot.sandbox.sellers import HubSpotSalesDesk
from crmbridge_hubspot.sandbox.simulator import Simulator
from crmbridge_hubspot.sandbox.webhooks import WebhookApp, delivery_policy

__all__ = ["HubSpotSandbox"]

DEFAULT_PORTAL_ID = 48_213_577


def _otype(name: str) -> ObjectType:
    otype = object_type(name)
    if otype is None:
        raise ValueError(f"unknown HubSpot object type {name!r}")
    return otype


class HubSpotSandbox:
    """Implements ``crmbridge.sandbox.VendorSandbox`` for HubSpot.

    Bearer tokens accepted: ``SandboxOptions.tokens`` (every scope), plus the tokens of
    ``extra["hubspot_token_scopes"]`` (``{token: [scope, ...]}``: only those scopes; a call needing
    another gets HubSpot's 403 ``MISSING_SCOPES``) and ``extra["hubspot_token"]`` (one more token with
    every scope, an older spelling). Any other token gets HubSpot's 401.

    Search lags writes by 1-3 s (divided by the time scale) unless ``hubspot_search_lag_seconds`` says
    otherwise: a number, or ``[low, high]`` to draw each write's lag from; 0 turns it off, for unit tests
    only. ``search_lag`` (the CLI's spelling) sets it too when it is above 0.

    Other options read from ``SandboxOptions.extra`` (all optional): ``anchor``, ``hubspot_tier``,
    ``hubspot_burst_limit``, ``hubspot_daily_limit``, ``hubspot_search_per_second``,
    ``hubspot_portal_id``, ``stall_seconds``, ``fault_after_share``;
    the app behind webhooks: ``hubspot_app_id``, ``hubspot_client_secret`` (random when absent),
    ``hubspot_developer_api_key``; delivery: ``webhook_retry_scale``, ``webhook_duplicates``,
    ``webhook_shuffle``, ``webhook_any_host``.
    """

    name = "hubspot"

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options = options or SandboxOptions()
        extra = options.extra
        self.time_scale = float(options.time_scale) if options.time_scale and options.time_scale > 0 else 1.0
        self.world: World = generate_world(options.seed, options.contacts, parse_anchor(extra.get("anchor")))
        self.portal_id = int(extra.get("hubspot_portal_id", DEFAULT_PORTAL_ID))
        self.portal = HubSpotPortal(self.world, portal_id=self.portal_id,
                                    search_lag_seconds=search_lag(extra, self.time_scale), seed=options.seed)
        self.limits = RateLimits(
            str(extra.get("hubspot_tier", "professional")).lower(), self.time_scale,
            burst=_int_or_none(extra.get("hubspot_burst_limit")), daily=_int_or_none(extra.get("hubspot_daily_limit")),
            search_per_second=_int_or_none(extra.get("hubspot_search_per_second")),
        )
        self.faults = FaultInjector(options.faults, seed=options.seed,
                                    stall_seconds=float(extra.get("stall_seconds", 30.0)),
                                    after_share=float(extra.get("fault_after_share", 0.5)))
        self._stats = SandboxStats()
        self.webhooks = self._webhook_app(options)
        self.portal.listener = self.webhooks
        self.simulator = Simulator(self.portal)
        self.sellers = HubSpotSalesDesk(self.portal)
        self.gateway = Gateway(self.limits, self.faults, self._stats, tokens=accepted_tokens(options),
                               time_scale=self.time_scale, developer_key=self.webhooks.developer_key)
        self.app = self._build_app()

    def _webhook_app(self, options: SandboxOptions) -> WebhookApp:
        from crmbridge_hubspot.plugin import SANDBOX_APP_ID, SANDBOX_DEVELOPER_KEY

        extra = options.extra
        dispatcher = WebhookDispatcher(
            delivery_policy(), self._stats, retry_scale=float(extra.get("webhook_retry_scale", 1.0)),
            duplicates=float(extra.get("webhook_duplicates", 0.0)), shuffle=bool(extra.get("webhook_shuffle", False)),
            seed=options.seed, any_host=bool(extra.get("webhook_any_host", False)))
        return WebhookApp(app_id=int(extra.get("hubspot_app_id", SANDBOX_APP_ID)),
                          secret=str(extra.get("hubspot_client_secret") or secrets.token_hex(16)),
                          developer_key=str(extra.get("hubspot_developer_api_key", SANDBOX_DEVELOPER_KEY)),
                          portal_id=self.portal_id, dispatcher=dispatcher,
                          has_property=lambda t, p: p in self.portal.catalogs[t].defs)

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self.gateway.middleware], client_max_size=4 * 1024 * 1024)
        ObjectRoutes(self.portal).register(app.router)
        AssociationRoutes(self.portal).register(app.router)
        MetadataRoutes(self.portal, self.account_info()).register(app.router)
        LegacyRoutes(self.portal).register(app.router)
        WebhookRoutes(self.webhooks).register(app.router)
        app.router.add_post("/_sandbox/touch", self._touch_route)
        app.router.add_get("/_sandbox/counts", self._counts_route)
        return app

    def account_info(self) -> dict[str, Any]:
        return {"portalId": self.portal_id, "accountType": "STANDARD", "timeZone": "US/Eastern",
                "companyCurrency": "USD", "additionalCurrencies": ["EUR", "GBP"], "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18_000_000, "uiDomain": "app.hubspot.com", "dataHostingLocation": "na1"}

    # -- the VendorSandbox protocol --------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        snapshot = self._stats.snapshot()
        snapshot["objects"] = self.portal.counts()
        snapshot["limits"] = {"tier": self.limits.tier, "burst": self.limits.burst,
                              "interval_ms": int(self.limits.interval_ms), "daily": self.limits.daily.limit,
                              "daily_used": self.limits.daily.used, "search_per_second": self.limits.search_limit}
        snapshot["sellers"] = self.sellers.ledger.snapshot()
        return snapshot

    def reset(self) -> None:
        self.webhooks.reset()
        self.portal.load()
        self.simulator.reset()
        self.sellers.reset()
        self._stats.reset()
        self.limits.reset()

    def simulate(self, sales_ready: int = 0, activities: int = 0, seed: int | None = None,
                 sellers: Any = None, surge: Any = None) -> dict[str, Any]:
        """``sales_ready`` ICP-fit people submit "Contact us" now, ``activities`` visitors browse or open an
        e-mail; ``sellers`` (``{"until", "seed", "profiles"}``) answer hand-offs up to a simulated instant;
        ``surge`` (``{"accounts", "days", "until", "seed"}``) heats target accounts up. All through the
        portal, so webhooks go out. Answers who and how many."""
        work = SellerRequest.parse(sellers, self.options.seed) if sellers is not None else None
        heat = SurgeRequest.parse(surge, self.options.seed) if surge is not None else None
        done = self.simulator.run(sales_ready=sales_ready, activities=activities, seed=seed)
        if heat is not None:
            done["surge"] = self.sellers.surge(heat)
        if work is not None:
            done["sellers"] = self.sellers.work(work)
        return done

    def banner(self) -> list[str]:
        """What a user configures crmbridge with to receive this sandbox's webhooks."""
        app = self.webhooks
        return [f"webhooks app id {app.app_id} (CRMBRIDGE_HUBSPOT_APP_ID)",
                f"developer API key {app.developer_key} (CRMBRIDGE_HUBSPOT_DEVELOPER_API_KEY)",
                f"client secret {app.secret} (CRMBRIDGE_HUBSPOT_CLIENT_SECRET)"]

    def close(self) -> None:
        self.webhooks.dispatcher.close()

    @property
    def dispatcher(self) -> WebhookDispatcher:
        return self.webhooks.dispatcher

    def webhook_options(self) -> dict[str, Any]:
        """What ``plugin.webhooks(**options)`` needs to verify this sandbox's deliveries: its app's secret."""
        return {"secret": self.webhooks.secret}

    def drain_webhooks(self, timeout: float = 30.0) -> bool:
        """Wait until every emitted delivery succeeded or was given up (tests, the demo)."""
        return self.webhooks.dispatcher.drain(timeout)

    def set_faults(self, rates: Mapping[str, float]) -> None:
        self.faults.set_rates(rates)

    # -- control routes (never counted, limited or faulted) ------------------------------------------------

    async def _touch_route(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        otype = object_type(str(body.get("objectType", "")))
        if otype is None:
            return errors.unknown_object_type(str(body.get("objectType"))).response()
        if ("ids" in body) == ("count" in body):
            return errors.validation('Give either "ids" or "count"').response()
        try:
            records = self.portal.touch(otype, count=body.get("count"),
                                        ids=[int(i) for i in body["ids"]] if "ids" in body else None,
                                        properties=body.get("properties"))
        except errors.HubSpotError as exc:
            return exc.response()
        stamp = iso_ms(records[0].updated_ms) if records else None
        return json_response({"objectType": otype.name, "touched": len(records), "lastModified": stamp,
                              "ids": [str(r.id) for r in records]})

    async def _counts_route(self, request: web.Request) -> web.Response:
        return json_response(self.portal.counts())

    # -- the Python API on the state, for tests and benchmarks -----------------------------------------------

    def set_search_lag(self, seconds: float | Sequence[float]) -> None:
        """Change the search index lag for the writes that follow (seconds or [low, high], scaled like the
        option), e.g. to let a later write show in search before an earlier one."""
        low, high = search_lag({"hubspot_search_lag_seconds": seconds}, self.time_scale)
        self.portal.set_search_lag(low, high)

    def count(self, object_type_name: str, archived: bool = False) -> int:
        """Live (or archived) records of a type; merged-away records are neither."""
        counts = self.portal.counts()[_otype(object_type_name).name]
        return counts["archived" if archived else "live"]

    def ids(self, object_type_name: str, archived: bool = False) -> list[str]:
        store = self.portal.store(_otype(object_type_name).name)
        with self.portal.lock:
            if archived:
                return [str(i) for i in store.archived_order]
            return [str(r.id) for r in store.live_records()]

    def get(self, object_type_name: str, record_id: str | int) -> dict[str, Any] | None:
        """A record's properties (every one set), following merges; None when it is gone."""
        otype = _otype(object_type_name)
        with self.portal.lock:
            record = self.portal.find(otype, str(record_id))
            if record is None:
                return None
            catalog = self.portal.store(otype.name).catalog
            return {name: record.get(p.column) for name, p in catalog.defs.items() if record.get(p.column) is not None}

    def create(self, object_type_name: str, properties: Mapping[str, Any],
               associations: Iterable[tuple[str, str | int]] = ()) -> str:
        otype = _otype(object_type_name)
        links = [(_otype(t).name, int(i), False) for t, i in associations]
        return str(self.portal.create(otype, properties, links).id)

    def update(self, object_type_name: str, record_id: str | int, properties: Mapping[str, Any]) -> None:
        otype = _otype(object_type_name)
        with self.portal.lock:
            record = self._require(otype, record_id)
            self.portal.update(otype, record, properties)

    def archive(self, object_type_name: str, record_id: str | int) -> None:
        otype = _otype(object_type_name)
        with self.portal.lock:
            self.portal.archive(otype, self._require(otype, record_id))

    def merge(self, object_type_name: str, primary_id: str | int, merged_id: str | int) -> str:
        otype = _otype(object_type_name)
        with self.portal.lock:
            primary = self._require(otype, primary_id)
            merged = self.portal.store(otype.name).live(int(merged_id))
            if merged is None:
                raise KeyError(f"no live {otype.singular} {merged_id}")
            return str(self.portal.merge(otype, primary, merged).id)

    def touch(self, object_type_name: str, count: int | None = None, ids: Sequence[str | int] | None = None,
              properties: Mapping[str, Any] | None = None) -> list[str]:
        """Bump last-modified to now on ``ids``, or on ``count`` live records drawn at random."""
        if (count is None) == (ids is None):
            raise ValueError("give either count or ids")
        records = self.portal.touch(_otype(object_type_name), count=count,
                                    ids=[int(i) for i in ids] if ids is not None else None, properties=properties)
        return [str(r.id) for r in records]

    def associations(self, from_type: str, record_id: str | int, to_type: str) -> list[str]:
        a, b = _otype(from_type), _otype(to_type)
        with self.portal.lock:
            return [str(i) for i in self.portal.associated(a.name, int(record_id), b.name)]

    def associate(self, from_type: str, record_id: str | int, to_type: str, to_id: str | int,
                  primary: bool = False) -> None:
        self.portal.associate(_otype(from_type).name, int(record_id), _otype(to_type).name, int(to_id), primary)

    def _require(self, otype: ObjectType, record_id: str | int) -> Any:
        record = self.portal.find(otype, str(record_id))
        if record is None:
            raise KeyError(f"no live {otype.singular} {record_id}")
        return record


DEFAULT_SEARCH_LAG = (1.0, 3.0)  # seconds a write stays invisible to search, at time scale 1


def search_lag(extra: Mapping[str, Any], time_scale: float) -> tuple[float, float]:
    """The (low, high) range each write's search lag is drawn from, in scaled seconds."""
    raw = extra.get("hubspot_search_lag_seconds")
    if raw is None and extra.get("search_lag"):  # the CLI's spelling; its default 0 means "not given"
        raw = extra["search_lag"]
    if raw is None:
        low, high = DEFAULT_SEARCH_LAG
    elif isinstance(raw, list | tuple):
        low, high = (float(raw[0]), float(raw[-1])) if raw else (0.0, 0.0)
    else:
        low = high = float(raw)
    if low < 0 or high < low:
        raise ValueError(f"search lag {raw!r}: give seconds >= 0, or [low, high] with low <= high")
    return low / time_scale, high / time_scale


def accepted_tokens(options: SandboxOptions) -> dict[str, frozenset[str] | None]:
    """Every bearer token the sandbox accepts, with its scopes (None: all of them)."""
    tokens: dict[str, frozenset[str] | None] = {str(t): None for t in options.tokens}
    legacy = options.extra.get("hubspot_token")
    if legacy:
        tokens[str(legacy)] = None
    for token, scopes in (options.extra.get("hubspot_token_scopes") or {}).items():
        tokens[str(token)] = frozenset(str(s) for s in scopes)
    return tokens


def _int_or_none(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None
