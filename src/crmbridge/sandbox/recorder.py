"""A recording webhook endpoint on loopback: what a sandbox delivered, as it arrived.

For trying a subscription without a daemon, and for tests of deliveries: it keeps the headers and
raw body of every accepted delivery, and can answer the first ``fail`` of them with ``status``.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class RecordingReceiver:
    def __init__(self, path: str = "/hook") -> None:
        self.path = path
        self.deliveries: list[tuple[dict[str, str], bytes]] = []  # accepted ones: (headers, raw body)
        self.fail = 0
        self.status = 500
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="recording-receiver", daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=self.status)
        self.deliveries.append((dict(request.headers), body))
        return web.json_response({"status": "ok"})

    def start(self) -> RecordingReceiver:
        self._thread.start()

        async def _start() -> int:
            app = web.Application()
            app.router.add_post(self.path, self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self.port = asyncio.run_coroutine_threadsafe(_start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> RecordingReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
