"""``crmbridge demo``: the whole loop on the built-in sandboxes, with no credentials and no network.

It starts every installed connector's sandbox on a loopback port, backfills each into a fresh
embedded store, shows what was pulled and what it cost in API calls, then scores everyone and
prints the funnel and the top sales-ready leads with their reasons; then sets write-back up in the
sandboxes, hands every SQL off as a deal in "Sales-ready leads" with an owner, writes scores back,
and prints the hand-offs and what they cost in write calls. Then the real-time part: the daemon's
webhook receiver and workers start, setup subscribes them to both sandboxes, the simulator makes a
few people sales-ready, and each event → hand-off deal latency is printed as it happens.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from crmbridge.connectors import SandboxOptions, plugin, plugins
from crmbridge.model import EntityType
from crmbridge.progress import stream_progress
from crmbridge.rescore import RescoreReport, funnel
from crmbridge.runtime.daemon import Daemon, DaemonThread
from crmbridge.runtime.pipeline import Pipeline
from crmbridge.sandbox import SandboxServer
from crmbridge.settings import Settings
from crmbridge.store import Store
from crmbridge.store.handoffs import WritebackLedger
from crmbridge.store.store import now_ms
from crmbridge.sync import RunReport


@dataclass(frozen=True)
class DemoOptions:
    contacts: int = 2000
    seed: int = 42
    time_scale: float = 10.0
    database: Path = Path(".crmbridge/demo.db")
    sales_ready: int = 5  # people the simulator makes sales-ready once the daemon listens
    realtime_timeout: float = 60.0
    sla_days: float = 4.0  # simulated days the sandbox sellers answer hand-offs, and the SLA clocks run
    keep_running: bool = False  # leave the daemon and the sandboxes up after the summary (the dashboard)


class DemoClock:
    """The SLA's time in the demo: set to simulated instants while sellers answer, then running on at the
    wall clock's pace from the last one (so the dashboard left open keeps counting)."""

    def __init__(self) -> None:
        self._sim: int | None = None
        self._anchor = 0

    def set(self, sim_ms: int) -> None:
        self._sim, self._anchor = sim_ms, now_ms()

    def now(self) -> int:
        return now_ms() if self._sim is None else self._sim + (now_ms() - self._anchor)


