"""Webhook delivery for the sandboxes: batching, retries on a schedule, bans, duplicates and reordering.

What differs per vendor (body, signature, batch size, retry schedule, ban rule) is data handed in by
the vendor's sandbox: a ``DeliveryPolicy`` and a ``Target`` that renders a batch. The dispatcher runs
its own event loop on a background thread, so a sandbox emits from request handlers and from tests'
direct calls alike, and a slow or dead receiver never slows the sandbox's API down.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from crmbridge.logs import get_logger
from crmbridge.sandbox.stats import SandboxStats

log = get_logger("crmbridge.sandbox.webhooks")


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How a vendor delivers: what one request carries, when it retries, when it gives up."""

    batch_size: int  # events per request
    retry_delays: tuple[float, ...]  # seconds before each retry, at the vendor's pace
    timeout: float  # an answer slower than this counts as a failure
    concurrency: int = 10  # requests in flight per target
    ban_after: int | None = None  # failed deliveries in a row that ban the target (events lost meanwhile)
    ban_seconds: float = 0.0
    linger: float = 0.02  # how long a new event waits for company before its batch leaves


class Target(Protocol):
    """One subscribed endpoint: where batches go and how they are rendered (signed) on each attempt."""

    key: str
    url: str

    def render(self, events: Sequence[Any], attempt: int) -> tuple[bytes, dict[str, str]]: ...

    # Optional: ``answered(status: int | None)`` after each attempt (None: timed out or unreachable),
    # for vendors that show the last delivery's outcome on the subscription.


@dataclass(slots=True)
class _Queue:
    target: Target
    events: deque[Any] = field(default_factory=deque)
    wake: asyncio.Event | None = None
    consecutive_failures: int = 0
    banned_until: float = 0.0
    task: asyncio.Task[None] | None = None


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookDispatcher:
    """Delivers emitted events to targets by a vendor's policy; thread-safe ``emit``.

    ``retry_scale`` divides every retry delay and ban (a day of vendor retries in seconds, for tests);
    ``duplicates`` is the share of delivered batches sent a second time; ``shuffle`` delivers the
    events of a batch, and batches among themselves, out of order.
    """

    def __init__(self, policy: DeliveryPolicy, stats: SandboxStats, *, retry_scale: float = 1.0,
                 duplicates: float = 0.0, shuffle: bool = False, seed: int = 0, any_host: bool = False) -> None:
        self.policy = policy
        self.stats = stats
        self.retry_scale = retry_scale if retry_scale > 0 else 1.0
        self.duplicates = duplicates
        self.shuffle = shuffle
        self.any_host = any_host
        self._random = random.Random(seed)
        self._queues: dict[str, _Queue] = {}
        self._inflight = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    # -- emitting (any thread) -------------------------------------------------------------------

    def emit(self, target: Target, events: Sequence[Any]) -> None:
        if not events:
            return
        self.stats.webhook(len(events))
        if not self.any_host and not is_loopback(target.url):
            # The sandbox only ever calls this machine, unless told otherwise (containers on one network).
            self.stats.webhook_outcome("dropped", len(events))
            log.warning("sandbox.webhook_not_loopback", target=urlsplit(target.url).hostname)
            return
        loop = self._ensure_loop()
        with self._lock:
            queue = self._queues.get(target.key)
            if queue is None:
                queue = self._queues[target.key] = _Queue(target)
            queue.target = target  # a changed URL or secret applies to what is still queued
            if queue.banned_until > time.monotonic():
                self.stats.webhook_outcome("banned", len(events))
                return
            queue.events.extend(events)
        loop.call_soon_threadsafe(self._wake, target.key)

    def pending(self) -> int:
        """Events queued or in flight: zero once every delivery has succeeded or been given up."""
        with self._lock:
            return sum(len(q.events) for q in self._queues.values()) + self._inflight

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is pending (tests and the demo); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.02)
        return self.pending() == 0

    def forget(self) -> None:
        """Drop everything queued and every ban (the sandbox was reset)."""
        with self._lock:
            for queue in self._queues.values():
                queue.events.clear()
                queue.banned_until = 0.0
                queue.consecutive_failures = 0

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def _shutdown() -> None:
            for queue in self._queues.values():
                if queue.task is not None:
                    queue.task.cancel()
            if self._session is not None:
                await self._session.close()

        asyncio.run_coroutine_threadsafe(_shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- the delivery loop (its own thread) ---------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox-webhooks", daemon=True)
                self._thread.start()
            return self._loop

    def _wake(self, key: str) -> None:
        queue = self._queues[key]
        if queue.wake is None:
            queue.wake = asyncio.Event()
        queue.wake.set()
        if queue.task is None or queue.task.done():
            queue.task = asyncio.get_running_loop().create_task(self._run(queue))

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._session

    async def _run(self, queue: _Queue) -> None:
        semaphore = self._semaphores.setdefault(queue.target.key, asyncio.Semaphore(self.policy.concurrency))
        assert queue.wake is not None
        while True:
            await queue.wake.wait()
            queue.wake.clear()
            await asyncio.sleep(self.policy.linger)
            while True:
                with self._lock:
                    batch = [queue.events.popleft() for _ in range(min(self.policy.batch_size, len(queue.events)))]
                    self._inflight += len(batch)
                if not batch:
                    break
                if self.shuffle:
                    self._random.shuffle(batch)
                await semaphore.acquire()
                task = asyncio.get_running_loop().create_task(self._deliver(queue, batch, 1))
                task.add_done_callback(lambda _: semaphore.release())

    async def _deliver(self, queue: _Queue, batch: list[Any], attempt: int) -> None:
        if self.shuffle and self._random.random() < 0.5:
            await asyncio.sleep(self._random.random() * 0.05)  # lets a later batch overtake this one
        ok = await self._post(queue.target, batch, attempt)
        if ok:
            queue.consecutive_failures = 0
            self.stats.webhook_outcome("delivered", len(batch))
            if self.duplicates and self._random.random() < self.duplicates:
                self.stats.webhook_outcome("duplicated", len(batch))
                await self._post(queue.target, batch, attempt)
            self._settle(len(batch))
            return
        self.stats.webhook_outcome("failed", len(batch))
        queue.consecutive_failures += 1
        policy = self.policy
        if policy.ban_after and queue.consecutive_failures >= policy.ban_after:
            with self._lock:
                queue.banned_until = time.monotonic() + policy.ban_seconds / self.retry_scale
                lost = len(batch) + len(queue.events)
                self._inflight -= len(batch)
                queue.events.clear()
            self.stats.webhook_outcome("banned", lost)
            log.info("sandbox.webhook_banned", target=queue.target.key, lost=lost)
            return
        if attempt > len(policy.retry_delays):
            self.stats.webhook_outcome("dropped", len(batch))
            self._settle(len(batch))
            return
        await asyncio.sleep(policy.retry_delays[attempt - 1] / self.retry_scale)
        if queue.banned_until > time.monotonic():
            self.stats.webhook_outcome("banned", len(batch))
            self._settle(len(batch))
            return
        await self._deliver(queue, batch, attempt + 1)

    def _settle(self, n: int) -> None:
        with self._lock:
            self._inflight -= n

    async def _post(self, target: Target, batch: list[Any], attempt: int) -> bool:
        body, headers = target.render(batch, attempt)
        session = await self._client()
        self.stats.webhook_outcome("requests", 1)
        status: int | None = None
        try:
            async with session.post(target.url, data=body, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=self.policy.timeout)) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError):
            pass
        answered = getattr(target, "answered", None)
        if answered is not None:
            answered(status)
        return status is not None and 200 <= status < 300
