"""The ``crmbridge`` command line: every long command shows progress, every failure a clear message."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from crmbridge import __version__
from crmbridge.connectors import SANDBOX_TOKEN, Connector, SandboxOptions, plugin, plugins
from crmbridge.errors import AuthError, CrmbridgeError
from crmbridge.logs import configure
from crmbridge.mapping import SourceMapping
from crmbridge.progress import stream_progress
from crmbridge.scoring.cli import score_app
from crmbridge.settings import Settings, load_settings
from crmbridge.sla.cli import sla_app
from crmbridge.store import Store
from crmbridge.sync import RunReport

app = typer.Typer(name="crmbridge", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="RevOps on autopilot: sync your CRMs, score leads, hand off SQLs, track the SLA.")
config_app = typer.Typer(help="Check configuration, mappings and the scoring model.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(score_app, name="score")
app.add_typer(sla_app, name="sla")


@app.callback()
def _context(ctx: typer.Context) -> None:
    """Give sub-applications what only the main CLI knows: the store, through providers."""

    def stored_outcomes() -> list[Any]:
        from crmbridge.rescore import outcome_samples

        store = open_existing_store(_settings())
        try:
            return outcome_samples(store)
        finally:
            store.close()

    ctx.obj = {"outcome_samples": stored_outcomes}

out = Console()
err = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn crmbridge's typed errors into one clear line and a non-zero exit."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AuthError as exc:
            raise _fail(f"{exc} — check the access token and its scopes", exc.exit_code) from None
        except CrmbridgeError as exc:
            raise _fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise _fail("interrupted; run the same command again to resume", 130) from None

    return wrapper


def _settings() -> Settings:
    settings = load_settings()
    configure(settings.log_level if settings.log_level != "INFO" else "WARNING", settings.log_format)
    return settings


def _sources(source: str | None, settings: Settings) -> list[str]:
    if source in (None, ""):
        return list(settings.sources)
    if source == "all":
        return sorted(plugins())
    plugin(source)  # raises a clear error for an unknown source
    return [source]


def open_store(settings: Settings) -> Store:
    return Store(settings.database_url)


def open_existing_store(settings: Settings) -> Store:
    """The store for a read-only command: a database that is not there is an error, never created."""
    from crmbridge.store.engine import existing_database

    return Store(existing_database(settings.database_url))


def pipeline_for(settings: Settings, store: Store, connectors: dict[str, Connector] | None = None) -> Any:
    from crmbridge.runtime.pipeline import Pipeline

    return Pipeline(settings, store, connectors)


def rescorer(store: Store, settings: Settings) -> Any:
    return pipeline_for(settings, store).rescorer()


def load_mapping(settings: Settings, source: str) -> SourceMapping:
    return SourceMapping.load(settings.mapping_file(source))


def _print_report(report: RunReport, fmt: Format) -> None:
    if fmt is Format.json:
        out.print_json(json.dumps(report.as_dict()))
        return
    title = f"{report.command} {report.source}" + (" (dry run: nothing stored)" if report.dry_run else "")
    table = Table(title=title, title_justify="left")
    for column in ("stream", "records", "new", "changed", "unchanged", "archived", "merged", "quarantined"):
        table.add_column(column, justify="left" if column == "stream" else "right")
    for name, s in report.streams.items():
        table.add_row(name, f"{s.records:,}", f"{s.stored.new:,}", f"{s.stored.changed:,}",
                      f"{s.stored.unchanged:,}", f"{s.stored.archived:,}", f"{s.stored.merged:,}",
                      f"{s.quarantined:,}")
    out.print(table)
    out.print(f"{report.total_calls:,} API calls, {report.retries} retries, {report.rate_limited} rate-limited, "
              f"{report.seconds:.1f} s")
    if report.scoring:
        stages = ", ".join(f"{n:,} {stage}" for stage, n in sorted(report.scoring.get("stages", {}).items()))
        out.print(f"scored {report.scoring['scored']:,} people ({report.scoring['written']:,} changed)"
                  + (f": {stages}" if stages else ""))
    for name, s in report.streams.items():
        if not s.complete:
            out.print(f"[yellow]warning:[/] {report.source}/{name}: the CRM holds {s.live_total:,} live records, "
                      f"the store {s.live_count:,}")


def run_source(command: str, settings: Settings, source: str, streams: Sequence[str] | None, *,
               connector: Connector | None = None, restart: bool = False, dry_run: bool = False,
               workers: int | None = None, show_progress: bool = True, reconcile: bool = False) -> RunReport:
    """One backfill or sync of one source through the pipeline, with progress on stderr."""
    load_mapping(settings, source)  # a broken mapping fails before any call to the CRM
    store = open_store(settings)
    pipeline = pipeline_for(settings, store, {source: connector or plugin(source).connector()})
    try:
        with stream_progress(err, source, show_progress) as sink:
            if command == "backfill":
                return pipeline.backfill(source, streams, restart=restart, dry_run=dry_run, workers=workers or 4,
                                         progress=sink)
            return pipeline.sync(source, streams, reconcile=reconcile, progress=sink)
    finally:
        pipeline.close()
        store.close()


SourceOpt = Annotated[str | None, typer.Option("--source", "-s", help="the name of an installed connector, "
                                                                      "or all (default: CRMBRIDGE_SOURCES)")]
StreamOpt = Annotated[list[str] | None, typer.Option("--stream", help="only these streams (repeatable)")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table or json")]


@app.command()
@guarded
def backfill(source: SourceOpt = None, stream: StreamOpt = None,
             writeback_enabled: Annotated[bool, typer.Option("--writeback/--no-writeback",
                                                             help="hand off and write back afterwards "
                                                                  "(once `crmbridge setup` has run)")] = True,
             restart: Annotated[bool, typer.Option(help="ignore an interrupted run's checkpoints")] = False,
             dry_run: Annotated[bool, typer.Option("--dry-run", help="read and map, store nothing")] = False,
             workers: Annotated[int, typer.Option(min=1, max=16, help="streams fetched at once")] = 4,
             fmt: FormatOpt = Format.table) -> None:
    """Pull everything from the configured CRMs into the store (resumes an interrupted run)."""
    settings = _settings()
    names = _sources(source, settings)
    for name in names:
        report = run_source("backfill", settings, name, stream, restart=restart, dry_run=dry_run, workers=workers,
                            show_progress=fmt is Format.table)
        _print_report(report, fmt)
    if not dry_run and writeback_enabled:
        writeback_after(settings, fmt)


@app.command()
@guarded
def sync(source: SourceOpt = None, stream: StreamOpt = None, fmt: FormatOpt = Format.table,
         writeback_enabled: Annotated[bool, typer.Option("--writeback/--no-writeback",
                                                         help="hand off and write back afterwards "
                                                              "(once `crmbridge setup` has run)")] = True,
         reconcile: Annotated[bool, typer.Option(help="also look for records deleted in the CRM (costs a "
                                                       "full id listing where the CRM offers no count)")] = False
         ) -> None:
    """One incremental pass: only what changed since the last cursor."""
    settings = _settings()
    names = _sources(source, settings)
    for name in names:
        report = run_source("sync", settings, name, stream, show_progress=fmt is Format.table, reconcile=reconcile)
        _print_report(report, fmt)
    if writeback_enabled:
        writeback_after(settings, fmt)


# -- write-back -------------------------------------------------------------------------------------


@contextmanager
def writeback_session(settings: Settings, source: str | None = None) -> Iterator[Any]:
    """A ``WriteBack`` on the configured CRMs (or one), with the store; both closed afterwards."""
    store = open_store(settings)
    names = _sources(source, settings)
    pipeline = pipeline_for(settings, store, {name: plugin(name).connector() for name in names})
    pipeline.settings = settings.model_copy(update={"sources": names})
    try:
        yield pipeline.writeback()
    finally:
        pipeline.close()
        store.close()


def writeback_after(settings: Settings, fmt: Format) -> None:
    """After a backfill or sync: write back and hand off, once write-back has been set up."""
    with writeback_session(settings) as wb:
        if not wb.is_set_up():
            if fmt is Format.table:
                out.print("write-back is not set up (run `crmbridge setup`); scores stay in the store")
            return
        _print_writeback(wb.run(), fmt)


@app.command()
@guarded
def setup(source: SourceOpt = None,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be created, create nothing")] = False,
          fmt: FormatOpt = Format.table) -> None:
    """Create what write-back needs in each CRM: fields, the "Sales-ready leads" stage, webhooks. Idempotent."""
    with writeback_session(_settings(), source) as wb:
        results = wb.setup(dry_run=dry_run)
    if fmt is Format.json:
        out.print_json(json.dumps({s: {**r.as_dict(), "changed": r.changed,
                                       "steps": [step.__dict__ for step in r.steps]} for s, r in results.items()},
                                  default=str))
        return
    for source_name, result in results.items():
        table = Table(title=f"setup {source_name}" + (" (dry run)" if dry_run else ""), title_justify="left")
        for column in ("what", "name", "status", "detail"):
            table.add_column(column)
        for step in result.steps:
            colour = {"present": "dim", "created": "green", "updated": "green", "would create": "yellow",
                      "skipped": "yellow"}.get(step.status, "")
            table.add_row(step.what, step.name, f"[{colour}]{step.status}[/]" if colour else step.status, step.detail)
        out.print(table)
        if not result.changed:
            out.print(f"{source_name}: everything was already in place; nothing changed")


def _print_writeback(report: Any, fmt: Format, dry_run: bool = False) -> None:
    if fmt is Format.json:
        out.print_json(json.dumps(report.as_dict(), default=str))
        return
    outcomes = report.handoffs.outcomes
    if outcomes:
        table = Table(title="hand-offs" + (" (dry run: nothing written)" if dry_run else ""), title_justify="left")
        for column in ("person", "crm", "deal", "action", "owner", "why"):
            table.add_column(column)
        for o in outcomes:
            table.add_row(o.email or str(o.person_id), o.target, o.deal_id or "-", o.action,
                          o.owner_label or "-", o.error or o.reason or "")
        out.print(table)
    else:
        out.print("hand-offs: no new sales-ready lead")
    if report.handoffs.skipped_claimed:
        out.print(f"{report.handoffs.skipped_claimed} hand-offs are being handled by another run")
    plan = report.plan
    calls = ", ".join(f"{s} {n}" for s, n in plan.calls().items()) or "none"
    fields = ", ".join(f"{k} {n}" for k, n in sorted(plan.field_counts().items()))
    verb = "would write" if dry_run else "planned"
    out.print(f"write-back: {plan.considered:,} people considered, {len(plan.changes):,} {verb} "
              f"({fields or 'no field changed'}); write calls: {calls}")
    if dry_run and plan.changes:
        table = Table(title="write plan (first 20)", title_justify="left")
        for column in ("crm", "id", "person", "field", "from", "to"):
            table.add_column(column)
        for change in plan.changes[:20]:
            for key, (old, new) in change.changes.items():
                table.add_row(change.source, change.source_id, change.email or "", key, str(old), str(new))
        out.print(table)
    if report.applied is not None:
        for source_name, n in report.applied.written.items():
            failed = report.applied.failed.get(source_name) or {}
            out.print(f"{source_name}: {n:,} people written in {report.applied.calls.get(source_name, 0)} calls"
                      + (f", [red]{len(failed)} rejected[/]" if failed else ""))
    if report.notifications and any(report.notifications.values()):
        out.print("notifications: " + ", ".join(f"{n} {k}" for k, n in report.notifications.items() if n))


@app.command()
@guarded
def writeback(source: SourceOpt = None,
              dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan, write nothing")] = False,
              full: Annotated[bool, typer.Option("--full", help="plan everyone, not only who changed since the "
                                                                "last pass")] = False,
              fmt: FormatOpt = Format.table) -> None:
    """Hand off new SQLs as deals with owners, and write changed scores and stages back to the CRMs."""
    with writeback_session(_settings(), source) as wb:
        report = wb.run(dry_run=dry_run, full=full)
    _print_writeback(report, fmt, dry_run)


@app.command()
@guarded
def handoffs(fmt: FormatOpt = Format.table) -> None:
    """Every hand-off made: who, which deal, which owner, and why that owner."""
    from crmbridge.store.handoffs import WritebackLedger

    store = open_existing_store(_settings())
    try:
        rows = WritebackLedger(store).handoffs(status="done")
    finally:
        store.close()
    if fmt is Format.json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table(title=f"{len(rows)} hand-offs", title_justify="left")
    for column in ("person", "company", "crm", "deal", "owner", "rule", "reason"):
        table.add_column(column)
    for r in rows:
        summary = r.get("summary") or {}
        table.add_row(summary.get("email") or str(r["person_id"]), summary.get("company") or "", r["target"],
                      r["deal_id"] or "", summary.get("owner_label") or "to claim", r.get("rule") or "",
                      r.get("reason") or "")
    out.print(table)


def status_data(settings: Settings) -> dict[str, Any]:
    store = open_existing_store(settings)
    try:
        from crmbridge.sla.report import open_clock_counts
        from crmbridge.store.inbox import Inbox
        from crmbridge.store.store import now_ms

        return {"database": _safe_url(settings.database_url), "counts": store.records.counts(),
                "cursors": store.cursors.all(), "last_runs": store.runs.last(10),
                "quarantined": len(store.quarantine.list()), "inbox": Inbox(store).counts(),
                "sla": open_clock_counts(store, now_ms()),
                "identity_review": [{"name": c.name, "records": [[k.source, k.source_id, k.domain] for k in c.records]}
                                    for c in store.identities.name_conflicts()]}
    finally:
        store.close()


def _safe_url(url: str) -> str:
    """The database URL without its password."""
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable>"


@app.command()
@guarded
def status(fmt: FormatOpt = Format.table) -> None:
    """Counts per source and object type, cursors and the last runs."""
    data = status_data(_settings())
    if fmt is Format.json:
        out.print_json(json.dumps(data, default=str))
        return
    table = Table(title=f"store {data['database']}", title_justify="left")
    for column in ("source", "stream", "entity", "live", "archived"):
        table.add_column(column, justify="right" if column in ("live", "archived") else "left")
    for source, streams in data["counts"].items():
        for stream, c in streams.items():
            table.add_row(source, stream, str(c["entity"]), f"{c['live']:,}", f"{c['archived']:,}")
    out.print(table)
    for run in data["last_runs"][:5]:
        out.print(f"run {run['id']}: {run['command']} {run['source']} {run['status']}")
    if data["quarantined"]:
        out.print(f"[yellow]{data['quarantined']} records quarantined[/]")
    inbox = data["inbox"]
    if any(inbox.values()):
        out.print("webhook inbox: " + ", ".join(f"{n:,} {k}" for k, n in inbox.items()))
        if inbox["quarantined"]:
            out.print(f"[yellow]{inbox['quarantined']} webhook events quarantined[/] "
                      "(`crmbridge inbox list`, `crmbridge inbox replay`)")
    review = data["identity_review"]
    if review:
        names = ", ".join(c["name"] for c in review[:5]) + (", …" if len(review) > 5 else "")
        out.print(f"[yellow]{len(review)} company name{'s' if len(review) != 1 else ''} shared by several "
                  "companies[/], kept apart for review: "
                  f"{names} (`crmbridge status --format json` lists their records)")
    sla = data["sla"]
    if sla["open"]:
        out.print(f"open SLA clocks: {sla['open']:,} ({sla['on_track']:,} on track, {sla['at_risk']:,} at risk, "
                  f"{sla['breached']:,} breached; `crmbridge sla report`)")


inbox_app = typer.Typer(help="The webhook inbox: quarantined events, and replaying them.", no_args_is_help=True)
app.add_typer(inbox_app, name="inbox")


@inbox_app.command("list")
@guarded
def inbox_list(fmt: FormatOpt = Format.table) -> None:
    """Webhook events that kept failing and were set aside, with their last error."""
    from crmbridge.store.inbox import Inbox

    store = open_existing_store(_settings())
    try:
        rows = Inbox(store).quarantined(limit=1000)
    finally:
        store.close()
    if fmt is Format.json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"{len(rows)} quarantined webhook events", title_justify="left")
    for column in ("source", "stream", "record", "action", "attempts", "error"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["source"], r["stream"], r["object_id"], r["action"], str(r["attempts"]), r["error"] or "")
    out.print(table)


@inbox_app.command("replay")
@guarded
def inbox_replay(source: Annotated[str | None, typer.Option(help="only this source's events")] = None) -> None:
    """Give quarantined webhook events a fresh set of attempts (the daemon picks them up)."""
    from crmbridge.store.inbox import Inbox

    store = open_store(_settings())
    try:
        n = Inbox(store).replay(source)
    finally:
        store.close()
    out.print(f"{n} quarantined events queued again")


@app.command()
@guarded
def sandbox(port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8765,
            host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
            contacts: Annotated[int, typer.Option(min=1, help="people in the seeded world")] = 1000,
            seed: Annotated[int, typer.Option(help="seed of the generated data")] = 42,
            faults: Annotated[str, typer.Option(help="e.g. 5xx=0.1,429=0.05,timeout=0.01,reset=0.01")] = "",
            time_scale: Annotated[float, typer.Option(min=0.01, help="speeds up every rate-limit window")] = 1.0,
            source: SourceOpt = "all",
            token: Annotated[list[str] | None, typer.Option(
                "--token", help="a token the sandboxes accept (repeatable; default: sandbox)")] = None,
            option: Annotated[list[str] | None, typer.Option(
                "--option", "-o", help="a connector's own sandbox option, <connector>.<option>=<value> "
                                       "(repeatable; `--option help` lists them)")] = None,
            webhook_retry_scale: Annotated[float, typer.Option(
                min=0.001, help="divides the vendors' webhook retry delays and bans (3600: hours become s)")] = 1.0,
            webhook_duplicates: Annotated[float, typer.Option(
                min=0.0, max=1.0, help="share of webhook deliveries sent twice")] = 0.0,
            webhook_shuffle: Annotated[bool, typer.Option(help="deliver webhook events out of order")] = False,
            webhook_any_host: Annotated[bool, typer.Option(
                help="deliver webhooks beyond loopback (containers on one network)")] = False) -> None:
    """Serve every installed connector's fake CRM API on loopback, seeded and rate-limited like the real one."""
    from crmbridge.sandbox import parse_faults, serve
    from crmbridge.sandbox.options import describe, sandbox_extra

    if option == ["help"]:
        for line in describe(plugins()) or ["no installed connector declares sandbox options"]:
            out.print(escape(line), highlight=False, soft_wrap=True)
        return
    extra: dict[str, Any] = {"webhook_retry_scale": webhook_retry_scale, "webhook_duplicates": webhook_duplicates,
                             "webhook_shuffle": webhook_shuffle, "webhook_any_host": webhook_any_host,
                             **sandbox_extra(option or (), plugins())}
    options = SandboxOptions(seed=seed, contacts=contacts, faults=parse_faults(faults), time_scale=time_scale,
                             extra=extra, tokens=tuple(token) if token else (SANDBOX_TOKEN,))
    names = sorted(plugins()) if source in (None, "all") else [source]
    serve(options, host, port, names, announce=lambda line: err.print(line, highlight=False))


