"""Host every vendor sandbox on one aiohttp server: ``/<source>/...`` per vendor, ``/_sandbox/...`` control.

``SandboxServer`` runs it in a background thread for tests, benchmarks and the demo;
``serve`` runs it in the foreground for ``crmbridge sandbox``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol

from aiohttp import web

from crmbridge.connectors import ENTRY_POINT_GROUP, ConnectorPlugin, SandboxOptions, plugin, plugins
from crmbridge.errors import ConfigError


class VendorSandbox(Protocol):
    """What a connector's ``plugin.sandbox(options)`` returns."""

    name: str
    app: web.Application

    def stats(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...

    def set_faults(self, rates: Mapping[str, float]) -> None: ...

    # Optional: ``simulate(**body) -> dict`` (the activity simulator behind ``POST /_sandbox/simulate``),
    # ``banner() -> list[str]`` (lines printed when ``crmbridge sandbox`` starts: app ids, secrets),
    # ``close()`` (stops webhook delivery when the host stops), ``webhook_options() -> dict`` (what the
    # plugin's ``webhooks(**options)`` needs to verify this sandbox's deliveries, e.g. its app secret).


class Holds:
    """Answers held back after the request was carried out: what a client sees when the vendor is slow
    to answer a write it has already made (and what a client killed meanwhile leaves behind)."""

    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []

    def add(self, method: str, path: str, seconds: float, times: int) -> None:
        self.rules.append({"method": method.upper(), "path": path, "seconds": seconds, "left": times})

    def take(self, method: str, path: str) -> float:
        for rule in self.rules:
            if rule["left"] > 0 and rule["method"] == method and path == rule["path"]:
                rule["left"] -= 1
                return float(rule["seconds"])
        return 0.0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if self.rules and not request.path.startswith("/_sandbox"):
            seconds = self.take(request.method, request.path)
            if seconds:
                await asyncio.sleep(seconds)
        return response


def _control_routes(vendors: Mapping[str, VendorSandbox], holds: Holds) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.post("/_sandbox/hold")
    async def hold(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            holds.add(str(body["method"]), str(body["path"]), float(body.get("seconds", 30)),
                      int(body.get("times", 1)))
        except (KeyError, TypeError, ValueError):
            return web.json_response({"error": "expected {method, path, seconds, times}"}, status=400)
        return web.json_response({"ok": True})

    @routes.get("/_sandbox/stats")
    async def stats(_: web.Request) -> web.Response:
        return web.json_response({name: v.stats() for name, v in vendors.items()})

    @routes.post("/_sandbox/reset")
    async def reset(request: web.Request) -> web.Response:
        only = request.query.get("source")
        for name, vendor in vendors.items():
            if only in (None, name):
                vendor.reset()
        return web.json_response({"reset": [n for n in vendors if only in (None, n)]})

    @routes.post("/_sandbox/faults")
    async def faults(request: web.Request) -> web.Response:
        body = await request.json()
        for name, vendor in vendors.items():
            rates = body.get(name, body) if isinstance(body, dict) else {}
            if all(isinstance(v, int | float) for v in rates.values()):
                vendor.set_faults({k: float(v) for k, v in rates.items()})
        return web.json_response({"ok": True})

    @routes.post("/_sandbox/simulate")
    async def simulate(request: web.Request) -> web.Response:
        """Visitors, buyers and sellers acting in the CRMs: ``{"sales_ready": n, "activities": n, "seed": s}``;
        ``?source=`` limits it to one vendor. Each vendor answers what it did."""
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return web.json_response({"error": "expected a JSON object"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "expected a JSON object"}, status=400)
        only = request.query.get("source")
        done: dict[str, Any] = {}
        for name, vendor in vendors.items():
            if only in (None, name) and hasattr(vendor, "simulate"):
                try:
                    done[name] = await asyncio.to_thread(vendor.simulate, **body)
                except (TypeError, ValueError) as exc:
                    return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(done)

    @routes.get("/_sandbox/health")
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "sources": sorted(vendors)})

    return routes


def _plugin(name: str) -> ConnectorPlugin:
    """Load only the named connector, so one broken or half-installed plugin cannot take the others down."""
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        return plugin(name)  # raises the ConfigError that lists what is installed
    try:
        return next(iter(found)).load()
    except ImportError as exc:
        raise ConfigError(f"connector {name!r} is registered but cannot be imported: {exc}") from exc


def build_app(options: SandboxOptions, sources: Sequence[str] | None = None
              ) -> tuple[web.Application, dict[str, VendorSandbox]]:
    names = list(sources) if sources else sorted(plugins())
    vendors: dict[str, VendorSandbox] = {name: _plugin(name).sandbox(options) for name in names}
    holds = Holds()
    root = web.Application(client_max_size=4 * 1024 * 1024, middlewares=[holds.middleware])
    root.add_routes(_control_routes(vendors, holds))
    for name, vendor in vendors.items():
        root.add_subapp(f"/{name}", vendor.app)
    return root, vendors


class SandboxServer:
    """The sandbox on a free loopback port, in a background thread; a context manager."""

    def __init__(self, options: SandboxOptions | None = None, sources: Sequence[str] | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.options = options or SandboxOptions()
        self.app, self.vendors = build_app(self.options, sources)
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox", daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, source: str) -> str:
        return f"{self.url}/{source}"

    def vendor(self, source: str) -> Any:
        return self.vendors[source]

    def _call(self, fn: Callable[[], Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(timeout=60)

    def start(self) -> SandboxServer:
        self._thread.start()

        async def _start() -> int:
            # Stopping must not wait for a stalled ("timeout" fault) request to finish its stall.
            self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port, backlog=512)
            await site.start()
            return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self.port = self._call(_start)
        return self

    def stop(self) -> None:
        for vendor in self.vendors.values():
            close = getattr(vendor, "close", None)
            if close is not None:
                close()
        if self._runner is not None:
            self._call(self._runner.cleanup)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(options: SandboxOptions, host: str, port: int, sources: Sequence[str] | None = None,
          announce: Callable[[str], None] = print) -> None:
    """Serve in the foreground until interrupted."""
    app, vendors = build_app(options, sources)
    base = f"http://{host}:{port}"
    for name, vendor in vendors.items():
        announce(f"{name}: {base}/{name}")
        for line in getattr(vendor, "banner", list)():
            announce(f"  {line}")
    announce(f"control: {base}/_sandbox/stats, {base}/_sandbox/reset, {base}/_sandbox/simulate")
    web.run_app(app, host=host, port=port, access_log=None, print=None, backlog=512, shutdown_timeout=1.0)
