"""Fixtures for the HubSpot sandbox tests: a running sandbox, the real SDK pointed at it, raw HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hubspot
import orjson
import pytest
import urllib3

from crmbridge.connectors import SandboxOptions
from crmbridge.sandbox import SandboxServer

ANCHOR = "2026-03-02T00:00:00Z"
TOKEN = "pat-na1-sandbox-test"


def start_sandbox(contacts: int = 300, seed: int = 11, faults: dict[str, float] | None = None,
                  time_scale: float = 1.0, **extra: Any) -> SandboxServer:
    options = SandboxOptions(seed=seed, contacts=contacts, faults=faults or {}, time_scale=time_scale,
                             extra={"anchor": ANCHOR, **extra})
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