@config_app.command("check")
@guarded
def config_check(mappings: Annotated[Path | None, typer.Option(help="folder of <source>.yaml files")] = None
                 ) -> None:
    """Validate settings, each source's token and mapping, the merge policy, the scoring model, the hand-off,
    routing and SLA files and the notification settings, naming the file, line and key of a problem."""
    from crmbridge.checks import check_configuration

    settings = load_settings(**({"mappings_dir": mappings} if mappings else {}))
    report = check_configuration(settings)
    for line in report.checked:
        out.print(f"[green]ok[/] {escape(line)}", highlight=False, soft_wrap=True)
    _refuse_invalid(report)
    out.print(f"configuration ok: {len(report.checked)} checked"
              + (f", {len(report.warnings)} warnings" if report.warnings else ""), highlight=False)


def _refuse_invalid(report: Any) -> None:
    """Print a configuration check's warnings and errors (stderr); with any error, exit 2."""
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for problem in report.errors:
        err.print(f"[bold red]error:[/] {escape(str(problem))}", highlight=False, soft_wrap=True)
    if report.errors:
        raise typer.Exit(2)


@app.command()
@guarded
def demo(contacts: Annotated[int, typer.Option(min=10, help="people in the sandbox world")] = 2000,
         seed: Annotated[int, typer.Option(help="seed of the generated data")] = 42,
         database: Annotated[Path, typer.Option(help="SQLite file the demo writes (recreated)")] = Path(
             ".crmbridge/demo.db"),
         keep_running: Annotated[bool, typer.Option("--keep-running", help="leave the daemon (and its dashboard) "
                                                    "and the sandboxes up after the summary")] = False) -> None:
    """Run the whole loop on the built-in sandbox CRMs: no credentials, no network."""
    from crmbridge.demo import DemoOptions, run_demo

    run_demo(_settings(), DemoOptions(contacts=contacts, seed=seed, database=database, keep_running=keep_running),
             out, err)