def _fresh_database(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def run_demo(settings: Settings, options: DemoOptions, console: Console, progress_console: Console
             ) -> dict[str, RunReport]:
    """Sandbox → backfill → summary. Returns the backfill report of each source."""
    sources = sorted(plugins())
    url = _fresh_database(options.database)
    sandbox_options = SandboxOptions(seed=options.seed, contacts=options.contacts, time_scale=options.time_scale)
    reports: dict[str, RunReport] = {}
    console.print(f"[bold]crmbridge demo[/]: sandbox CRMs with {options.contacts:,} contacts (seed {options.seed}),"
                  f" store {options.database}")
    with SandboxServer(sandbox_options, sources) as server, Store(url) as store:
        connectors = {source: plugin(source).sandbox_connector(server.base_url(source), time_scale=options.time_scale)
                      for source in sources}
        settings = settings.model_copy(update={"sources": sources, "webhook_user": "crmbridge-demo",
                                               "webhook_password": SecretStr(secrets.token_urlsafe(16))})
        pipeline = Pipeline(settings, store, connectors)
        for source in sources:
            with stream_progress(progress_console, source) as sink:
                reports[source] = pipeline.syncer(source, progress=sink).backfill()
        _summary(console, store, reports, server)
        scoring = pipeline.rescorer().run()
        _funnel(console, store, scoring)
        clock = DemoClock()
        token = secrets.token_urlsafe(18)
        settings = settings.model_copy(update={"dashboard_token": SecretStr(token)})
        daemon = Daemon(settings, store, pipeline, _verifiers(settings, server, sources), first_pass_delay=3600,
                        sla_clock=clock.now)
        with DaemonThread(daemon) as running:
            daemon.receiver.public_url = running.url
            pipeline.settings = settings.model_copy(update={"public_url": running.url})
            _handoff(console, store, pipeline, server)
            _realtime(console, store, server, options)
            _sla(console, store, server, daemon, clock, options)
            console.print(f"\n[bold]Dashboard[/]: {running.url}/dashboard?token={token}", highlight=False)
            if options.keep_running:
                _keep_running(console, running.url, server)
        pipeline.close()
    return reports


def _verifiers(settings: Settings, server: SandboxServer, sources: list[str]) -> dict[str, Any]:
    password = settings.webhook_password.get_secret_value() if settings.webhook_password else None
    out = {}
    for source in sources:
        # webhook_options is optional on a sandbox: only one that signs its deliveries needs to say how.
        extra = getattr(server.vendor(source), "webhook_options", dict)()
        out[source] = plugin(source).webhooks(user=settings.webhook_user, password=password, **extra)
    return out


def _realtime(console: Console, store: Store, server: SandboxServer, options: DemoOptions) -> None:
    """The simulator makes people sales-ready; print each hand-off as the webhook path creates it."""
    console.print(f"\n[bold]Real time[/]: the receiver listens; {options.sales_ready} visitors fill in the "
                  "contact form")
    ledger = WritebackLedger(store)
    before = {h["key"] for h in ledger.handoffs(status="done")}
    started_ms = int(time.time() * 1000)
    made: list[dict[str, Any]] = []
    for source in server.vendors:
        vendor = server.vendor(source)
        if hasattr(vendor, "simulate"):
            made += vendor.simulate(sales_ready=options.sales_ready, seed=options.seed).get("sales_ready", [])
    wanted = {str(p.get("email") or "").lower() for p in made if p.get("email")}
    seen: set[str] = set()
    deadline = time.monotonic() + options.realtime_timeout
    while time.monotonic() < deadline and len(seen) < len(wanted):
        for h in ledger.handoffs(status="done"):
            email = str((h.get("summary") or {}).get("email") or "").lower()
            if h["key"] in before or h["key"] in seen or email not in wanted:
                continue
            seen.add(h["key"])
            latency = (int(h["done_ms"]) - started_ms) / 1000
            owner = (h.get("summary") or {}).get("owner_label") or "to claim"
            console.print(f"  form filled → deal {h['deal_id']} in {h['target']} for {email}, owner {owner}: "
                          f"[bold]{latency:.1f} s[/]", highlight=False)
        time.sleep(0.2)
    missing = len(wanted) - len(seen)
    stats = {s: server.vendor(s).stats().get("webhooks", {}) for s in server.vendors}
    console.print(f"{len(seen)} of {len(wanted)} handed off in real time" + (
        f" ({missing} not within {options.realtime_timeout:.0f} s: the scheduled sync is the safety net)"
        if missing else "") + "; webhooks " + ", ".join(
        f"{s}: {w.get('emitted', 0)} emitted, {w.get('delivered', 0)} delivered" for s, w in stats.items()))


def _sla(console: Console, store: Store, server: SandboxServer, daemon: Daemon, clock: DemoClock,
         options: DemoOptions) -> None:
    """Sandbox sellers answer the hand-offs over simulated days, some fast, some slow, some never; the SLA
    clocks run in business time and the ladder reminds, escalates and reassigns; then the summary."""
    engine = daemon.sla
    start = now_ms()
    for source in server.vendors:  # a few target accounts heat up over the days before now
        vendor = server.vendor(source)
        if hasattr(vendor, "simulate"):
            vendor.simulate(surge={"accounts": 3, "days": 5, "until": _iso(start), "seed": options.seed})
    _settle(server, store)
    end = start + int(options.sla_days * 86_400_000)
    console.print(f"\n[bold]Response-time SLA[/]: sandbox sellers answer the hand-offs over {options.sla_days:g} "
                  "simulated days; the SLA clocks run in business time")
    t, steps = start, 0
    while steps < 2_000:  # bounded: every turn moves time to the next seller action or ladder step
        steps += 1
        acted = 0
        upcoming: list[int] = []
        for source in server.vendors:
            vendor = server.vendor(source)
            if not hasattr(vendor, "simulate"):
                continue
            answer = vendor.simulate(sellers={"until": _iso(t), "seed": options.seed}).get("sellers") or {}
            acted += sum(len(d.get("actions") or ()) for d in answer.get("deals") or ())
            upcoming += [_ms(d["next"]["at"]) for d in answer.get("deals") or () if d.get("next")]
        if acted:
            _settle(server, store)
        clock.set(t)
        engine.tick(t)
        ladder = engine.ledger.next_step_ms()
        nxt = min([v for v in [*upcoming, ladder] if v is not None and v > t], default=None)
        if nxt is None or nxt > end:
            break
        t = max(nxt, t + 60_000)
    clock.set(end)
    engine.tick(end)
    from crmbridge.sla.report import sla_report

    r = sla_report(store, now_ms=end)
    console.print(f"{r['handoffs']} hand-offs: first touch P50 {_minutes(r['p50_minutes'])}, P95 "
                  f"{_minutes(r['p95_minutes'])} business time (speed to lead P50 "
                  f"{_minutes(r['speed_to_lead_p50_minutes'])} wall clock); "
                  f"{'-' if r['within_sla_pct'] is None else format(r['within_sla_pct'], '.0f')} % within the SLA; "
                  f"{r['breaches']} breaches, {r['open']} still open; {r['reminders']} reminders, "
                  f"{r['escalations']} escalations, {r['reassignments']} reassignments", highlight=False)
    for row in daemon.sla.ledger.surges():
        console.print(f"intent surge at {row['company']}: account score {row['score_before']:.0f} → "
                      f"{row['score_now']:.0f}; {row['owner'] or 'its owner'} told once", highlight=False)
    console.print("  `crmbridge sla report --by owner --database "
                  f"{options.database}` shows it per seller", style="dim", highlight=False)


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} min"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _keep_running(console: Console, url: str, server: SandboxServer) -> None:
    console.print(f"the daemon ({url}) and the sandboxes ({server.url}) keep running; Ctrl-C stops them")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping")


