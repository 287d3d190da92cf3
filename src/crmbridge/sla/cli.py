"""``crmbridge sla ...``: the response-time report, and one tick of the SLA clocks by hand.

This is the edge where the clock is read and the store opened; the figures come from ``sla.report``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from crmbridge.errors import ConfigError
from crmbridge.store.engine import existing_database

sla_app = typer.Typer(name="sla", help="The response-time SLA: report, and tick the clocks by hand.",
                      no_args_is_help=True)
out = Console()

SCALARS = ("handoffs", "touched", "within_sla_pct", "p50_minutes", "p90_minutes", "p95_minutes",
           "speed_to_lead_p50_minutes", "speed_to_lead_p95_minutes", "breaches", "open", "at_risk",
           "closed_untouched", "reminders", "escalations", "reassignments")


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class GroupBy(StrEnum):
    owner = "owner"
    team = "team"
    source = "source"


def parse_instant(value: str | None, option: str) -> int | None:
    """``2026-11-01`` or ``2026-11-01T09:00`` (UTC unless a zone is given) as epoch milliseconds."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date or time (use 2026-11-01 or 2026-11-01T09:00Z)",
                          key=option) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1000)


def render_table(report: dict[str, Any]) -> Table:
    """All hand-offs as one figure per line; with ``--by``, one line per group and the main figures."""
    groups = report.get("groups") or {}
    title = f"SLA: {report['handoffs']:,} hand-offs" + (f" by {report['by']}" if report.get("by") else "")
    table = Table(title=title, title_justify="left")
    if not groups:
        table.add_column("figure")
        table.add_column("value", justify="right")
        bands = " / ".join(f"{n:,}" for n in report["bands"].values())
        for label, value in (
                ("hand-offs (touched)", f"{report['handoffs']:,} ({report['touched']:,})"),
                ("within SLA", _pct(report["within_sla_pct"])),
                ("first touch P50 / P90 / P95 (business)",
                 " / ".join(_min(report[k]) for k in ("p50_minutes", "p90_minutes", "p95_minutes"))),
                ("speed to lead P50 / P95 (wall clock)",
                 " / ".join(_min(report[k]) for k in ("speed_to_lead_p50_minutes", "speed_to_lead_p95_minutes"))),
                (f"touched within {' / '.join(report['bands'])} min", bands),
                ("breaches", f"{report['breaches']:,}"), ("open (at risk)", f"{report['open']:,} "
                                                                            f"({report['at_risk']:,})"),
                ("reminders / escalations / reassignments",
                 f"{report['reminders']:,} / {report['escalations']:,} / {report['reassignments']:,}")):
            table.add_row(label, value)
        return table
    table.add_column(str(report["by"]))
    for column in ("hand-offs", "within", "P50", "P95", "wall P50", "breaches", "open", "reminders", "reassigned"):
        table.add_column(column, justify="right")
    for name, figures in [*groups.items(), ("all", report)]:
        table.add_row(name, f"{figures['handoffs']:,}", _pct(figures["within_sla_pct"]),
                      *(_min(figures[k]) for k in ("p50_minutes", "p95_minutes", "speed_to_lead_p50_minutes")),
                      f"{figures['breaches']:,}", f"{figures['open']:,}", f"{figures['reminders']:,}",
                      f"{figures['reassignments']:,}")
    return table


def render_csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    bands = list(report["bands"])
    writer.writerow(["group", *SCALARS, *(f"band_{b}" for b in bands)])
    for name, figures in [*(report.get("groups") or {}).items(), ("all", report)]:
        writer.writerow([name, *("" if figures[k] is None else figures[k] for k in SCALARS),
                         *(figures["bands"][b] for b in bands)])
    return buffer.getvalue()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _min(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} min"


@sla_app.command("report")
def report_command(
    since: Annotated[str | None, typer.Option(help="hand-offs from this date or time (UTC unless given)")] = None,
    until: Annotated[str | None, typer.Option(help="hand-offs before this date or time")] = None,
    by: Annotated[GroupBy | None, typer.Option("--by", help="figures per owner, team or source")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="table, json or csv")] = ReportFormat.table,
    database: Annotated[str | None, typer.Option(help="the store (default: CRMBRIDGE_DATABASE_URL)")] = None,
) -> None:
    """Response time of sales to hand-offs: P50/P90/P95 business minutes to first touch, % within SLA,
    bands, breaches, open and at-risk clocks, reminders and reassignments; wall-clock speed to lead beside."""
    from crmbridge.cli import _fail, _settings
    from crmbridge.errors import CrmbridgeError
    from crmbridge.sla.report import sla_report
    from crmbridge.store import Store

    try:
        settings = _settings()
        url = existing_database(database or settings.database_url)
        since_ms, until_ms = parse_instant(since, "--since"), parse_instant(until, "--until")
        store = Store(url)
        try:
            data = sla_report(store, now_ms=int(datetime.now(UTC).timestamp() * 1000), since_ms=since_ms,
                              until_ms=until_ms, by=by.value if by else None)
        finally:
            store.close()
    except CrmbridgeError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    if fmt is ReportFormat.json:
        print(json.dumps(data))
    elif fmt is ReportFormat.csv:
        print(render_csv(data), end="")
    else:
        out.print(render_table(data))


@sla_app.command("tick")
def tick_command(
    fmt: Annotated[ReportFormat, typer.Option("--format", help="table or json")] = ReportFormat.table,
) -> None:
    """One tick of the SLA clocks now (the daemon does this every CRMBRIDGE_SLA_TICK_SECONDS): start clocks for
    new hand-offs, stop them at first touches, send due reminders and escalations, reassign, update the deals."""
    from crmbridge.cli import _fail, _settings, writeback_session
    from crmbridge.errors import CrmbridgeError
    from crmbridge.sla.build import sla_engine

    try:
        settings = _settings()
        with writeback_session(settings, None) as wb:
            report = sla_engine(settings, wb).tick()
    except CrmbridgeError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    if fmt is ReportFormat.json:
        print(json.dumps(report.as_dict()))
        return
    out.print(f"SLA tick: {report.started} clocks started, {report.settled} settled, {report.breached} breached; "
              f"steps {dict(report.steps) or 'none'}; {report.deals_written} deals updated")