@score_app.command("backtest")
@guarded
def score_backtest(model: Annotated[Path, typer.Option("--model", "-m", help="the model to try (YAML)")],
                   weeks: Annotated[int, typer.Option(min=1, max=104, help="weeks of history to replay")] = 12,
                   until: Annotated[str | None, typer.Option(help="end of the last week (default: now)")] = None,
                   fmt: FormatOpt = Format.table) -> None:
    """Replay stored history under a new model beside the live one: SQLs per week, owner load per week under the
    routing rules, and precision against what sales recorded; nothing is written."""
    from datetime import UTC, datetime

    from crmbridge.identity import load_policy
    from crmbridge.outcomes import known_outcomes
    from crmbridge.profiles import ProfileReader
    from crmbridge.scoring import ScoringModel
    from crmbridge.scoring.backtest import backtest, week_ends
    from crmbridge.sla.cli import parse_instant

    settings = _settings()
    candidate = ScoringModel.load(model)
    live = ScoringModel.load(settings.scoring_model_path)
    end = parse_instant(until, "--until")
    end_at = datetime.now(UTC) if end is None else datetime.fromtimestamp(end / 1000, UTC)
    store = open_existing_store(settings)
    try:
        people = [p for group in ProfileReader(store, load_policy(settings.merge_policy_file)).all() for p in group]
        route = _backtest_router(settings, store)
        result = backtest(people, {"live": live, model.name: candidate}, week_ends(end_at, weeks),
                          known_outcomes(store), route)
    finally:
        store.close()
    if fmt is Format.json:
        out.print_json(json.dumps(result.as_dict()))
        return
    table = Table(title=f"backtest over {weeks} weeks to {end_at:%Y-%m-%d}: live model beside {model.name}",
                  title_justify="left")
    table.add_column("week ending")
    for run in result.models:
        table.add_column(f"{run.name} SQLs", justify="right")
        table.add_column(f"{run.name} busiest owner", justify="right")
    for i, week in enumerate(result.weeks):
        cells = []
        for run in result.models:
            load = run.load_per_week[i]
            busiest = max(load.items(), key=lambda kv: kv[1], default=None)
            cells += [str(run.sqls_per_week[i]), f"{busiest[0]} ({busiest[1]})" if busiest else "-"]
        table.add_row(f"{week:%Y-%m-%d}", *cells)
    out.print(table)
    for run in result.models:
        precision = "-" if run.precision is None else f"{run.precision:.0%}"
        won = "-" if run.won_precision is None else f"{run.won_precision:.0%}"
        out.print(f"{run.name} (SQL at {run.threshold:g}): {run.sqls} new SQLs ({run.before} already before); of "
                  f"the {run.with_outcome} with an outcome, {precision} accepted or won, {won} won", highlight=False)


