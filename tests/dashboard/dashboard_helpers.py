"""Builders for board snapshots, a source the test can change while the board runs, and a loopback server."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from crmbridge.dashboard.model import Funnel, HandoffRow, OwnerFigures, Snapshot, SurgeRow
from crmbridge.dashboard.views import dashboard_routes

TOKEN = "dash-0123456789abcdef-token"
NOW = datetime(2025, 3, 4, 14, 30, tzinfo=UTC)


def row(key: str = "h-1", **changes: Any) -> HandoffRow:
    base = HandoffRow(
        key=key, person="Ada Lovelace", email="ada@analytical.example", company="Analytical Engines Ltd",
        owner="Grace Hopper", team="Nordics", source="hubspot", policy="SQL: 1 business hour",
        started_at=NOW - timedelta(minutes=6), due_at=NOW + timedelta(minutes=54),
        business_minutes_left=54.0, used_pct=10.0, status="on_track", deal_url="https://crm.example/deals/1",
    )
    return dataclasses.replace(base, **changes)


def breached(r: HandoffRow, minutes_over: float = 35.0) -> HandoffRow:
    return dataclasses.replace(r, business_minutes_left=-minutes_over, used_pct=100.0 + minutes_over * 100 / 60,
                               status="breached", reminders=1)


def snapshot(rows: list[HandoffRow] | None = None, **changes: Any) -> Snapshot:
    base = Snapshot(
        generated_at=NOW,
        rows=[row()] if rows is None else rows,
        owners=[OwnerFigures("Grace Hopper", open=1, at_risk=0, breached=0, handoffs=7, p50_minutes=23.5,
                             within_sla_pct=85.7),
                OwnerFigures("Alan Turing", open=0, at_risk=0, breached=0, handoffs=0, p50_minutes=None,
                             within_sla_pct=None)],
        funnel=Funnel(leads=1200, mqls=300, sqls=60, handoffs=58, touched=50, meetings=20, won=6, lost=4),
        surges=[SurgeRow("Analytical Engines Ltd", "Grace Hopper", 35.0, 72.0, ["Ada Lovelace", "Charles Babbage"],
                         NOW - timedelta(hours=2))],
    )
    return dataclasses.replace(base, **changes)


class MutableSource:
    """A SnapshotSource the test changes while the board is being served (from another thread)."""

    def __init__(self, initial: Snapshot) -> None:
        self._lock = threading.Lock()
        self._snapshot = initial
        self.calls = 0
        self.failure: Exception | None = None

    def set(self, snap: Snapshot) -> None:
        with self._lock:
            self._snapshot = snap

    def snapshot(self) -> Snapshot:
        with self._lock:
            self.calls += 1
            if self.failure is not None:
                raise self.failure
            return self._snapshot


def board_app(source: MutableSource, token: str | None = TOKEN, **options: Any) -> web.Application:
    app = web.Application()
    app.add_routes(dashboard_routes(source, token, **options))
    return app


@contextmanager
def serve(app: web.Application, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` on a free loopback port from a thread of its own; yields the base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    started = threading.Event()
    port: list[int] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="dashboard-server", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the dashboard test server did not start")
    try:
        yield f"http://{host}:{port[0]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
