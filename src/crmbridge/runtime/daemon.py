"""``crmbridge run``: the webhook receiver, the inbox workers and the scheduler in one process.

The receiver stores and acknowledges; a worker thread drains the inbox through the pipeline; the
scheduler (on the replica that leads) passes every source incrementally as the safety net, makes a
full pass and re-scores everyone once a day. SIGTERM stops it within seconds: the receiver answers
503 to new deliveries (the CRM retries them), the worker finishes the batch in hand, a pass stops
after the page in hand and its checkpoint.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from crmbridge.connectors import WebhookVerifier
from crmbridge.dashboard import dashboard_routes
from crmbridge.logs import get_logger
from crmbridge.runtime.app import build_app
from crmbridge.runtime.leader import LeaderLock
from crmbridge.runtime.metrics import DaemonMetrics
from crmbridge.runtime.pipeline import Pipeline
from crmbridge.runtime.receiver import InboxWriter, Receiver
from crmbridge.runtime.scheduler import DAY, Scheduler, SchedulerState
from crmbridge.runtime.workers import InboxWorker, WorkerPolicy
from crmbridge.settings import Settings
from crmbridge.sla.board import StoreSnapshot
from crmbridge.sla.build import sla_config, sla_engine, timeline
from crmbridge.sla.engine import SlaEngine
from crmbridge.store import Store
from crmbridge.store.inbox import Inbox

__all__ = ["Daemon", "Scheduler", "SchedulerState", "build_app"]

log = get_logger("crmbridge.daemon")

STOP_GRACE = 7.0  # seconds the worker and a pass get to finish what they hold (Docker waits 10)
INBOX_RETENTION_MS = 3 * 86_400_000
SWITCH_INTERVAL = 0.0005  # seconds; CPython's default is 0.005
WORKER_NICENESS = 10


class Daemon:
    def __init__(self, settings: Settings, store: Store, pipeline: Pipeline,
                 verifiers: Mapping[str, WebhookVerifier], *, policy: WorkerPolicy | None = None,
                 first_pass_delay: float = 0.0, worker_processes: int = 0,
                 sla_clock: Callable[[], int] | None = None) -> None:
        self.settings, self.store, self.pipeline = settings, store, pipeline
        self.sla_clock = sla_clock or timeline(settings).now  # the SLA's time: the wall clock unless sped up
        self.sla_config = sla_config(settings)  # a bad SLA file stops the daemon at start, naming file and line
        self._sla: SlaEngine | None = None
        self.stopping = threading.Event()
        pipeline.should_stop = self.stopping.is_set
        self.wake = threading.Event()
        self.metrics = DaemonMetrics()
        self.inbox = Inbox(store)
        self.receiver = Receiver(verifiers, InboxWriter(self.inbox, on_stored=lambda n: self.wake.set()),
                                 public_url=settings.public_url, max_body=settings.webhook_max_body_bytes,
                                 metrics=self.metrics)
        policy = policy or WorkerPolicy(max_attempts=settings.worker_max_attempts)
        self.worker = InboxWorker(self.inbox, lambda events: pipeline.apply_events(events, write_back=False),
                                  pipeline.write_back, policy)
        self._last_full_writeback = 0.0
        self.scheduler = Scheduler(list(settings.sources), settings.sync_interval_seconds, self._pass,
                                   daily=self._daily, after=self._write_back, leader=LeaderLock(store),
                                   first_delay=first_pass_delay,
                                   periodic=[(settings.sla_tick_seconds, self.sla_tick)])
        self._worker_thread = threading.Thread(target=self.worker.run, args=(self.stopping, self.wake),
                                               name="inbox-worker", daemon=True)
        self.worker_processes = worker_processes
        self._children: list[subprocess.Popen[bytes]] = []

    # -- what the scheduler runs -------------------------------------------------------------------

    def _pass(self, source: str, full: bool) -> Any:
        return self.pipeline.sync(source, reconcile=full)

    def _daily(self) -> None:
        self.pipeline.rescorer().run()
        self.inbox.prune(int(time.time() * 1000) - INBOX_RETENTION_MS)

    def _write_back(self) -> None:
        full = time.time() - self._last_full_writeback >= DAY  # once a day everyone: retries what was rejected
        if self.pipeline.write_back(full=full) is not None and full:
            self._last_full_writeback = time.time()

    @property
    def sla(self) -> SlaEngine:
        if self._sla is None:
            self._sla = sla_engine(self.settings, self.pipeline.writeback(), clock=self.sla_clock,
                                   config=self.sla_config)
        return self._sla

    def sla_tick(self) -> None:
        """Start, stop and climb the SLA clocks (the leader only: the scheduler runs it)."""
        self.sla.tick()

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self.worker_processes:
            self._children = [_spawn_worker() for _ in range(self.worker_processes)]
            threading.Thread(target=self._watch_workers, name="worker-watch", daemon=True).start()
        else:
            self._worker_thread.start()
        self.scheduler.start()

    def _watch_workers(self) -> None:
        """A worker process that died is started again: otherwise webhooks would pile up unprocessed
        while the daemon still answers healthy."""
        while not self.stopping.wait(1.0):
            for n, child in enumerate(self._children):
                if child.poll() is not None and not self.stopping.is_set():
                    log.warning("daemon.worker_restarted", exit_code=child.returncode)
                    self._children[n] = _spawn_worker()

    def stop(self) -> None:
        self.receiver.accepting.clear()
        self.stopping.set()
        self.wake.set()
        started = time.monotonic()
        for child in self._children:
            child.send_signal(signal.SIGTERM)
        if self._worker_thread.is_alive():
            self._worker_thread.join(timeout=STOP_GRACE)
        for child in self._children:
            try:
                child.wait(timeout=max(0.5, STOP_GRACE - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                child.kill()
        self.scheduler.stop(timeout=max(0.5, STOP_GRACE - (time.monotonic() - started)))
        log.info("daemon.stopped", seconds=round(time.monotonic() - started, 2))

    def app(self) -> web.Application:
        def usage() -> dict[str, Any]:
            return {s: c.usage() for s, c in self.pipeline._connectors.items()}

        token = self.settings.dashboard_token.get_secret_value() if self.settings.dashboard_token else None
        board = dashboard_routes(StoreSnapshot(self.store, self.sla_config, self.sla_clock), token)
        app = build_app(self.store, self.scheduler, receiver=self.receiver, inbox=self.inbox, metrics=self.metrics,
                        usage=usage, max_body=self.settings.webhook_max_body_bytes, extra_routes=board)

        async def on_startup(_: web.Application) -> None:
            self.start()

        async def on_shutdown(_: web.Application) -> None:
            import asyncio

            await asyncio.to_thread(self.stop)

        app.on_startup.append(on_startup)
        app.on_shutdown.append(on_shutdown)
        return app

    def serve(self) -> None:
        """Serve until SIGINT/SIGTERM."""
        # The workers' mapping and scoring hold the GIL in long stretches; a shorter switch interval
        # hands it to the receiver's thread sooner, which is what keeps acknowledgements fast.
        sys.setswitchinterval(SWITCH_INTERVAL)
        log.info("daemon.start", host=self.settings.http_host, port=self.settings.http_port,
                 sources=self.settings.sources, webhooks=sorted(self.receiver.verifiers))
        web.run_app(self.app(), host=self.settings.http_host, port=self.settings.http_port, access_log=None,
                    print=None, shutdown_timeout=2.0)


def _prepare_worker() -> None:
    """In the child, before exec: end when the daemon ends, even by kill -9 (Linux); and yield the CPU to
    the receiver, whose acknowledgements the CRMs time, when both want it (the inbox waits meanwhile)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)


def _spawn_worker() -> subprocess.Popen[bytes]:
    """``crmbridge worker`` with this process's settings (the environment)."""
    return subprocess.Popen([sys.executable, "-m", "crmbridge.cli", "worker"], preexec_fn=_prepare_worker)


class DaemonThread:
    """The daemon on a loopback port in a background thread (the demo, benchmarks, end-to-end tests);
    a context manager. ``crmbridge run`` uses ``Daemon.serve`` instead."""

    def __init__(self, daemon: Daemon, host: str = "127.0.0.1", port: int = 0) -> None:
        import asyncio

        self.daemon, self.host, self.port = daemon, host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="daemon-http", daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _call(self, coro: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    def start(self) -> DaemonThread:
        self._thread.start()

        async def _start() -> int:
            self._runner = web.AppRunner(self.daemon.app(), access_log=None, handle_signals=False,
                                         shutdown_timeout=1.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port, backlog=512)
            await site.start()
            return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self.port = self._call(_start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> DaemonThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
