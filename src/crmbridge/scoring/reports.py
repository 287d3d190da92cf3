"""Rich renderings of the ``score test`` and ``score calibrate`` reports."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from crmbridge.scoring.calibrate import Calibration
from crmbridge.scoring.cases import CaseReport, PersonaResult


def render_case_report(report: CaseReport, console: Console) -> None:
    console.print(Text(f"Model {report.model}: {report.cases} as of {report.as_of:%Y-%m-%d %H:%M} UTC",
                       style="bold"))
    people = Table(title="Personas", title_justify="left")
    for column, justify in (("persona", "left"), ("name", "left"), ("score", "right"), ("fit", "right"),
                            ("engagement", "right"), ("qualifying", "right"), ("proposed", "left"),
                            ("stage", "left"), ("note", "left")):
        people.add_column(column, justify=justify)  # type: ignore[arg-type]
    for p in report.personas:
        s = p.score
        people.add_row(p.id, p.name, f"{s.total:.1f}", f"{s.fit:.1f}", f"{s.engagement:.1f}",
                       f"{s.qualifying:.1f}", s.stage.value.upper(), p.final.value.upper(), _note(p))
    console.print(people)
    checks = Table(title="Expectations", title_justify="left")
    for column in ("", "subject", "expectation", "got"):
        checks.add_column(column)
    for c in report.checks:
        mark = Text("PASS", style="bold green") if c.passed else Text("FAIL", style="bold red")
        checks.add_row(mark, c.subject, c.expectation, c.detail)
    if not report.checks:
        checks.add_row("", "-", "no expectations in the case file", "")
    console.print(checks)
    for warning in report.warnings:
        console.print(Text.assemble(("warning: ", "bold yellow"), warning))
    failed = len(report.failures)
    summary = f"{len(report.checks) - failed} passed, {failed} failed"
    console.print(Text(summary, style="bold red" if failed else "bold green"))


def _note(p: PersonaResult) -> str:
    """Why the persona stopped where it did: disqualified, held back by fit or by the lifecycle policy."""
    s = p.score
    notes = [f"disqualified: {s.disqualified}"] if s.disqualified else []
    if s.hand_raise:
        notes.append("hand raised")
    return "; ".join([*notes, *p.notes])


def render_calibration(cal: Calibration, console: Console) -> None:
    base = f"{cal.base_rate:.0%}" if cal.base_rate is not None else "-"
    console.print(Text(f"{cal.samples} outcomes, {cal.positives} accepted/won (base rate {base})", style="bold"))
    bands = Table(title="Conversion by score band", title_justify="left")
    for column in ("band", "people", "accepted/won", "conversion"):
        bands.add_column(column, justify="left" if column == "band" else "right")
    for b in cal.bands:
        conversion = f"{b.conversion:.0%}" if b.conversion is not None else "-"
        bands.add_row(f"{b.low:g} - <{b.high:g}", str(b.count), str(b.positives), conversion)
    console.print(bands)
    table = Table(title=f"Thresholds (objective: {cal.objective})", title_justify="left")
    for column in ("threshold", "SQLs", "good", "precision", "recall", "F", "won", "won precision"):
        table.add_column(column, justify="right")
    for c in cal.candidates:
        marks = [m for m, hit in (("suggested", c is cal.suggested), ("current", c is cal.current)) if hit]
        style = "bold green" if c is cal.suggested else ("cyan" if c is cal.current else "")
        label = f"{c.threshold:g}" + (f" ({', '.join(marks)})" if marks else "")
        table.add_row(label, str(c.selected), str(c.true_positives), _pct(c.precision), _pct(c.recall),
                      f"{c.f_score:.2f}", str(c.won), _pct(c.won_precision), style=style)
    console.print(table)
    console.print(Text(f"Suggestion: {cal.advice} The model is not changed.", style="bold"))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
