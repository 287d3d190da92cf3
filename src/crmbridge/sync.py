"""Backfill and incremental sync: connector pages → mapping → store, with checkpoints after every page.

Streams are fetched concurrently (API-bound) by worker threads into a bounded queue; one thread maps
and stores, so memory stays flat in the record count and the database has a single writer. A page
and its checkpoint are committed together, so a killed run resumes at its last committed page.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from crmbridge.connectors import ApiUsage, Connector, Page, StreamSpec, StreamState
from crmbridge.errors import ConfigError
from crmbridge.logs import get_logger
from crmbridge.mapping import SourceMapping, labels_used
from crmbridge.model import EntityType
from crmbridge.store import PageResult, Store, Watermark
from crmbridge.store.crm_facts import FieldCatalog
from crmbridge.store.store import now_ms

log = get_logger("crmbridge.sync")


CATALOG_TTL_MS = 24 * 3600 * 1000
# Reconciling never archives more than this share of a stream at once (nor more than the floor).
RECONCILE_MAX_SHARE = 0.5
RECONCILE_FLOOR = 10
HEARTBEAT_SECONDS = 10.0  # how often a long run tells the store it is alive


@runtime_checkable
class KeepsFieldCatalogs(Protocol):
    """A connector that needs more of a custom-field catalog than label -> key to read values (option
    labels, field types) holds it in memory for its process and lets the core keep it in the store.

    The core hands it the stored catalog while that is fresh (``restore_field_catalog``), and stores
    what it holds (``held_field_catalog``) when that was read later than the stored one. The connector
    never sees the store, and the cursors never carry a catalog.
    """

    def held_field_catalog(self, stream: str) -> FieldCatalog | None:
        """The catalog the connector holds for ``stream`` (labels, detail, when it was read), if any."""
        ...

    def restore_field_catalog(self, stream: str, catalog: FieldCatalog) -> None:
        """A catalog the store kept; the connector ignores it when it holds one read later."""
        ...


def _fetch_catalog(store: Store, connector: Connector, stream: str) -> FieldCatalog:
    """Read a stream's catalog from the CRM and keep it (with the connector's detail, if it has any)."""
    labels = dict(connector.field_catalog(stream))
    held = connector.held_field_catalog(stream) if isinstance(connector, KeepsFieldCatalogs) else None
    catalog = held if held is not None and dict(held.fields) == labels else FieldCatalog(labels, now_ms())
    store.catalogs.put(connector.source, stream, catalog)
    return catalog


def restore_catalogs(store: Store, connector: Connector, streams: Iterable[str]) -> dict[str, int]:
    """Hand the connector the fresh catalogs the store keeps, so it reads none of them from the CRM.

    A connector that already holds a fresh one (a daemon's, between passes) costs no store read. The
    answer: per stream, when the catalog known to be in the store was read (for ``keep_catalogs``).
    """
    known: dict[str, int] = {}
    if not isinstance(connector, KeepsFieldCatalogs):
        return known
    now = now_ms()
    for stream in streams:
        held = connector.held_field_catalog(stream)
        if held is not None and held.fresh(now, CATALOG_TTL_MS):
            continue
        kept = store.catalogs.get(connector.source, stream)
        if kept is not None:
            known[stream] = kept.fetched_ms
            if kept.detail and kept.fresh(now, CATALOG_TTL_MS):
                connector.restore_field_catalog(stream, kept)
    return known


def keep_catalogs(store: Store, connector: Connector, streams: Iterable[str], known: dict[str, int]) -> None:
    """Store the catalogs the connector read since the store's copy (a field or option added).

    Only a catalog read later than ``known`` (updated here) is looked up in the store, and it replaces
    the stored one only if that is older still (another process may have stored a newer one).
    """
    if not isinstance(connector, KeepsFieldCatalogs):
        return
    for stream in streams:
        held = connector.held_field_catalog(stream)
        if held is None or held.fetched_ms <= known.get(stream, -1):
            continue
        kept = store.catalogs.get(connector.source, stream)
        if kept is None or held.fetched_ms > kept.fetched_ms:
            store.catalogs.put(connector.source, stream, held)
        known[stream] = max(held.fetched_ms, kept.fetched_ms if kept is not None else -1)


def load_mapping(store: Store, connector: Connector, path: Any) -> SourceMapping:
    """Load a source's mapping, resolving custom-field labels against the CRM's field catalogs.

    Catalogs are kept in the store for a day, so an incremental pass does not re-read them; a label
    the cached catalog lacks (a field created since) triggers one refresh before it is an error.
    """
    wanted = labels_used(path)
    if not wanted:
        return SourceMapping.load(path)
    source = connector.source

    def catalogs(refresh: bool) -> dict[str, Mapping[str, str]]:
        out: dict[str, Mapping[str, str]] = {}
        for stream in wanted:
            cached = None if refresh else store.catalogs.get(source, stream)
            if cached is None or not cached.fresh(now_ms(), CATALOG_TTL_MS):
                cached = _fetch_catalog(store, connector, stream)
            out[stream] = cached.fields
        return out

    try:
        return SourceMapping.load(path, catalogs=catalogs(refresh=False))
    except ConfigError:
        return SourceMapping.load(path, catalogs=catalogs(refresh=True))


class ProgressSink(Protocol):
    def stream_started(self, stream: str) -> None: ...

    def advanced(self, stream: str, records: int) -> None: ...

    def stream_finished(self, stream: str) -> None: ...


@dataclass
class StreamReport:
    stream: str
    entity: str
    pages: int = 0
    records: int = 0
    quarantined: int = 0
    stored: PageResult = field(default_factory=PageResult)
    live_total: int | None = None
    live_count: int | None = None
    reconciled: bool = False
    reconcile_refused: int = 0

    @property
    def complete(self) -> bool:
        """True unless the CRM's live count and ours still disagree after reconciling."""
        return self.live_total is None or self.live_total == self.live_count

    def as_dict(self) -> dict[str, Any]:
        return {"pages": self.pages, "records": self.records, "quarantined": self.quarantined,
                **self.stored.as_dict(), "live_total": self.live_total, "live_count": self.live_count,
                "reconciled": self.reconciled, "reconcile_refused": self.reconcile_refused,
                "complete": self.complete}


@dataclass
class RunReport:
    source: str
    command: str
    streams: dict[str, StreamReport] = field(default_factory=dict)
    api_calls: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    scoring: dict[str, Any] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        return sum(self.api_calls.values())

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "command": self.command, "dry_run": self.dry_run,
                "seconds": round(self.seconds, 3), "api_calls": self.total_calls, "retries": self.retries,
                "rate_limited": self.rate_limited, "calls_by_endpoint": self.api_calls,
                "streams": {name: s.as_dict() for name, s in self.streams.items()}, "scoring": self.scoring}


