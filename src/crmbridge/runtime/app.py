"""The daemon's HTTP application: health, readiness, Prometheus metrics, and the webhook receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from crmbridge.connectors import ApiUsage
from crmbridge.runtime.metrics import DaemonMetrics, StateCollector
from crmbridge.runtime.receiver import Receiver
from crmbridge.runtime.scheduler import Scheduler
from crmbridge.store import Store
from crmbridge.store.inbox import Inbox

UsageFn = Callable[[], Mapping[str, ApiUsage]]
LATENCY_WINDOW = 900.0  # seconds of done events the latency histogram covers


def _state(store: Store, scheduler: Scheduler, inbox: Inbox | None, usage: UsageFn | None) -> dict[str, Any]:
    state: dict[str, Any] = {"counts": store.records.counts(), "runs": dict(scheduler.state.runs),
                             "last_ok": dict(scheduler.state.last_ok), "leading": scheduler.state.leading,
                             "rounds": scheduler.state.rounds}
    calls = {s: {"calls": n, "rate_limited": 0} for s, n in scheduler.state.api_calls.items()}
    for source, u in (usage() if usage else {}).items():
        calls[source] = {"calls": u.total, "rate_limited": u.rate_limited}
    state["usage"] = calls
    if inbox is not None:
        state["inbox"] = inbox.counts()
        oldest = inbox.oldest_pending_ms()
        state["oldest_pending_age"] = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)
        state["latencies"] = inbox.latencies(int((time.time() - LATENCY_WINDOW) * 1000))
    return state


def build_app(store: Store, scheduler: Scheduler, *, receiver: Receiver | None = None, inbox: Inbox | None = None,
              metrics: DaemonMetrics | None = None, usage: UsageFn | None = None,
              max_body: int = 1024 * 1024, extra_routes: list[web.RouteDef] | None = None) -> web.Application:
    metrics = metrics or DaemonMetrics()
    metrics.registry.register(StateCollector(lambda: _state(store, scheduler, inbox, usage)))
    routes = web.RouteTableDef()

    @routes.get("/healthz")
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @routes.get("/readyz")
    async def readyz(_: web.Request) -> web.Response:
        problems: dict[str, Any] = {}
        try:
            await asyncio.to_thread(store.records.counts)
        except Exception as exc:
            problems["store"] = type(exc).__name__
        for source, failures in scheduler.state.consecutive_failures.items():
            if failures >= 3:
                problems[source] = scheduler.state.last_error.get(source, "failing")
        status = 503 if problems else 200
        return web.json_response({"status": "ready" if not problems else "not ready", "problems": problems,
                                  "leader": scheduler.state.leading}, status=status)

    @routes.get("/metrics")
    async def scrape(_: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # The receiver reads bodies itself, to answer 413 past its own limit rather than aiohttp's.
    app = web.Application(client_max_size=max_body + 1)
    app.add_routes(routes)
    if extra_routes:
        app.add_routes(extra_routes)
    if receiver is not None:
        app.add_routes(receiver.routes())

        async def close_writer(_: web.Application) -> None:
            await receiver.writer.close()

        app.on_cleanup.append(close_writer)
    return app