def _backtest_router(settings: Settings, store: Store) -> Any:
    """Who the routing rules would give each SQL to at a moment, remembering the backtest's own assignments."""
    from datetime import datetime

    from crmbridge.model import EntityType as Entity
    from crmbridge.model import Owner
    from crmbridge.routing import Lead, MemoryLedger, OwnerRouter, RoutingConfig, Seller, load_routing
    from crmbridge.writeback.config import load_handoff_config

    config = load_handoff_config(settings.handoff_config_path)
    router = OwnerRouter(load_routing(config.routing) if config.routing else RoutingConfig.default())
    ledger = MemoryLedger()
    sellers: dict[str, list[Seller]] = {}

    def route(p: Any, at: datetime) -> str | None:
        person, company = p.profile.person, p.profile.company
        facts = {"country": (company.country if company else None) or person.country,
                 "region": (company.region if company else None) or person.region,
                 "industry": company.industry if company else None,
                 "employees": company.employees if company else None}
        target = config.target_for(facts, list(settings.sources))[0]
        if target not in sellers:
            sellers[target] = [Seller.from_owner(o) for o in store.records.iter(Entity.OWNER, target)
                               if isinstance(o, Owner)]
        lead = Lead(person_id=p.person_id, email=person.email, name=person.full_name, title=person.title,
                    country=facts["country"], region=facts["region"], company_name=company.name if company else None,
                    company_domain=company.domain if company else None, industry=facts["industry"],
                    employees=facts["employees"], company_owner_id=company.owner_id if company else None)
        assignment = router.assign(lead, sellers[target], ledger, at)
        if assignment.owner_id is None:
            return None
        ledger.record(assignment.owner_id, at)
        return assignment.owner_name or assignment.owner_id

    return route


