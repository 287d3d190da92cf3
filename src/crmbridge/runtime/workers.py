"""Inbox workers: claim due events in batches, hand them to the pipeline, settle them.

A burst is read once it has settled: the worker waits until no event has arrived for a moment (or
until the oldest has waited long enough), then claims everything due at once, so fifty updates to
one contact become one read. When processing fails, the claimed events go back with a back-off
(tenacity's exponential wait with jitter) and, out of attempts, are quarantined.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenacity import RetryCallState, wait_exponential_jitter

from crmbridge.logs import get_logger
from crmbridge.store.inbox import Backlog, Inbox, InboxEvent
from crmbridge.store.store import now_ms

log = get_logger("crmbridge.workers")


@dataclass(frozen=True, slots=True)
class WorkerPolicy:
    batch: int = 5000  # events claimed at once
    settle_ms: int = 300  # a burst is read once no event has arrived for this long …
    max_wait_ms: int = 2000  # … or once its oldest event has waited this long
    # A claim of a worker that died on this host is taken over at once; elsewhere (another container)
    # when this runs out. A batch takes seconds, so two minutes never cuts a live worker short.
    lease_ms: int = 120_000
    max_attempts: int = 5
    poll_seconds: float = 0.2
    retry_max_seconds: float = 600.0

    def __post_init__(self) -> None:
        if self.batch < 1 or self.max_attempts < 1 or self.poll_seconds <= 0:
            raise ValueError("worker batch, attempts and poll interval must be positive")


def ready(backlog: Backlog, now: int, policy: WorkerPolicy) -> bool:
    """Whether to claim now: something is due and the burst has settled (or waited long enough)."""
    if backlog.due == 0 or backlog.oldest_ms is None or backlog.newest_ms is None:
        return False
    # No early start for a full batch: while a burst is still arriving, reading its records now would
    # mean reading them again for the rest of it.
    return now - backlog.newest_ms >= policy.settle_ms or now - backlog.oldest_ms >= policy.max_wait_ms


_WAIT = wait_exponential_jitter(multiplier=2, max=600, jitter=2)


def retry_delay_ms(attempts: int, policy: WorkerPolicy) -> int:
    state = RetryCallState(None, None, (), {})
    state.attempt_number = max(1, attempts)
    return int(min(_WAIT(state), policy.retry_max_seconds) * 1000)


@dataclass
class StepReport:
    claimed: int = 0
    done: int = 0
    retried: int = 0
    quarantined: int = 0
    records: int = 0
    changed: int = 0


class InboxWorker:
    """One worker; several (threads or processes) may drain one inbox."""

    def __init__(self, inbox: Inbox, apply: Callable[[Sequence[InboxEvent]], object],
                 write_back: Callable[[], object], policy: WorkerPolicy | None = None, *,
                 clock: Callable[[], int] = now_ms) -> None:
        self.inbox = inbox
        self._apply = apply  # one source's events → store and score (no write-back)
        self._write_back = write_back
        self.policy = policy or WorkerPolicy()
        self.clock = clock

    def step(self) -> StepReport | None:
        """One round: claim what is ready, process it per source, settle. None when nothing was ready."""
        now = self.clock()
        if not ready(self.inbox.backlog(now), now, self.policy):
            return None
        events = self.inbox.claim(self.policy.batch, self.policy.lease_ms, now)
        report = StepReport(claimed=len(events))
        by_source: dict[str, list[InboxEvent]] = defaultdict(list)
        for e in events:
            by_source[e.source].append(e)
        done: list[InboxEvent] = []
        for group in by_source.values():
            try:
                result = self._apply(group)
            except Exception as exc:  # the CRM is down or a bug: these events wait, the others go on
                self._fail(group, exc, report)
                continue
            report.records += getattr(result, "records", 0)
            report.changed += getattr(result, "changed", 0)
            done.extend(group)
        if done and report.changed:
            try:
                self._write_back()
            except Exception as exc:  # stored and scored already; the next pass writes it back
                log.error("worker.writeback_failed", error=type(exc).__name__, message=str(exc)[:300])
        self.inbox.done([e.id for e in done], self.clock())
        report.done = len(done)
        return report

    def _fail(self, events: Sequence[InboxEvent], exc: Exception, report: StepReport) -> None:
        attempts = max(e.attempts for e in events)
        error = f"{type(exc).__name__}: {exc}"
        retried, quarantined = self.inbox.failed(events, error, retry_in_ms=retry_delay_ms(attempts, self.policy),
                                                 max_attempts=self.policy.max_attempts, now=self.clock())
        report.retried += retried
        report.quarantined += quarantined
        log.warning("worker.events_failed", source=events[0].source, events=len(events), attempts=attempts,
                    retried=retried, quarantined=quarantined, error=type(exc).__name__, message=str(exc)[:300])

    def run(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Until ``stop``: a round whenever something is ready; ``wake`` cuts the idle wait short."""
        wake = wake or threading.Event()
        while not stop.is_set():
            try:
                report = self.step()
            except Exception as exc:  # the store is unreachable: wait and try again
                log.error("worker.step_failed", error=type(exc).__name__, message=str(exc)[:300])
                report = None
            if report is None:
                wake.wait(self.policy.poll_seconds)
                wake.clear()