def _delta(after: ApiUsage, before: ApiUsage) -> dict[str, int]:
    return {k: v - before.calls.get(k, 0) for k, v in after.calls.items() if v - before.calls.get(k, 0)}


_END = object()


class _Fetcher:
    """Worker threads that drain page iterators into one bounded queue."""

    def __init__(self, workers: int, depth: int, should_stop: Callable[[], bool] = lambda: False) -> None:
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self._workers = workers
        self._should_stop = should_stop

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _drain(self, jobs: queue.Queue[tuple[str, Iterator[Page]]]) -> None:
        while not self.stop.is_set():
            try:
                stream, pages = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                for page in pages:
                    if not self._put((stream, page)):
                        return
                self._put((stream, _END))
            except BaseException as exc:  # handed to the consumer, which stops everything
                self._put((stream, exc))
                return

    def run(self, jobs: Sequence[tuple[str, Iterator[Page]]], budget: int) -> Iterator[list[tuple[str, Any]]]:
        """Batches of (stream, page-or-end): whatever is ready, up to ``budget`` records."""
        pending: queue.Queue[tuple[str, Iterator[Page]]] = queue.Queue()
        for job in jobs:
            pending.put(job)
        threads = [threading.Thread(target=self._drain, args=(pending,), daemon=True, name=f"fetch-{i}")
                   for i in range(min(self._workers, len(jobs)))]
        for t in threads:
            t.start()
        remaining = len(jobs)
        try:
            while remaining:
                batch = [self._next()]
                size = _size(batch[0][1])
                while size < budget:
                    try:
                        batch.append(self.queue.get_nowait())
                    except queue.Empty:
                        break
                    size += _size(batch[-1][1])
                for _, item in batch:
                    if item is _END:
                        remaining -= 1
                    elif isinstance(item, BaseException):
                        raise item
                yield batch
        finally:
            self.stop.set()
            # A stop must not wait for a fetch stuck in a slow call; its thread ends on its own.
            wait = 0.5 if self._should_stop() else 30
            for t in threads:
                t.join(timeout=wait)

    def _next(self) -> tuple[str, Any]:
        while True:
            try:
                return self.queue.get(timeout=0.2)
            except queue.Empty:
                if self._should_stop():
                    raise Interrupted("stopped while waiting for the CRM") from None


