"""Calibration: conversion by score band and a suggested SQL threshold from sales outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from scoring_helpers import EXAMPLES
from typer.testing import CliRunner

from crmbridge.errors import ConfigError
from crmbridge.scoring import Outcome, Sample, calibrate, load_outcomes
from crmbridge.scoring.cli import score_app

app = typer.Typer()
app.add_typer(score_app, name="score")

# Below 60 sales mostly rejects; from 60 up it mostly accepts: the threshold should move from 50 to 60.
SAMPLES = (
    [Sample(s, Outcome.REJECTED) for s in (41, 44, 48, 52, 53, 55, 57, 58)]
    + [Sample(s, Outcome.ACCEPTED) for s in (51, 62, 64, 66, 71, 73, 78, 85)]
    + [Sample(s, Outcome.LOST) for s in (63,)]
    + [Sample(s, Outcome.WON) for s in (90, 95)]
)


def test_conversion_is_reported_per_score_band() -> None:
    result = calibrate(SAMPLES, band_width=10)
    assert [(b.low, b.count, b.positives) for b in result.bands] == [
        (40, 3, 0), (50, 6, 1), (60, 4, 3), (70, 3, 3), (80, 1, 1), (90, 2, 2)]
    assert result.bands[1].conversion == pytest.approx(1 / 6)
    assert (result.samples, result.positives) == (19, 10)


def test_the_suggested_threshold_balances_precision_and_recall() -> None:
    result = calibrate(SAMPLES, current_threshold=50)
    assert result.suggested is not None and result.current is not None
    assert result.suggested.threshold == 60
    assert (result.suggested.precision, result.suggested.recall) == (pytest.approx(0.9), pytest.approx(0.9))
    assert (result.current.precision, result.current.recall) == (pytest.approx(10 / 16), 1.0)
    assert result.advice.startswith("raise the SQL threshold from 50 to 60")
    assert "Only 19 outcomes" in result.advice


def test_a_precision_target_picks_the_lowest_threshold_that_reaches_it() -> None:
    result = calibrate(SAMPLES, current_threshold=50, min_precision=0.95)
    assert result.suggested is not None
    assert result.suggested.threshold == 65
    assert result.suggested.precision == 1.0


def test_when_good_leads_never_come_through_the_advice_is_to_lower() -> None:
    few = [Sample(30, Outcome.ACCEPTED), Sample(35, Outcome.WON), Sample(20, Outcome.REJECTED)]
    result = calibrate(few, current_threshold=50)
    assert result.suggested is not None and result.suggested.threshold == 30
    assert result.advice.startswith("lower the SQL threshold from 50 to 30")


def test_without_outcomes_nothing_is_suggested() -> None:
    assert calibrate([]).suggested is None
    none_good = calibrate([Sample(70, Outcome.REJECTED)], current_threshold=50)
    assert none_good.suggested is None
    assert "no accepted SQLs or won deals yet" in none_good.advice


def test_calibration_is_a_pure_function_of_its_samples() -> None:
    assert calibrate(SAMPLES).to_dict() == calibrate(list(reversed(SAMPLES))).to_dict()


@pytest.mark.parametrize(("text", "expected"), [
    ("accepted", Outcome.ACCEPTED), ("SQL accepted", Outcome.ACCEPTED), ("sql_accepted", Outcome.ACCEPTED),
    ("deal_won", Outcome.WON), ("Won", Outcome.WON), ("closed-won", Outcome.WON),
    ("closed-lost", Outcome.LOST), ("Deal lost", Outcome.LOST), (" lost ", Outcome.LOST),
    ("rejected", Outcome.REJECTED), ("SQL-Rejected", Outcome.REJECTED),
])
def test_outcome_spellings_are_understood(text: str, expected: Outcome) -> None:
    assert Outcome.parse(text) is expected


@pytest.mark.parametrize("text", ["", "maybe", "won't", "accepted later", "sql_", "closed"])
def test_an_outcome_spelling_it_does_not_know_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        Outcome.parse(text)


def test_outcomes_load_from_csv_and_json(tmp_path: Path) -> None:
    csv_file = tmp_path / "outcomes.csv"
    csv_file.write_text("email,score,outcome\na@x.example,72,accepted\nb@x.example,41.5,sql_rejected\n")
    json_file = tmp_path / "outcomes.json"
    json_file.write_text(json.dumps({"samples": [{"score": 72, "outcome": "won", "id": "p1"}]}))
    assert load_outcomes(csv_file) == [Sample(72, Outcome.ACCEPTED, "a@x.example"),
                                       Sample(41.5, Outcome.REJECTED, "b@x.example")]
    assert load_outcomes(json_file) == [Sample(72, Outcome.WON, "p1")]


def test_a_bad_outcome_row_names_its_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "outcomes.csv"
    bad.write_text("score,outcome\n70,accepted\n65,maybe\n")
    with pytest.raises(ConfigError) as caught:
        load_outcomes(bad)
    assert (caught.value.line, caught.value.key) == (3, "outcome")
    assert "unknown outcome 'maybe'" in str(caught.value)


def test_a_bad_json_item_names_its_index(tmp_path: Path) -> None:
    bad = tmp_path / "outcomes.json"
    bad.write_text('[{"score": 70, "outcome": "won"}, {"score": "high", "outcome": "won"}]')
    with pytest.raises(ConfigError) as caught:
        load_outcomes(bad)
    assert caught.value.key == "1.score"


def test_a_csv_without_the_needed_columns_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "outcomes.csv"
    bad.write_text("email,result\na@x.example,won\n")
    with pytest.raises(ConfigError, match="missing: score, outcome"):
        load_outcomes(bad)


def test_score_calibrate_prints_bands_and_a_suggestion_without_touching_the_model(tmp_path: Path) -> None:
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("score,outcome\n" + "".join(f"{s.score},{s.outcome.value}\n" for s in SAMPLES))
    model = EXAMPLES / "default.yaml"
    before = model.read_bytes()
    result = CliRunner().invoke(app, ["score", "calibrate", "--outcomes", str(outcomes), "--model", str(model)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Conversion by score band" in result.output
    assert "60 (suggested)" in result.output and "50 (current)" in result.output
    assert "raise the SQL threshold from 50 to 60" in result.output
    assert model.read_bytes() == before


def test_score_calibrate_json(tmp_path: Path) -> None:
    outcomes = tmp_path / "outcomes.json"
    outcomes.write_text(json.dumps([{"score": s.score, "outcome": s.outcome.value} for s in SAMPLES]))
    result = CliRunner().invoke(app, ["score", "calibrate", "-o", str(outcomes), "--threshold", "50",
                                      "--format", "json"])
    assert json.loads(result.stdout)["suggested"]["threshold"] == 60


def test_score_calibrate_on_a_bad_file_exits_with_the_config_error_code(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["score", "calibrate", "--outcomes", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2
    assert "missing.csv: file not found" in result.output


def _funnel() -> list[Sample]:
    """Scores 10..100: above 70 mostly won, 40-70 accepted then lost, below 40 rejected."""
    samples = []
    for score in range(10, 101, 5):
        outcome = Outcome.WON if score > 70 else (Outcome.LOST if score >= 40 else Outcome.REJECTED)
        samples.append(Sample(float(score), outcome))
    return samples


def test_precision_against_won_deals_counts_only_won() -> None:
    result = calibrate(_funnel(), step=10, current_threshold=50)
    at_50 = next(c for c in result.candidates if c.threshold == 50)
    selected = [s for s in _funnel() if s.score >= 50]
    assert at_50.selected == len(selected)
    assert at_50.won == sum(1 for s in selected if s.outcome is Outcome.WON)
    assert at_50.won_precision == pytest.approx(at_50.won / at_50.selected)
    assert result.to_dict()["current"]["won_precision"] == pytest.approx(at_50.won_precision, abs=1e-4)


def test_a_target_volume_picks_the_threshold_that_would_have_given_it() -> None:
    data = _funnel()
    result = calibrate(data, step=10, target_volume=5)
    assert result.suggested is not None and result.suggested.selected == 5
    assert result.suggested.threshold == 80  # 80, 85, ..., 100 -> 5 SQLs
    tie = calibrate(data, step=10, target_volume=6)  # 5 SQLs at 80 or 7 at 70: the better precision wins
    assert tie.suggested is not None and tie.suggested.threshold == 80
    strict = calibrate(data, step=10, target_volume=15, min_precision=0.9)
    assert strict.suggested is not None and strict.suggested.precision >= 0.9  # volume gives way to precision
    assert "closest to 15 SQLs" in strict.objective