@score_app.command("explain")
@guarded
def score_explain(who: Annotated[str, typer.Argument(metavar="PERSON", help="the person's e-mail, in any case; "
                                                     "with --cases a persona's id, name or e-mail")],
                  model: Annotated[Path | None, typer.Option("--model", "-m", help="score with this model (YAML) "
                                                             "instead of the configured one")] = None,
                  cases: Annotated[Path | None, typer.Option("--cases", "-c", help="explain a persona of this case "
                                                             "file (no database is read or created)")] = None,
                  as_of: Annotated[str | None, typer.Option("--as-of", help="with --cases: measure ages from this "
                                                            "ISO time (default: the file's as_of, else now)")] = None,
                  fmt: FormatOpt = Format.table) -> None:
    """Why a person has the score and stage they have: rules fired, points, decay, the rule that held them back,
    what is missing for the next stage."""
    from datetime import UTC, datetime

    from crmbridge.mapping.transforms import normalise_email
    from crmbridge.scoring import Scorer, ScoringModel
    from crmbridge.scoring.cases import explain_case, persona_result
    from crmbridge.scoring.cli import parse_as_of
    from crmbridge.scoring.explain import render_persona

    if cases is not None:
        scoring_model = ScoringModel.load(model if model is not None else _settings().scoring_model_path)
        persona = explain_case(scoring_model, cases, who, parse_as_of(as_of), default_as_of=datetime.now(UTC))
        render_persona(persona, out, fmt.value, title=f"{persona.name} (persona {persona.id})")
        return
    settings = _settings()
    store = open_existing_store(settings)
    try:
        scorer = rescorer(store, settings)
        chosen = ScoringModel.load(model) if model is not None else scorer.model
        score = scorer.scorer.score if model is None else Scorer(chosen).score
        wanted = normalise_email(who)
        profiles = scorer.reader.by_email(wanted) if wanted else []
        if not profiles:
            raise CrmbridgeError(f"no person with e-mail {who!r} in the store (run a backfill or sync first)")
        for p in profiles:
            person = p.profile.person
            found = persona_result(chosen, wanted or who, person.full_name or wanted or who,
                                   score(p.profile, datetime.now(UTC)), person.lifecycle_stage)
            ids = ", ".join(f"{k} {v}" for k, v in person.source_ids.items())
            render_persona(found, out, fmt.value, title=f"{found.name} ({ids})")
    finally:
        store.close()


