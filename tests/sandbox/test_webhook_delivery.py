"""The sandboxes' webhook delivery: batches, the retry schedule, bans, duplicates, loopback only."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from crmbridge.sandbox import DeliveryPolicy, SandboxStats, WebhookDispatcher
from crmbridge.sandbox.recorder import RecordingReceiver


class Receiver(RecordingReceiver):
    """The recording endpoint, with the JSON bodies it accepted."""

    @property
    def bodies(self) -> list[list[Any]]:
        return [json.loads(body) for _, body in self.deliveries]

    @property
    def headers(self) -> list[dict[str, str]]:
        return [headers for headers, _ in self.deliveries]

    @property
    def events(self) -> list[Any]:
        return [e for body in self.bodies for e in body]


@dataclass
class JsonTarget:
    url: str
    key: str = "hook"
    attempts: list[int] = field(default_factory=list)

    def render(self, events: Sequence[Any], attempt: int) -> tuple[bytes, dict[str, str]]:
        self.attempts.append(attempt)
        return json.dumps(list(events)).encode(), {"Content-Type": "application/json", "X-Attempt": str(attempt)}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _dispatcher(policy: DeliveryPolicy, **kw: Any) -> tuple[WebhookDispatcher, SandboxStats]:
    stats = SandboxStats()
    return WebhookDispatcher(policy, stats, **kw), stats


def test_events_leave_in_batches_of_the_vendors_size(receiver: Receiver) -> None:
    dispatcher, stats = _dispatcher(DeliveryPolicy(batch_size=100, retry_delays=(), timeout=5))
    dispatcher.emit(JsonTarget(f"http://127.0.0.1:{receiver.port}/hook"), list(range(250)))
    assert dispatcher.drain(10)
    dispatcher.close()
    assert sorted(receiver.events) == list(range(250))
    assert max(len(b) for b in receiver.bodies) == 100 and len(receiver.bodies) == 3
    assert stats.snapshot()["webhooks"] | {} == {"emitted": 250, "delivered": 250, "failed": 0, "dropped": 0,
                                                 "banned": 0, "duplicated": 0, "requests": 3}


def test_a_failed_delivery_is_retried_on_schedule_with_the_attempt_number(receiver: Receiver) -> None:
    receiver.fail = 2
    target = JsonTarget(f"http://127.0.0.1:{receiver.port}/hook")
    dispatcher, stats = _dispatcher(DeliveryPolicy(batch_size=1, retry_delays=(3, 30, 150), timeout=5),
                                    retry_scale=1000)
    dispatcher.emit(target, ["a"])
    assert dispatcher.drain(10)
    dispatcher.close()
    assert receiver.events == ["a"]
    assert target.attempts == [1, 2, 3]
    assert receiver.headers[0]["X-Attempt"] == "3"
    snap = stats.snapshot()["webhooks"]
    assert (snap["failed"], snap["delivered"], snap["dropped"]) == (2, 1, 0)


def test_an_event_is_dropped_after_the_last_retry(receiver: Receiver) -> None:
    receiver.fail = 10
    dispatcher, stats = _dispatcher(DeliveryPolicy(batch_size=1, retry_delays=(1, 1), timeout=5), retry_scale=1000)
    dispatcher.emit(JsonTarget(f"http://127.0.0.1:{receiver.port}/hook"), ["lost"])
    assert dispatcher.drain(10)
    dispatcher.close()
    assert receiver.events == []
    assert stats.snapshot()["webhooks"]["dropped"] == 1
    assert stats.snapshot()["webhooks"]["failed"] == 3


def test_failures_in_a_row_ban_the_target_and_events_meanwhile_are_lost(receiver: Receiver) -> None:
    receiver.fail = 1000
    policy = DeliveryPolicy(batch_size=1, retry_delays=(), timeout=5, concurrency=1, ban_after=10, ban_seconds=1800)
    dispatcher, stats = _dispatcher(policy, retry_scale=1.0)
    target = JsonTarget(f"http://127.0.0.1:{receiver.port}/hook")
    for i in range(10):
        dispatcher.emit(target, [i])
        assert dispatcher.drain(10)
    receiver.fail = 0
    dispatcher.emit(target, ["during the ban"])
    assert dispatcher.drain(10)
    dispatcher.close()
    assert receiver.events == []
    snap = stats.snapshot()["webhooks"]
    # the tenth failure bans: its event and the one sent during the ban are lost, the nine before dropped
    assert (snap["failed"], snap["dropped"], snap["banned"], snap["emitted"]) == (10, 9, 2, 11)


def test_a_slow_answer_counts_as_a_failure() -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response()

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/hook", slow)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    dispatcher, stats = _dispatcher(DeliveryPolicy(batch_size=1, retry_delays=(), timeout=0.2))
    dispatcher.emit(JsonTarget(f"http://127.0.0.1:{port}/hook"), ["x"])
    assert dispatcher.drain(10)
    dispatcher.close()
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    assert stats.snapshot()["webhooks"]["failed"] == 1 and stats.snapshot()["webhooks"]["delivered"] == 0


def test_duplicates_are_sent_twice_when_asked(receiver: Receiver) -> None:
    dispatcher, stats = _dispatcher(DeliveryPolicy(batch_size=10, retry_delays=(), timeout=5), duplicates=1.0)
    dispatcher.emit(JsonTarget(f"http://127.0.0.1:{receiver.port}/hook"), list(range(5)))
    assert dispatcher.drain(10)
    dispatcher.close()
    assert sorted(receiver.events) == sorted([*range(5), *range(5)])
    assert stats.snapshot()["webhooks"]["duplicated"] == 5


def test_only_loopback_targets_are_called_unless_told_otherwise() -> None:
    dispatcher, stats = _dispatcher(DeliveryPolicy(batch_size=10, retry_delays=(), timeout=5))
    dispatcher.emit(JsonTarget("http://crm.example.com/hook"), [1, 2])
    assert dispatcher.pending() == 0
    assert stats.snapshot()["webhooks"]["dropped"] == 2 and stats.snapshot()["webhooks"]["requests"] == 0
