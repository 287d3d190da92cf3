"""The daemon's scheduler and HTTP routes: failures isolated, a daily full pass, health and metrics."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from crmbridge.runtime.daemon import Scheduler, build_app
from crmbridge.runtime.metrics import parse_samples as samples
from crmbridge.store import Store
from crmbridge.sync import RunReport


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_failing_source_does_not_stop_the_others_and_is_counted() -> None:
    calls: list[tuple[str, bool]] = []

    def sync(source: str, full: bool) -> RunReport:
        calls.append((source, full))
        if source == "broken":
            raise RuntimeError("CRM down")
        return RunReport(source, "sync", api_calls={"GET /x": 3})

    scheduler = Scheduler(["broken", "ok"], 60, sync, clock=Clock())
    scheduler.tick()
    scheduler.tick()
    assert scheduler.state.consecutive_failures["broken"] == 2
    assert scheduler.state.runs[("ok", "ok")] == 2 and scheduler.state.api_calls["ok"] == 6


def test_the_first_pass_and_one_a_day_are_full_and_rescore_everyone() -> None:
    clock, calls, daily = Clock(), [], []
    scheduler = Scheduler(["crm"], 60, lambda s, full: calls.append(full) or RunReport(s, "sync"),
                          daily=lambda: daily.append(clock.now), clock=clock)
    scheduler.tick()
    clock.now += 300
    scheduler.tick()
    clock.now += 86_400
    scheduler.tick()
    assert calls == [True, False, True]
    assert len(daily) == 2


def test_health_readiness_and_metrics(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    scheduler = Scheduler(["crm"], 60, lambda s, full: RunReport(s, "sync", api_calls={"GET /x": 2}),
                          clock=Clock())
    scheduler.tick()

    async def probe() -> tuple[int, int, str]:
        async with TestClient(TestServer(build_app(store, scheduler))) as client:
            health = await client.get("/healthz")
            ready = await client.get("/readyz")
            metrics = await (await client.get("/metrics")).text()
            return health.status, ready.status, metrics

    health, ready, metrics = asyncio.run(probe())
    store.close()
    assert (health, ready) == (200, 200)
    found = samples(metrics)
    assert found[("crmbridge_sync_runs_total", frozenset({("source", "crm"), ("outcome", "ok")}))] == 1
    assert found[("crmbridge_api_calls_total", frozenset({("source", "crm")}))] == 2


def test_readiness_fails_after_three_failed_passes(sqlite_url: str) -> None:
    store = Store(sqlite_url)

    def failing(source: str, full: bool) -> RunReport:
        raise RuntimeError("401 from the CRM")

    scheduler = Scheduler(["crm"], 60, failing, clock=Clock())
    for _ in range(3):
        scheduler.tick()

    async def probe() -> int:
        async with TestClient(TestServer(build_app(store, scheduler))) as client:
            return (await client.get("/readyz")).status

    status = asyncio.run(probe())
    store.close()
    assert status == 503


def test_write_back_runs_after_every_round_of_passes_and_its_failure_stops_nothing() -> None:
    order: list[str] = []

    def write_back() -> None:
        order.append("write-back")
        raise RuntimeError("CRM down")

    scheduler = Scheduler(["a", "b"], 60, lambda s, full: order.append(s) or RunReport(s, "sync"),
                          clock=Clock(), after=write_back)
    scheduler.tick()
    scheduler.tick()
    assert order == ["a", "b", "write-back", "a", "b", "write-back"]
    assert scheduler.state.runs[("a", "ok")] == 2