@score_app.command("run")
@guarded
def score_run(fmt: FormatOpt = Format.table,
              workers: Annotated[int, typer.Option(
                  min=1, help="processes sharing the re-score (scoring is CPU-bound: up to one per core)")] = 1
              ) -> None:
    """Re-score everyone in the store now (decay moves scores with time; the daemon does this daily)."""
    from crmbridge.rescore import funnel

    settings = _settings()
    store = open_store(settings)
    try:
        report = rescorer(store, settings).run(workers=workers)
        if fmt is Format.json:
            out.print_json(json.dumps({**report.as_dict(), "funnel": funnel(store)}))
        else:
            out.print(f"scored {report.scored:,} people ({report.written:,} changed; "
                      f"{report.scored - report.from_digests:,} read from their records, the rest from the "
                      f"digests kept last time) and {report.accounts:,} accounts in {report.seconds:.1f} s; funnel: " +
                      ", ".join(f"{n:,} {s}" for s, n in funnel(store).items()))
    finally:
        store.close()


def webhook_verifiers(settings: Settings, sources: Sequence[str]) -> dict[str, Any]:
    """Each source's webhook verifier (every plugin declares one: the receiver serves every source)."""
    password = settings.webhook_password.get_secret_value() if settings.webhook_password else None
    return {name: plugin(name).webhooks(user=settings.webhook_user, password=password) for name in sources}


