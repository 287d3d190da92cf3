"""The daemon's Prometheus metrics, with ``prometheus_client``: counters and a latency histogram the
daemon updates as it goes, and gauges read from the store at each scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from crmbridge.logs import get_logger

log = get_logger("crmbridge.metrics")

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class DaemonMetrics:
    """One registry per daemon (tests build several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhook_requests = Counter("crmbridge_webhook_requests", "Webhook deliveries by source and HTTP status.",
                                        ["source", "status"], registry=self.registry)
        self.webhook_events = Counter("crmbridge_webhook_events", "Webhook events accepted into the inbox.",
                                      ["source"], registry=self.registry)

    # The receiver's WebhookMetrics protocol.
    def request(self, source: str, status: int) -> None:
        self.webhook_requests.labels(source, str(status)).inc()

    def events(self, source: str, n: int) -> None:
        self.webhook_events.labels(source).inc(n)



class StateCollector(Collector):
    """Gauges read at scrape time: records, inbox depth and age, scheduler passes, API usage."""

    def __init__(self, read: Callable[[], Mapping[str, Any]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Any]:
        try:
            state = self._read()
        except Exception as exc:  # a scrape must not fail because the store is briefly unreachable
            log.warning("metrics.read_failed", error=type(exc).__name__)
            return
        records = GaugeMetricFamily("crmbridge_records", "Records in the store by source, stream and state.",
                                    labels=["source", "stream", "state"])
        for source, streams in state.get("counts", {}).items():
            for stream, c in streams.items():
                for kind in ("live", "archived"):
                    records.add_metric([source, stream, kind], c[kind])
        yield records
        inbox = GaugeMetricFamily("crmbridge_inbox_events", "Webhook events in the inbox by state.",
                                  labels=["state"])
        for status, n in state.get("inbox", {}).items():
            inbox.add_metric([status], n)
        yield inbox
        yield GaugeMetricFamily("crmbridge_inbox_oldest_pending_age_seconds",
                                "Age of the oldest event not yet processed (0 when none waits).",
                                value=state.get("oldest_pending_age", 0.0))
        yield _latency_family(state.get("latencies", []))
        yield from _scheduler_families(state)


def _latency_family(latencies: list[tuple[str, float]]) -> HistogramMetricFamily:
    """Event → write-back latency of the events done lately, read from the inbox: the workers may be
    processes of their own, so the inbox is where every one of them leaves its figures."""
    family = HistogramMetricFamily("crmbridge_event_to_writeback_seconds",
                                   "From a webhook event's arrival to the end of the write-back it fed "
                                   "(events done in the last 15 minutes).", labels=["source"])
    by_source: dict[str, list[float]] = {}
    for source, seconds in latencies:
        by_source.setdefault(source, []).append(seconds)
    for source, values in sorted(by_source.items()):
        buckets = [(str(b), sum(1 for v in values if v <= b)) for b in LATENCY_BUCKETS]
        buckets.append(("+Inf", len(values)))
        family.add_metric([source], buckets, sum(values))
    return family


def _scheduler_families(state: Mapping[str, Any]) -> Iterator[Any]:
    runs = CounterMetricFamily("crmbridge_sync_runs", "Scheduled incremental passes by outcome.",
                               labels=["source", "outcome"])
    for (source, outcome), n in sorted(state.get("runs", {}).items()):
        runs.add_metric([source, outcome], n)
    yield runs
    calls = CounterMetricFamily("crmbridge_api_calls", "CRM API calls made by this process.", labels=["source"])
    limited = CounterMetricFamily("crmbridge_api_rate_limited", "Calls the CRM answered 429.", labels=["source"])
    for source, usage in sorted(state.get("usage", {}).items()):
        calls.add_metric([source], usage["calls"])
        limited.add_metric([source], usage["rate_limited"])
    yield calls
    yield limited
    last = GaugeMetricFamily("crmbridge_last_sync_timestamp_seconds", "End of the last successful pass.",
                             labels=["source"])
    for source, at in sorted(state.get("last_ok", {}).items()):
        last.add_metric([source], at)
    yield last
    yield GaugeMetricFamily("crmbridge_scheduler_leader", "1 while this replica leads the scheduler.",
                            value=1.0 if state.get("leading") else 0.0)
    yield CounterMetricFamily("crmbridge_scheduler_rounds", "Scheduler rounds finished (passes, daily re-score, "
                              "write-back).", value=state.get("rounds", 0))


def parse_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus exposition text as {(sample name, labels): value}: for health checks, benchmarks, tests."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out