def _size(item: Any) -> int:
    return len(item.records) + len(item.archived_ids) if isinstance(item, Page) else 0


def merge_pages(pages: Sequence[Page]) -> Page:
    """Consecutive pages of one stream as one unit of work; the last checkpoint stands for them all."""
    if len(pages) == 1:
        return pages[0]
    merged = Page(pages[0].stream)
    for page in pages:
        merged.records.extend(page.records)
        merged.archived_ids.extend(page.archived_ids)
        merged.merged.update(page.merged)
        if page.live_ids is not None:
            merged.live_ids = [*(merged.live_ids or []), *page.live_ids]
        if page.checkpoint is not None:
            merged.checkpoint = page.checkpoint
        if page.live_total is not None:
            merged.live_total = page.live_total
    return merged


class Interrupted(Exception):
    """A stop was asked for (SIGTERM): the work in hand was committed with its checkpoint, the rest waits."""


class Syncer:
    """Runs backfills and incremental passes of one source into the store."""

    def __init__(self, store: Store, connector: Connector, mapping: SourceMapping, *, workers: int = 4,
                 progress: ProgressSink | None = None, dry_run: bool = False, batch_records: int = 2000,
                 should_stop: Callable[[], bool] | None = None) -> None:
        if mapping.source != connector.source:
            raise ConfigError(f"mapping is for {mapping.source!r}, connector is {connector.source!r}",
                              file=mapping.file, key="source")
        self.store, self.connector, self.mapping = store, connector, mapping
        self.source = connector.source
        self.workers = workers
        self.progress = progress
        self.dry_run = dry_run
        # Pages that are ready together are stored in one transaction, up to this many records.
        self.batch_records = batch_records
        self._always_reconcile = False
        self._command = ""
        self._had_quarantine = False
        # Asked between units of work; when it says stop, the run ends as ``interrupted`` after
        # committing what it holds, so the next run resumes from the last checkpoint.
        self.should_stop = should_stop or (lambda: False)
        self.specs: dict[str, StreamSpec] = {s.name: s for s in connector.streams()}
        connector.request_properties({name: m.consumed for name, m in mapping.streams.items()})
        self._catalogs_kept = restore_catalogs(store, connector, self.specs)

    def _streams(self, names: Sequence[str] | None) -> list[str]:
        mapped = [n for n in self.specs if n in self.mapping.streams]
        if not names:
            return mapped
        unknown = [n for n in names if n not in self.specs]
        if unknown:
            raise ConfigError(f"{self.source} has no stream {unknown[0]!r} (streams: {', '.join(self.specs)})")
        unmapped = [n for n in names if n not in self.mapping.streams]
        if unmapped:
            raise ConfigError(f"no mapping for stream {unmapped[0]!r}", file=self.mapping.file,
                              key=f"streams.{unmapped[0]}")
        return list(names)

    # -- one page ------------------------------------------------------------------------------

    def _store_page(self, report: StreamReport, page: Page, cursors: list[tuple[str, Mapping[str, Any]]],
                    report_changes: bool = True) -> None:
        records, failures = self.mapping.map_all(page.records)
        report.pages += 1
        report.records += len(page.records)
        if self.dry_run:
            report.stored.new += len(records)
            report.quarantined += len(failures)
            return
        for raw, error in failures:
            log.warning("sync.record_quarantined", source=self.source, stream=raw.stream, id=raw.id,
                        field=error.field, reason=error.reason)
            self.store.quarantine.add(self.source, raw.stream, raw.id, str(error), dict(raw.properties))
        report.quarantined += len(failures)
        entity = EntityType(report.entity)
        result = self.store.records.commit_page(self.source, page.stream, entity, records,
                                                archived_ids=page.archived_ids, merged=page.merged, cursors=cursors)
        if report_changes is False:
            result.changed_ids = []  # a backfill rescores everyone: keeping every id would grow with N
        report.stored.add(result)
        if self._had_quarantine and records:
            self.store.quarantine.release(self.source, page.stream, [r.source_id for r in records])

    # -- backfill ------------------------------------------------------------------------------

    def backfill(self, streams: Sequence[str] | None = None, *, restart: bool = False) -> RunReport:
        names = self._streams(streams)
        if restart and not self.dry_run:
            self.store.cursors.clear(self.source, "backfill")
        report = RunReport(self.source, "backfill", dry_run=self.dry_run)
        jobs, starts = [], {}
        for name in names:
            state = None if self.dry_run else self.store.cursors.get(self.source, name, "backfill")
            if state and state.get("done"):
                continue  # finished before the interruption this run resumes from
            starts[name] = (state or {}).get("start") or dict(self.connector.start_cursor(name))
            report.streams[name] = StreamReport(name, self.specs[name].entity.value)
            jobs.append((name, self.connector.backfill(name, state)))
            if state:
                log.info("backfill.resume", source=self.source, stream=name)

        def cursors(name: str, page: Page) -> list[tuple[str, Mapping[str, Any]]]:
            if page.checkpoint is None:
                return []
            out: list[tuple[str, Mapping[str, Any]]] = [("backfill", {**page.checkpoint, "start": starts[name]})]
            if page.checkpoint.get("done"):
                # The incremental cursor starts where this backfill started, plus what the stream adds.
                first = Watermark.from_checkpoint({**starts[name], **page.checkpoint.get("next", {})})
                out.append(("incremental", first.as_dict()))
            return out

        self._run(report, jobs, cursors)
        if not self.dry_run:
            self.store.cursors.clear(self.source, "backfill")
        return report

    # -- incremental ---------------------------------------------------------------------------

    def sync(self, streams: Sequence[str] | None = None, *, reconcile: bool = False, record: bool = True) -> RunReport:
        """One incremental pass; ``reconcile`` also checks every stream for records deleted in the CRM.

        Without it, a stream is reconciled only when the CRM's live count and ours disagree.
        """
        self._always_reconcile = reconcile
        names = self._streams(streams)
        report = RunReport(self.source, "sync", dry_run=self.dry_run)
        jobs = []
        for name in names:
            mark = self.store.cursors.watermark(self.source, name, "incremental")
            if mark is None:
                raise ConfigError(f"{self.source}/{name} has never been backfilled: run "
                                  f"`crmbridge backfill --source {self.source}` first")
            entity = self.specs[name].entity
            state = StreamState(mark.as_checkpoint(), self.store.records.live_count(self.source, name, entity))
            report.streams[name] = StreamReport(name, entity.value)
            jobs.append((name, self.connector.changes(name, state)))

        def cursors(name: str, page: Page) -> list[tuple[str, Mapping[str, Any]]]:
            if page.checkpoint is None:
                return []
            return [("incremental", Watermark.from_checkpoint(page.checkpoint).as_dict())]

        self._run(report, jobs, cursors, reconcile=True, record=record)
        return report

    # -- records read by id (webhooks) ------------------------------------------------------------

    def apply(self, pages: Iterable[Page], command: str = "webhook") -> RunReport:
        """Store pages the caller fetched (records read back by id); no cursor moves."""
        report = RunReport(self.source, command, dry_run=self.dry_run)
        self._command = command
        before = self.connector.usage()
        started = time.monotonic()
        self._had_quarantine = not self.dry_run and bool(self.store.quarantine.list(self.source))
        try:
            for page in pages:
                if page.stream not in report.streams:
                    report.streams[page.stream] = StreamReport(page.stream, self.specs[page.stream].entity.value)
                self._store_page(report.streams[page.stream], page, [])
            self._keep_catalogs()
        finally:
            after = self.connector.usage()
            report.api_calls = _delta(after, before)
            report.retries = after.retries - before.retries
            report.rate_limited = after.rate_limited - before.rate_limited
            report.seconds = time.monotonic() - started
        return report

    def _keep_catalogs(self) -> None:
        """Catalogs the connector read during the run (a field or option added) outlive its process."""
        if not self.dry_run:
            keep_catalogs(self.store, self.connector, self.specs, self._catalogs_kept)

    # -- shared loop ---------------------------------------------------------------------------

    def _run(self, report: RunReport, jobs: list[tuple[str, Iterator[Page]]], cursors: Any,
             reconcile: bool = False, record: bool = True) -> None:
        started = time.monotonic()
        self._command = report.command
        before = self.connector.usage()
        self._had_quarantine = not self.dry_run and bool(self.store.quarantine.list(self.source))
        run_id = None if self.dry_run or not record else self.store.runs.start(report.command, self.source)
        status, error = "failed", None
        try:
            for name, _ in jobs:
                if self.progress:
                    self.progress.stream_started(name)
            fetcher = _Fetcher(self.workers, depth=4 * self.workers, should_stop=self.should_stop)
            beat = time.monotonic()
            for batch in fetcher.run(jobs, budget=self.batch_records):
                groups: dict[str, list[Page]] = {}
                for name, item in batch:
                    if item is _END:
                        self._commit(report.streams[name], groups.pop(name, []), cursors)
                        self._finish_stream(report.streams[name], reconcile)
                    else:
                        groups.setdefault(name, []).append(item)
                for name, pages in groups.items():
                    self._commit(report.streams[name], pages, cursors)
                if run_id is not None and time.monotonic() - beat > HEARTBEAT_SECONDS:
                    self.store.runs.heartbeat(run_id)
                    beat = time.monotonic()
                if self.should_stop():
                    raise Interrupted(f"{report.command} {self.source} stopped; it resumes from its checkpoint")
            self._keep_catalogs()
            status = "ok"
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            status = "interrupted" if isinstance(exc, KeyboardInterrupt | Interrupted) else "failed"
            raise
        finally:
            after = self.connector.usage()
            report.api_calls = _delta(after, before)
            report.retries = after.retries - before.retries
            report.rate_limited = after.rate_limited - before.rate_limited
            report.seconds = time.monotonic() - started
            if run_id is not None:
                self.store.runs.finish(run_id, status, report.as_dict(), error)

    def _commit(self, stream: StreamReport, pages: list[Page], cursors: Any) -> None:
        if not pages:
            return
        page = merge_pages(pages)
        self._store_page(stream, page, cursors(stream.stream, page), report_changes=self._command != "backfill")
        stream.pages += len(pages) - 1  # _store_page counted the merged page once
        if page.live_total is not None:
            stream.live_total = page.live_total
        if self.progress:
            self.progress.advanced(stream.stream, len(page.records))

    def _reconcile(self, stream: StreamReport) -> None:
        """Ask the CRM what is gone: archived ids, or every live id (then ours minus theirs is gone)."""
        entity = EntityType(stream.entity)
        live: set[str] | None = None
        for page in self.connector.reconcile(stream.stream):
            if page.live_ids is not None:
                live = (live or set()) | set(page.live_ids)
            result = self.store.records.commit_page(self.source, stream.stream, entity, [],
                                                    archived_ids=page.archived_ids, merged=page.merged)
            stream.stored.add(result)
        if live is not None:
            ours = self.store.records.live_ids(self.source, stream.stream, entity)
            gone = sorted(ours - live)
            if len(gone) > max(RECONCILE_FLOOR, RECONCILE_MAX_SHARE * len(ours)):
                # A token that sees less than it used to (lost permissions, wrong account) would
                # otherwise archive most of the store; that needs a person, not a sync.
                log.warning("sync.reconcile_refused", source=self.source, stream=stream.stream, gone=len(gone),
                            stored=len(ours))
                stream.reconcile_refused = len(gone)
            else:
                stream.stored.add(self.store.records.commit_page(self.source, stream.stream, entity, [],
                                                                 archived_ids=gone))
        stream.reconciled = True
        stream.live_count = self.store.records.live_count(self.source, stream.stream, entity)

    def _finish_stream(self, stream: StreamReport, reconcile: bool) -> None:
        if self.progress:
            self.progress.stream_finished(stream.stream)
        if reconcile and self._always_reconcile and not self.dry_run:
            self._reconcile(stream)
        if self.dry_run or stream.live_total is None:
            return
        entity = EntityType(stream.entity)
        stream.live_count = self.store.records.live_count(self.source, stream.stream, entity)
        if reconcile and stream.live_count != stream.live_total:
            # Archived or merged away behind our back: ask the CRM which, and mark them.
            log.info("sync.reconcile", source=self.source, stream=stream.stream, ours=stream.live_count,
                     theirs=stream.live_total)
            self._reconcile(stream)
        if stream.live_count != stream.live_total:
            log.warning("sync.count_mismatch", source=self.source, stream=stream.stream, ours=stream.live_count,
                        theirs=stream.live_total)