def _handoff(console: Console, store: Store, pipeline: Pipeline, server: SandboxServer) -> None:
    wb = pipeline.writeback()
    connectors = pipeline._connectors
    setup = wb.setup()
    console.print("\n[bold]Write-back set up[/]: " + "; ".join(
        f"{s} stage {r.stage_id} in pipeline {r.pipeline_id}, "
        f"{sum(1 for step in r.steps if step.status == 'created')} things created" for s, r in setup.items()))
    report = wb.run()
    outcomes = report.handoffs.outcomes
    table = Table(title=f"Hand-offs: {len(outcomes)} sales-ready leads into \"{wb.config.stage}\"",
                  title_justify="left")
    for column in ("person", "crm", "deal", "", "owner", "rule"):
        table.add_column(column, overflow="fold")
    for o in outcomes[:12]:
        table.add_row(o.email or str(o.person_id), o.target, o.deal_id or "-", o.action, o.owner_label or "-",
                      o.error or o.rule or "")
    console.print(table)
    for o in outcomes[:3]:
        console.print(f"  why {o.owner_label}: {o.reason}", style="dim", highlight=False)
    if len(outcomes) > 12:
        console.print(f"  … and {len(outcomes) - 12} more (`crmbridge handoffs` lists them all)", style="dim")
    actions = ", ".join(f"{report.handoffs.count(a)} {a}" for a in ("created", "reused", "recovered", "failed")
                        if report.handoffs.count(a))
    console.print(f"deals: {actions or 'none'}")
    if report.applied is not None:
        for source, n in report.applied.written.items():
            console.print(f"{source}: scores and stages of {n:,} people written in "
                          f"{report.applied.calls.get(source, 0):,} write calls")
    # The people the hand-offs created in the sales CRM come back by webhook and get their fields
    # written by the worker; once it has settled, a second pass has nothing left to do.
    _settle(server, store)
    before = {s: dict(server.vendor(s).stats()["calls"]) for s in connectors}
    again = wb.run()
    after = {s: dict(server.vendor(s).stats()["calls"]) for s in connectors}
    writes = sum(n - before[s].get(e, 0) for s in connectors for e, n in after[s].items()
                 if not e.startswith("GET") and "read" not in e)
    console.print(f"run again: {len(again.handoffs.outcomes)} new hand-offs, {len(again.plan.changes)} people to "
                  f"write, {writes} write calls (nothing changed, so nothing is written)")


