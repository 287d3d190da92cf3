"""A full re-score shared among forked processes: chunks of people first, then batches of accounts.

Scoring is CPU-bound Python, so one process re-scores at most one core's worth of people; with more
cores, more processes finish sooner. Each worker opens its own connections (the parent's are never
used across the fork), reads and scores the chunks it is handed, and sends back what changed; the
parent hands out canonical id ranges, adds the reports up and writes every change itself. One writer:
SQLite takes one at a time, and a worker waiting for the lock sleeps in steps far longer than the write
it waits for. Accounts are rolled up once every person's score is written, as they are computed from
the stored scores. The results are those of a re-score in one process: the same chunks, scored and
written alike.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmbridge.store import Store
from crmbridge.store.scores import CHUNK_PEOPLE as _CHUNK_PEOPLE
from crmbridge.store.scores import chunk_bounds

if TYPE_CHECKING:
    from crmbridge.rescore import Rescorer, RescoreReport

ACCOUNT_BATCH = 500  # accounts per task
CHUNK_PEOPLE = _CHUNK_PEOPLE  # canonical ids per task (a test makes them small, to share out many)

# Set in the parent just before the workers are forked, read by them: what to score and as of when.
_PARENT: Rescorer | None = None
_AS_OF: datetime | None = None
_MINE: Rescorer | None = None  # a worker's own rescorer, on its own connections


def _worker() -> tuple[Rescorer, datetime]:
    global _MINE
    assert _PARENT is not None and _AS_OF is not None, "only called in a forked worker"
    if _MINE is None:
        from crmbridge.rescore import Rescorer

        store = Store(_PARENT.store.url, auto_migrate=False)
        _MINE = Rescorer(store, _PARENT.model, _PARENT.policy, clock=_PARENT.clock)
        gc.disable()  # and a collection after each task, as a re-score in one process does
    return _MINE, _AS_OF


def _people(bounds: tuple[int, int]) -> tuple[RescoreReport, set[int], Any, Any]:
    from crmbridge.rescore import RescoreReport, between_chunks

    rescorer, as_of = _worker()
    report, companies = RescoreReport(), set[int]()
    rows, inputs = rescorer.score_chunk(as_of, report, companies, after=bounds[0], last=bounds[1])
    between_chunks()
    return report, companies, rows, inputs


def _accounts(chunk: list[int]) -> tuple[RescoreReport, Any]:
    from crmbridge.rescore import RescoreReport, between_chunks

    rescorer, as_of = _worker()
    report = RescoreReport()
    rows = rescorer.roll_up_batch(chunk, as_of, report)
    between_chunks()
    return report, rows


def _add(report: RescoreReport, part: RescoreReport) -> None:
    report.scored += part.scored
    report.from_digests += part.from_digests
    report.written += part.written
    report.stages.update(part.stages)
    report.accounts += part.accounts
    report.accounts_written += part.accounts_written
    report.surges.extend(part.surges)


def run_forked(rescorer: Rescorer, workers: int, on_batch: Callable[[int], None] | None = None) -> RescoreReport:
    """Re-score everyone with ``workers`` forked processes; the report is the one-process report."""
    global _PARENT, _AS_OF
    from crmbridge.rescore import RescoreReport

    started = time.monotonic()
    as_of = rescorer.clock()
    with rescorer.store.engine.connect() as conn:
        bounds = chunk_bounds(conn, CHUNK_PEOPLE)
    report, companies = RescoreReport(), set[int]()
    scores = rescorer.store.scores
    _PARENT, _AS_OF = rescorer, as_of
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for part, theirs, rows, inputs in pool.imap_unordered(_people, bounds):
                _add(report, part)
                report.written += scores.write_scores(rows, inputs)
                companies |= theirs
                if on_batch:
                    on_batch(part.scored)
            companies.update(scores.scored_companies())
            ids = sorted(companies)
            at_ms = int(as_of.timestamp() * 1000)
            for part, rows in pool.imap(_accounts, [ids[i:i + ACCOUNT_BATCH]
                                                    for i in range(0, len(ids), ACCOUNT_BATCH)]):
                _add(report, part)
                report.accounts_written += scores.save_account_scores(rows, at_ms=at_ms) if rows else 0
            pool.close()
            pool.join()
    finally:
        _PARENT = _AS_OF = None
    report.seconds = time.monotonic() - started
    return report
