"""The webhook receiver: ``POST /webhooks/{source}`` verified by the source's plugin, stored, then 200.

Nothing is processed on the request path. A delivery is acknowledged only once its events are
committed to the inbox; concurrent deliveries are committed together (one transaction for all the
requests that arrived while the previous commit ran), which keeps acknowledgements fast on SQLite.
Bad input never reaches the inbox and never yields a 500. The receiver knows no vendor: each
plugin's ``WebhookVerifier`` checks and parses its own deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from crmbridge.connectors import WebhookEvent, WebhookRejected, WebhookRequest, WebhookVerifier
from crmbridge.logs import get_logger
from crmbridge.store.inbox import Inbox
from crmbridge.store.store import now_ms

log = get_logger("crmbridge.receiver")

DEFAULT_MAX_BODY = 1024 * 1024
JSON_TYPES = ("application/json",)


@dataclass
class _Pending:
    source: str
    events: Sequence[WebhookEvent]
    done: asyncio.Future[int]


class InboxWriter:
    """Group commit: requests wait on a future; one thread writes every waiting delivery at once."""

    def __init__(self, inbox: Inbox, on_stored: Callable[[int], None] | None = None, max_group: int = 500) -> None:
        self.inbox = inbox
        self.on_stored = on_stored or (lambda n: None)
        self.max_group = max_group
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    async def add(self, source: str, events: Sequence[WebhookEvent]) -> int:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._flush_forever())
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(source, events, future))
        return await future

    async def _flush_forever(self) -> None:
        assert self._queue is not None
        while True:
            group = [await self._queue.get()]
            while len(group) < self.max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                new = await asyncio.to_thread(self.inbox.add_many, [(p.source, p.events) for p in group])
            except Exception as exc:  # the store is down: every waiting request is answered 503
                for p in group:
                    if not p.done.done():
                        p.done.set_exception(exc)
                continue
            self.on_stored(new)
            for p in group:
                if not p.done.done():
                    p.done.set_result(len(p.events))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class WebhookMetrics:
    """What the receiver reports; the daemon binds it to Prometheus counters."""

    def request(self, source: str, status: int) -> None: ...

    def events(self, source: str, n: int) -> None: ...


class Receiver:
    """The aiohttp routes for every source that has a verifier."""

    def __init__(self, verifiers: Mapping[str, WebhookVerifier], writer: InboxWriter, *,
                 public_url: str | None = None, max_body: int = DEFAULT_MAX_BODY,
                 metrics: WebhookMetrics | None = None, clock: Callable[[], int] = now_ms) -> None:
        self.verifiers = dict(verifiers)
        self.writer = writer
        self.public_url = public_url.rstrip("/") if public_url else None
        self.max_body = max_body
        self.metrics = metrics or WebhookMetrics()
        self.clock = clock
        self.accepting = threading.Event()
        self.accepting.set()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/webhooks/{source}", self.handle)]

    def _uri(self, request: web.Request) -> str:
        """The address the CRM called, which is what signing vendors sign: behind a proxy the socket's own
        address differs, so the configured public URL wins."""
        if self.public_url:
            return self.public_url + request.raw_path
        return str(request.url)

    async def handle(self, request: web.Request) -> web.Response:
        source = request.match_info["source"]
        status, body = await self._handle(source, request)
        self.metrics.request(source if source in self.verifiers else "unknown", status)
        return web.json_response(body, status=status)

    async def _handle(self, source: str, request: web.Request) -> tuple[int, dict[str, object]]:
        verifier = self.verifiers.get(source)
        if verifier is None:
            return 404, {"status": "error", "message": f"no webhook receiver for {source!r}"}
        if not self.accepting.is_set():
            return 503, {"status": "error", "message": "shutting down; deliver again later"}
        if request.content_type not in JSON_TYPES:
            return 415, {"status": "error", "message": "expected application/json"}
        if request.content_length is not None and request.content_length > self.max_body:
            return 413, {"status": "error", "message": f"body larger than {self.max_body} bytes"}
        raw = await request.content.read(self.max_body + 1)
        if len(raw) > self.max_body:
            return 413, {"status": "error", "message": f"body larger than {self.max_body} bytes"}
        delivery = WebhookRequest(request.method, self._uri(request), request.headers, raw, self.clock())
        try:
            events = verifier.parse(delivery)
        except WebhookRejected as exc:
            log.info("webhook.rejected", source=source, status=exc.status, reason=exc.reason)
            return exc.status, {"status": "error", "message": exc.reason}
        except Exception as exc:  # a parser bug must not turn bad input into a 500 (or into the inbox)
            log.error("webhook.unparseable", source=source, error=type(exc).__name__)
            return 400, {"status": "error", "message": "unreadable delivery"}
        if len(events) > verifier.max_events:
            return 400, {"status": "error", "message": f"more than {verifier.max_events} events in one delivery"}
        try:
            await self.writer.add(source, events)
        except Exception as exc:
            log.error("webhook.store_failed", source=source, error=type(exc).__name__)
            return 503, {"status": "error", "message": "could not store the delivery; deliver again later"}
        self.metrics.events(source, len(events))
        return 200, {"status": "ok", "accepted": len(events)}
