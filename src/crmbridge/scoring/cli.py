"""``crmbridge score ...``: check a scoring model against persona cases and calibrate its threshold.

The lead mounts ``score_app`` on the main CLI and adds ``explain``; this module is the edge where the
clock is read and files are opened, and where errors become a message and an exit code.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from crmbridge.errors import CrmbridgeError
from crmbridge.scoring.calibrate import calibrate, load_outcomes
from crmbridge.scoring.cases import run_cases
from crmbridge.scoring.model import ScoringModel
from crmbridge.scoring.reports import render_calibration, render_case_report

score_app = typer.Typer(name="score", help="Explain, test and calibrate the lead-scoring model.",
                        no_args_is_help=True)

F = TypeVar("F", bound=Callable[..., Any])


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def fails_cleanly(command: F) -> F:
    """Turn a crmbridge error into its message on stderr and its exit code, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CrmbridgeError as exc:
            # soft_wrap: a file:line: key message stays on one line, whatever the terminal width.
            Console(stderr=True, soft_wrap=True).print(Text.assemble(("error: ", "bold red"), str(exc)))
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def parse_as_of(value: str | None) -> datetime | None:
    """An ISO timestamp; without a zone it is taken as UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO timestamp such as 2025-03-01T09:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stored_samples(ctx: typer.Context) -> list[Any]:
    """Samples from the main CLI's store (it puts a provider in ``ctx.obj``); none outside it."""
    provider = (ctx.obj or {}).get("outcome_samples") if isinstance(ctx.obj, dict) else None
    if provider is None:
        raise typer.BadParameter("give --outcomes FILE", param_hint="--outcomes")
    return list(provider())


ModelOption = Annotated[Path, typer.Option("--model", "-m", help="Scoring model YAML file.")]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json.")]


@score_app.command("test")
@fails_cleanly
def test_command(
    model: ModelOption,
    cases: Annotated[Path, typer.Option("--cases", "-c", help="Persona case file (YAML).")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Measure ages from this ISO time "
                                              "(default: the case file's as_of, else now).")] = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Score the personas in a case file and check the expected rankings and stages (after the lifecycle policy;
    `proposed:` for the model's own); an expectation that can never hold is an error at its line."""
    scoring_model = ScoringModel.load(model)
    report = run_cases(scoring_model, cases, parse_as_of(as_of), default_as_of=datetime.now(UTC))
    if fmt is OutputFormat.JSON:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        render_case_report(report, Console())
    if not report.passed:
        raise typer.Exit(1)


@score_app.command("calibrate")
@fails_cleanly
def calibrate_command(
    ctx: typer.Context,
    outcomes: Annotated[Path | None, typer.Option("--outcomes", "-o", help="CSV (score,outcome) or JSON list "
                                                  "of people with known outcomes (default: the store's "
                                                  "scored people with a deal or a sales verdict).")] = None,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Model whose SQL threshold to "
                                               "compare with.")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Current SQL threshold "
                                                    "(default: the model's).")] = None,
    band: Annotated[float, typer.Option("--band", min=0.001, help="Width of a score band.")] = 10,
    step: Annotated[float, typer.Option("--step", min=0.001, help="Spacing of candidate thresholds.")] = 5,
    min_precision: Annotated[float | None, typer.Option("--min-precision", min=0.0, max=1.0,
                                                        help="Suggest the lowest threshold whose SQLs are "
                                                        "at least this good.")] = None,
    target_volume: Annotated[int | None, typer.Option("--target-volume", min=1,
                                                      help="Suggest the threshold that would have given about this "
                                                      "many SQLs among the outcomes (with --min-precision: "
                                                      "among thresholds at least that good).")] = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Conversion by score band and a suggested SQL threshold from won/lost and accepted/rejected outcomes."""
    current = threshold
    if current is None and model is not None:
        current = ScoringModel.load(model).sql_threshold
    samples = load_outcomes(outcomes) if outcomes is not None else _stored_samples(ctx)
    result = calibrate(samples, band_width=band, step=step, current_threshold=current, min_precision=min_precision,
                       target_volume=target_volume)
    if fmt is OutputFormat.JSON:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        render_calibration(result, Console())
