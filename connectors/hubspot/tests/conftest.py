"""Fixtures for the HubSpot sandbox tests: a running sandbox, the real SDK pointed at it, raw HTTP, and a
loopback endpoint that receives the sandbox's webhook deliveries."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hubspot
import orjson
import pytest
import urllib3
from aiohttp import web

from crmbridge.connectors import SANDBOX_TOKEN, SandboxOptions
from crmbridge.sandbox import SandboxServer

ANCHOR = "2026-03-02T00:00:00Z"
TOKEN = SANDBOX_TOKEN


def start_sandbox(contacts: int = 300, seed: int = 11, faults: dict[str, float] | None = None,
                  time_scale: float = 1.0, tokens: tuple[str, ...] = (TOKEN,), **extra: Any) -> SandboxServer:
    """A sandbox whose search sees writes at once (unit tests only; a test of the lag sets its own)."""
    options = SandboxOptions(seed=seed, contacts=contacts, faults=faults or {}, time_scale=time_scale,
                             tokens=tokens, extra={"anchor": ANCHOR, "hubspot_search_lag_seconds": 0, **extra})
    return SandboxServer(options, sources=["hubspot"]).start()


@pytest.fixture(scope="session")
def _shared_sandbox() -> Iterator[SandboxServer]:
    # A generous burst so the shared sandbox never rate-limits the functional tests.
    server = start_sandbox(hubspot_burst_limit=100_000, hubspot_search_per_second=100_000)
    yield server
    server.stop()


@pytest.fixture
def hs_server(_shared_sandbox: SandboxServer) -> SandboxServer:
    """The shared sandbox, back in its seeded state with zeroed stats."""
    _shared_sandbox.vendor("hubspot").reset()
    _shared_sandbox.vendor("hubspot").set_faults({})
    return _shared_sandbox


@pytest.fixture
def hs(hs_server: SandboxServer) -> Any:
    """The HubSpotSandbox object: its Python API reads and changes the state directly."""
    return hs_server.vendor("hubspot")


def sdk_client(server: SandboxServer, token: str = TOKEN) -> hubspot.Client:
    return hubspot.Client.create(access_token=token, host=server.base_url("hubspot"))


@pytest.fixture
def client(hs_server: SandboxServer) -> hubspot.Client:
    return sdk_client(hs_server)


@pytest.fixture
def make_sandbox() -> Iterator[Any]:
    """Start a sandbox with particular options: ``make_sandbox(contacts=50, faults={...}, hubspot_tier="free")``.
    Returns (server, SDK client, raw HTTP); everything started is stopped after the test."""
    started: list[SandboxServer] = []

    def make(**kwargs: Any) -> tuple[SandboxServer, hubspot.Client, RawHttp]:
        server = start_sandbox(**kwargs)
        started.append(server)
        return server, sdk_client(server), RawHttp(server.base_url("hubspot"))

    yield make
    for server in started:
        server.stop()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


class RawHttp:
    """Plain urllib3 calls (no retries) for what the SDK hides: status codes, headers, exact bodies."""

    def __init__(self, base: str, token: str | None = TOKEN) -> None:
        self.base = base
        self.token = token
        self.pool = urllib3.PoolManager(retries=False)

    def __call__(self, method: str, path: str, body: Any = None, *, token: str | None = "default",
                 timeout: float = 10.0, raw_body: bytes | None = None) -> Answer:
        headers = {"Content-Type": "application/json"}
        token = self.token if token == "default" else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw_body if raw_body is not None else (orjson.dumps(body) if body is not None else None)
        response = self.pool.request(method, self.base + path, body=data, headers=headers,
                                     timeout=urllib3.Timeout(total=timeout))
        parsed = orjson.loads(response.data) if response.data else None
        return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, parsed)


@pytest.fixture
def http(hs_server: SandboxServer) -> RawHttp:
    return RawHttp(hs_server.base_url("hubspot"))


@pytest.fixture
def all_pages() -> Any:
    return every_page


def every_page(fetch: Any, **kwargs: Any) -> list[Any]:
    """Follow ``paging.next.after`` until the end; returns every result of every page."""
    results: list[Any] = []
    after = None
    for _ in range(10_000):
        page = fetch(after=after, **kwargs) if after else fetch(**kwargs)
        results.extend(page.results)
        if page.paging is None or page.paging.next is None:
            return results
        after = page.paging.next.after
    raise AssertionError("paging never ended")


@dataclass
class Delivery:
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def events(self) -> list[dict[str, Any]]:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A loopback webhook endpoint: records every delivery, fails the first ``fail`` of them with 500."""

    fail: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/hubspot"

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for d in self.deliveries for e in d.events]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.deliveries.append(Delivery(str(request.url), dict(request.headers), body))
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=500)
        return web.Response(status=200)

    def start(self) -> Receiver:
        self._thread.start()

        async def _start() -> int:
            app = web.Application()
            app.router.add_post("/webhooks/hubspot", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self.port = asyncio.run_coroutine_threadsafe(_start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def developer_client(server: SandboxServer, key: str = "sandbox-developer-key") -> hubspot.Client:
    """The SDK as a developer account uses it for the webhooks API (``hapikey``)."""
    return hubspot.Client.create(api_key=key, host=server.base_url("hubspot"))


def subscribe(hs: Any, target_url: str, *event_types: str, properties: dict[str, list[str]] | None = None,
              max_concurrent: int = 10) -> None:
    """Point the sandbox app at ``target_url`` and subscribe it, through the app's own API."""
    app = hs.webhooks
    app.put_settings({"targetUrl": target_url, "throttling": {"maxConcurrentRequests": max_concurrent}})
    for event_type in event_types:
        app.subscribe({"eventType": event_type})
    for prefix, names in (properties or {}).items():
        for name in names:
            app.subscribe({"eventType": f"{prefix}.propertyChange", "propertyName": name})
