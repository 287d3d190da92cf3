"""Persona cases: `crmbridge score test` checks a model reproduces the team's ranking and stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from scoring_helpers import AS_OF, EXAMPLES, line_of
from typer.testing import CliRunner

from crmbridge.errors import ConfigError
from crmbridge.scoring import ScoringModel, run_cases
from crmbridge.scoring.cli import score_app

app = typer.Typer()
app.add_typer(score_app, name="score")
DEFAULT = str(EXAMPLES / "default.yaml")
PERSONAS = str(EXAMPLES / "personas.yaml")

TWO_PERSONAS = """
as_of: 2025-03-03T09:00:00Z
personas:
  - id: hot
    person: {email: a@northwind.example, title: VP Sales, seniority: vp, department: sales}
    company: {domain: northwind.example, industry: software, employees: 300}
    activities:
      - {kind: content_download, age: 2d, content_type: buyers_guide}
      - {kind: page_view, age: 3d, url: /pricing, count: 2}
    expect: {stage: sql}
  - id: cold
    person: {email: b@gmail.com, title: Student, seniority: student}
    expect: {stage: [lead, subscriber], max_score: 0}
expect_order: [hot, cold]
"""


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["score", *args], env={"COLUMNS": "200"})


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_playbook_personas_rank_as_the_team_expects(default_model: ScoringModel) -> None:
    report = run_cases(default_model, PERSONAS)
    assert report.passed, [c for c in report.checks if not c.passed]
    ranked = sorted(report.personas, key=lambda p: -p.score.total)
    assert [p.id for p in ranked] == ["average_company_very_active", "interesting_company_wrong_person",
                                      "perfect_company_inactive", "student_three_guides"]
    assert len([c for c in report.checks if c.subject == "order"]) == 3


def test_ages_count_back_from_the_moment_given(default_model: ScoringModel, tmp_path: Path) -> None:
    cases = write(tmp_path, "cases.yaml", TWO_PERSONAS)
    here = run_cases(default_model, cases)
    later = run_cases(default_model, cases, AS_OF.replace(year=2030))
    assert here.as_of == AS_OF and later.as_of.year == 2030
    assert [p.score.total for p in here.personas] == [p.score.total for p in later.personas]


def test_count_repeats_an_activity(default_model: ScoringModel, tmp_path: Path) -> None:
    report = run_cases(default_model, write(tmp_path, "cases.yaml", TWO_PERSONAS))
    assert report.personas[0].score.reasons.by_rule()["pricing_page"].occurrences == 2


def test_score_test_passes_with_exit_code_zero() -> None:
    result = invoke("test", "--model", DEFAULT, "--cases", PERSONAS)
    assert result.exit_code == 0, result.output
    assert "average_company_very_active" in result.output
    assert "PASS" in result.output and "FAIL" not in result.output
    assert "11 passed, 0 failed" in result.output


def test_a_failed_expectation_is_shown_and_exits_non_zero(tmp_path: Path) -> None:
    cases = write(tmp_path, "cases.yaml", TWO_PERSONAS.replace("expect_order: [hot, cold]",
                                                                "expect_order: [cold, hot]"))
    result = invoke("test", "--model", DEFAULT, "--cases", cases)
    assert result.exit_code == 1
    assert "FAIL" in result.output and "cold ranks above hot" in result.output
    assert "1 failed" in result.output


def test_json_output_lists_personas_and_checks(tmp_path: Path) -> None:
    result = invoke("test", "--model", DEFAULT, "--cases", write(tmp_path, "c.yaml", TWO_PERSONAS),
                    "--format", "json")
    data = json.loads(result.stdout)
    assert data["passed"] is True
    assert [p["id"] for p in data["personas"]] == ["hot", "cold"]
    assert data["personas"][0]["stage"] == "sql"


def test_a_bad_case_file_names_file_line_and_key(tmp_path: Path) -> None:
    text = TWO_PERSONAS.replace("seniority: student", "senority: student")
    cases = write(tmp_path, "cases.yaml", text)
    result = invoke("test", "--model", DEFAULT, "--cases", cases)
    assert result.exit_code == 2
    line = line_of(text, "senority")
    assert f"{cases}:{line}: personas.1.person.senority: Extra inputs are not permitted" in result.output


def test_an_activity_needs_an_age_or_a_time(default_model: ScoringModel, tmp_path: Path) -> None:
    text = TWO_PERSONAS.replace("age: 2d, ", "")
    with pytest.raises(ConfigError) as caught:
        run_cases(default_model, write(tmp_path, "cases.yaml", text))
    assert caught.value.key == "personas.0.activities.0"
    assert caught.value.line == line_of(text, "buyers_guide")


def test_expect_order_must_name_known_personas(default_model: ScoringModel, tmp_path: Path) -> None:
    text = TWO_PERSONAS.replace("[hot, cold]", "[hot, lukewarm]")
    with pytest.raises(ConfigError) as caught:
        run_cases(default_model, write(tmp_path, "cases.yaml", text))
    assert (caught.value.key, caught.value.line) == ("expect_order.1", line_of(text, "lukewarm"))


def test_a_bad_model_file_names_file_line_and_key(tmp_path: Path) -> None:
    model = write(tmp_path, "model.yaml", Path(DEFAULT).read_text().replace("points: 50\n    cap: 50",
                                                                             "points: fifty\n    cap: 50", 1))
    result = invoke("test", "--model", model, "--cases", PERSONAS)
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(Path(model).read_text().splitlines(), 1) if "fifty" in text)
    assert f"{model}:{line}: engagement.0.points" in result.output


def test_missing_files_are_clear_errors(tmp_path: Path) -> None:
    result = invoke("test", "--model", DEFAULT, "--cases", str(tmp_path / "none.yaml"))
    assert result.exit_code == 2
    assert "none.yaml: file not found" in result.output


def test_a_bad_as_of_is_rejected() -> None:
    result = invoke("test", "--model", DEFAULT, "--cases", PERSONAS, "--as-of", "yesterday")
    assert result.exit_code == 2
    assert "not an ISO timestamp" in result.output