def _settle(server: SandboxServer, store: Store, timeout: float = 30.0) -> None:
    """Wait until the sandboxes have delivered their webhooks and the workers have processed them."""
    from crmbridge.store.inbox import Inbox

    for source in server.vendors:
        drain = getattr(server.vendor(source), "drain_webhooks", None)
        if drain is not None:
            drain(timeout)
    inbox, deadline = Inbox(store), time.monotonic() + timeout
    while inbox.counts()["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)


def _funnel(console: Console, store: Store, scoring: RescoreReport) -> None:
    stages = funnel(store)
    console.print(f"\n[bold]Scored {scoring.scored:,} people[/] in {scoring.seconds:.1f} s "
                  f"({scoring.accounts:,} accounts, {len(scoring.surges):,} with an intent surge)")
    order = ("subscriber", "lead", "mql", "sql", "opportunity", "customer", "evangelist", "other")
    console.print("funnel: " + "  →  ".join(f"{stages[s]:,} {s.upper() if len(s) == 3 else s}" for s in order
                                            if stages.get(s)))
    console.print("\n[bold]Top sales-ready leads (SQL), and why[/]")
    for row in store.scores.top_scores("sql", limit=8):
        reasons = sorted(row["data"].get("reasons", []), key=lambda r: -abs(r["points"]))[:3]
        console.print(f"  [bold]{row['total']:5.0f}[/]  {row['email'] or row['person_id']}  "
                      f"(fit {row['fit']:.0f}, engagement {row['engagement']:.0f})", highlight=False)
        console.print("         " + "; ".join(f"{r['description']} {r['points']:+.0f}" for r in reasons),
                      style="dim", highlight=False)


def _summary(console: Console, store: Store, reports: dict[str, RunReport], server: SandboxServer) -> None:
    table = Table(title="Pulled into the store", title_justify="left")
    for column in ("source", "stream", "entity", "live", "archived"):
        table.add_column(column, justify="left" if column in ("source", "stream", "entity") else "right")
    for source, streams in store.records.counts().items():
        for stream, info in streams.items():
            table.add_row(source, stream, str(info["entity"]), f"{info['live']:,}", f"{info['archived']:,}")
    console.print(table)
    if len(reports) > 1:
        people = [ids for _, ids in store.identities.groups(EntityType.PERSON)]
        companies = [ids for _, ids in store.identities.groups(EntityType.COMPANY)]
        console.print(f"one identity across CRMs: {len(people):,} people "
                      f"({sum(1 for m in people if len({r.source for r in m}) > 1):,} in more than one CRM), "
                      f"{len(companies):,} companies "
                      f"({sum(1 for m in companies if len({r.source for r in m}) > 1):,} in more than one CRM)")
    for source, report in reports.items():
        stats = server.vendor(source).stats()
        console.print(f"{source}: {report.total_calls:,} API calls in {report.seconds:.1f} s, "
                      f"{stats.get('rate_limited', 0)} answered 429, {report.retries} retries; "
                      f"{store.records.link_count(source):,} associations stored")
