"""``crmbridge run``: an HTTP server for health and metrics, and a scheduler of incremental syncs.

The scheduled sync is the safety net behind real-time updates: whatever a webhook missed, the next
pass picks up. A failing pass is logged and retried at the next tick; the daemon keeps serving.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from crmbridge.logs import get_logger
from crmbridge.settings import Settings
from crmbridge.store import Store
from crmbridge.sync import RunReport

log = get_logger("crmbridge.daemon")

SyncFn = Callable[[str, bool], RunReport]  # (source, full): a full pass also reconciles deletions
DAY = 86_400.0


@dataclass
class SchedulerState:
    last_ok: dict[str, float] = field(default_factory=dict)
    last_error: dict[str, str] = field(default_factory=dict)
    runs: dict[tuple[str, str], int] = field(default_factory=dict)
    api_calls: dict[str, int] = field(default_factory=dict)
    consecutive_failures: dict[str, int] = field(default_factory=dict)


class Scheduler:
    """Runs one incremental pass per source every ``interval`` seconds on a background thread.

    Once a day a source's pass is a full one (it also looks for records deleted in the CRM), and
    everyone is re-scored, because decay moves scores with time alone.
    """

    def __init__(self, sources: list[str], interval: float, sync: SyncFn,
                 daily: Callable[[], object] | None = None, full_every: float = DAY,
                 clock: Callable[[], float] = time.time, after: Callable[[], object] | None = None) -> None:
        self.sources, self.interval, self._sync = sources, interval, sync
        self._after = after  # write-back and hand-off, after the passes have stored and scored
        self._daily, self.full_every, self._clock = daily, full_every, clock
        self._last_full: dict[str, float] = {}
        self._last_daily = 0.0
        self.state = SchedulerState()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def tick(self) -> None:
        for source in self.sources:
            if self._stop.is_set():
                return
            full = self._clock() - self._last_full.get(source, 0.0) >= self.full_every
            try:
                report = self._sync(source, full)
            except Exception as exc:  # one source failing must not stop the others or the daemon
                self.state.last_error[source] = f"{type(exc).__name__}: {exc}"
                self.state.consecutive_failures[source] = self.state.consecutive_failures.get(source, 0) + 1
                self.state.runs[(source, "failed")] = self.state.runs.get((source, "failed"), 0) + 1
                log.error("scheduler.sync_failed", source=source, error=type(exc).__name__, message=str(exc)[:300])
                continue
            self.state.last_ok[source] = self._clock()
            if full:
                self._last_full[source] = self._clock()
            self.state.consecutive_failures[source] = 0
            self.state.last_error.pop(source, None)
            self.state.runs[(source, "ok")] = self.state.runs.get((source, "ok"), 0) + 1
            self.state.api_calls[source] = self.state.api_calls.get(source, 0) + report.total_calls
        if self._daily is not None and self._clock() - self._last_daily >= self.full_every:
            try:
                self._daily()
                self._last_daily = self._clock()
            except Exception as exc:
                log.error("scheduler.daily_failed", error=type(exc).__name__, message=str(exc)[:300])
        if self._after is not None and not self._stop.is_set():
            try:
                self._after()
            except Exception as exc:
                log.error("scheduler.writeback_failed", error=type(exc).__name__, message=str(exc)[:300])

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval)


def _metrics(store: Store, state: SchedulerState) -> str:
    lines = ["# HELP crmbridge_records Records in the store by source, stream and state.",
             "# TYPE crmbridge_records gauge"]
    for source, streams in store.counts().items():
        for stream, c in streams.items():
            for kind in ("live", "archived"):
                lines.append(f'crmbridge_records{{source="{source}",stream="{stream}",state="{kind}"}} {c[kind]}')
    lines += ["# HELP crmbridge_sync_runs_total Scheduled incremental passes by outcome.",
              "# TYPE crmbridge_sync_runs_total counter"]
    for (source, outcome), n in sorted(state.runs.items()):
        lines.append(f'crmbridge_sync_runs_total{{source="{source}",outcome="{outcome}"}} {n}')
    lines += ["# HELP crmbridge_api_calls_total CRM API calls made by scheduled passes.",
              "# TYPE crmbridge_api_calls_total counter"]
    for source, n in sorted(state.api_calls.items()):
        lines.append(f'crmbridge_api_calls_total{{source="{source}"}} {n}')
    lines += ["# HELP crmbridge_last_sync_timestamp_seconds End of the last successful pass.",
              "# TYPE crmbridge_last_sync_timestamp_seconds gauge"]
    for source, at in sorted(state.last_ok.items()):
        lines.append(f'crmbridge_last_sync_timestamp_seconds{{source="{source}"}} {at:.3f}')
    return "\n".join(lines) + "\n"


def build_app(store: Store, scheduler: Scheduler) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/healthz")
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @routes.get("/readyz")
    async def readyz(_: web.Request) -> web.Response:
        problems: dict[str, Any] = {}
        try:
            await asyncio.to_thread(store.counts)
        except Exception as exc:
            problems["store"] = type(exc).__name__
        for source, failures in scheduler.state.consecutive_failures.items():
            if failures >= 3:
                problems[source] = scheduler.state.last_error.get(source, "failing")
        status = 503 if problems else 200
        return web.json_response({"status": "ready" if not problems else "not ready", "problems": problems},
                                 status=status)

    @routes.get("/metrics")
    async def metrics(_: web.Request) -> web.Response:
        text = await asyncio.to_thread(_metrics, store, scheduler.state)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.add_routes(routes)
    return app


def serve(settings: Settings, store: Store, scheduler: Scheduler) -> None:
    """Serve until SIGINT/SIGTERM; the scheduler stops with the server."""
    app = build_app(store, scheduler)

    async def on_startup(_: web.Application) -> None:
        scheduler.start()

    async def on_cleanup(_: web.Application) -> None:
        await asyncio.to_thread(scheduler.stop)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    log.info("daemon.start", host=settings.http_host, port=settings.http_port, sources=settings.sources)
    web.run_app(app, host=settings.http_host, port=settings.http_port, access_log=None, print=None)
