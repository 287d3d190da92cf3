"""The scheduler: incremental passes as the safety net behind webhooks, a daily full pass and re-score.

Vendors drop webhooks (one bans a failing endpoint for half an hour, another gives up after a
day), so every source is still passed incrementally every interval. Only the replica holding the
leader lock runs passes; the others check every few seconds and take over when the leader is gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from crmbridge.logs import get_logger
from crmbridge.sync import Interrupted, RunReport

log = get_logger("crmbridge.scheduler")

SyncFn = Callable[[str, bool], RunReport]  # (source, full): a full pass also reconciles deletions
DAY = 86_400.0
LEADER_POLL = 2.0  # how often a standby replica asks for the lead (failover within one interval)


class Leadership(Protocol):
    def held(self) -> bool: ...

    def release(self) -> None: ...


class AlwaysLeader:
    def held(self) -> bool:
        return True

    def release(self) -> None:
        return None


@dataclass
class SchedulerState:
    last_ok: dict[str, float] = field(default_factory=dict)
    last_error: dict[str, str] = field(default_factory=dict)
    runs: dict[tuple[str, str], int] = field(default_factory=dict)
    api_calls: dict[str, int] = field(default_factory=dict)
    consecutive_failures: dict[str, int] = field(default_factory=dict)
    leading: bool = False
    ticks: int = 0  # rounds begun
    rounds: int = 0  # rounds finished: passes, the daily re-score and the write-back after them


class Scheduler:
    """Runs one incremental pass per source every ``interval`` seconds on a background thread, while leading.

    Once a day a source's pass is a full one (it also looks for records deleted in the CRM), and
    everyone is re-scored, because decay moves scores with time alone.
    """

    def __init__(self, sources: list[str], interval: float, sync: SyncFn,
                 daily: Callable[[], object] | None = None, full_every: float = DAY,
                 clock: Callable[[], float] = time.time, after: Callable[[], object] | None = None,
                 leader: Leadership | None = None, first_delay: float = 0.0,
                 periodic: list[tuple[float, Callable[[], object]]] | None = None) -> None:
        if not interval > 0:
            raise ValueError(f"the sync interval must be positive, not {interval}")
        self.sources, self.interval, self._sync = sources, interval, sync
        self._after = after  # write-back and hand-off, after the passes have stored and scored
        self._daily, self.full_every, self._clock = daily, full_every, clock
        self.leader: Leadership = leader or AlwaysLeader()
        self.first_delay = first_delay  # seconds before the first pass (the demo has just backfilled)
        # Jobs the leader runs more often than passes (the SLA tick): (every seconds, job), between passes.
        self.periodic = list(periodic or [])
        # Each job first runs one period after start, not at once: a daemon that has just started has its
        # webhook backlog and first pass to catch up on, and they share the CRM's rate limit with the job.
        self._periodic_due = [time.monotonic() + every for every, _ in self.periodic]
        self._last_full: dict[str, float] = {}
        self._last_daily = 0.0
        self.state = SchedulerState()
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        # The periodic jobs have a thread of their own: a pass (a full one after a restart can take minutes)
        # must not hold up the SLA's reminders and escalations, which are due by the minute.
        self._periodic_thread = threading.Thread(target=self._periodic_loop, name="scheduler-periodic", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if self.periodic:
            self._periodic_thread.start()

    def stop(self, timeout: float = 60) -> None:
        self.stop_event.set()
        for thread in (self._thread, self._periodic_thread):
            if thread.is_alive():
                thread.join(timeout=timeout)
        self.leader.release()

    def tick(self) -> None:
        self.state.ticks += 1
        for source in self.sources:
            if self.stop_event.is_set():
                return
            self._pass(source)
        if self._daily is not None and self._clock() - self._last_daily >= self.full_every:
            try:
                self._daily()
                self._last_daily = self._clock()
            except Exception as exc:
                log.error("scheduler.daily_failed", error=type(exc).__name__, message=str(exc)[:300])
        if self._after is not None and not self.stop_event.is_set():
            try:
                self._after()
            except Exception as exc:
                log.error("scheduler.writeback_failed", error=type(exc).__name__, message=str(exc)[:300])
        self.state.rounds += 1

    def run_periodic(self) -> None:
        for n, (every, job) in enumerate(self.periodic):
            if self.stop_event.is_set() or time.monotonic() < self._periodic_due[n]:
                continue
            try:
                job()
            except Exception as exc:  # a failing job is logged and tried again at its next turn
                log.error("scheduler.job_failed", job=getattr(job, "__name__", "job"), error=type(exc).__name__,
                          message=str(exc)[:300])
            self._periodic_due[n] = time.monotonic() + every

    def _pass(self, source: str) -> None:
        full = self._clock() - self._last_full.get(source, 0.0) >= self.full_every
        try:
            report = self._sync(source, full)
        except Interrupted:
            return
        except Exception as exc:  # one source failing must not stop the others or the daemon
            self.state.last_error[source] = f"{type(exc).__name__}: {exc}"
            self.state.consecutive_failures[source] = self.state.consecutive_failures.get(source, 0) + 1
            self.state.runs[(source, "failed")] = self.state.runs.get((source, "failed"), 0) + 1
            log.error("scheduler.sync_failed", source=source, error=type(exc).__name__, message=str(exc)[:300])
            return
        self.state.last_ok[source] = self._clock()
        if full:
            self._last_full[source] = self._clock()
        self.state.consecutive_failures[source] = 0
        self.state.last_error.pop(source, None)
        self.state.runs[(source, "ok")] = self.state.runs.get((source, "ok"), 0) + 1
        self.state.api_calls[source] = self.state.api_calls.get(source, 0) + report.total_calls

    def _loop(self) -> None:
        next_due = time.monotonic() + self.first_delay
        while not self.stop_event.is_set():
            try:
                self.state.leading = self.leader.held()
            except Exception as exc:
                log.error("scheduler.leader_check_failed", error=type(exc).__name__)
                self.state.leading = False
            if self.state.leading and time.monotonic() >= next_due:
                self.tick()
                next_due = time.monotonic() + self.interval
            wait = LEADER_POLL if not self.state.leading else max(0.05, min(LEADER_POLL, next_due - time.monotonic()))
            self.stop_event.wait(wait)

    def _periodic_loop(self) -> None:
        """The periodic jobs, while this replica leads (the pass loop keeps ``state.leading`` current)."""
        while not self.stop_event.is_set():
            if self.state.leading:
                self.run_periodic()
            soonest = min(self._periodic_due)
            wait = LEADER_POLL if not self.state.leading else max(0.05, min(LEADER_POLL, soonest - time.monotonic()))
            self.stop_event.wait(wait)