@app.command()
@guarded
def run() -> None:
    """The long-lived daemon: webhook receiver, inbox workers, scheduled syncs, health and metrics."""
    from crmbridge.checks import check_configuration
    from crmbridge.runtime.daemon import Daemon

    settings = _settings()
    _refuse_invalid(check_configuration(settings))  # the same errors as `crmbridge config check`, before start
    sources = _sources(None, settings)
    store = open_store(settings)
    pipeline = pipeline_for(settings, store, {name: plugin(name).connector() for name in sources})
    try:
        Daemon(settings, store, pipeline, webhook_verifiers(settings, sources),
               worker_processes=settings.worker_processes).serve()
    finally:
        pipeline.close()
        store.close()


@app.command()
@guarded
def worker() -> None:
    """One inbox worker on its own: claims webhook events, reads them back, stores, scores, writes back.
    `crmbridge run` starts these itself (CRMBRIDGE_WORKER_PROCESSES); more may run beside it."""
    import signal
    import threading

    from crmbridge.runtime.workers import InboxWorker, WorkerPolicy
    from crmbridge.store.inbox import Inbox

    settings = _settings()
    sources = _sources(None, settings)
    store = open_store(settings)
    pipeline = pipeline_for(settings, store, {name: plugin(name).connector() for name in sources})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pipeline.should_stop = stop.is_set
    try:
        InboxWorker(Inbox(store), lambda events: pipeline.apply_events(events, write_back=False),
                    pipeline.write_back, WorkerPolicy(max_attempts=settings.worker_max_attempts)).run(stop)
    finally:
        pipeline.close()
        store.close()


@app.command()
def healthcheck(url: Annotated[str | None, typer.Option(help="default: the daemon's own /healthz")] = None
                ) -> None:
    """Exit 0 when the daemon answers its health check (used by the container's HEALTHCHECK)."""
    import urllib.request

    settings = load_settings()
    target = url or f"http://127.0.0.1:{settings.http_port}/healthz"
    try:
        with urllib.request.urlopen(target, timeout=3) as response:
            ok = response.status == 200
    except OSError:
        ok = False
    if not ok:
        raise _fail(f"unhealthy: {target}")
    out.print("healthy")


@app.command()
def version() -> None:
    """Print crmbridge's version."""
    out.print(__version__)


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)


if __name__ == "__main__":
    main()
