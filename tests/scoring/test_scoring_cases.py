"""Persona cases: `crmbridge score test` checks a model reproduces the team's ranking and stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from scoring_helpers import AS_OF, EXAMPLES, line_of
from typer.testing import CliRunner

from crmbridge.errors import ConfigError
from crmbridge.model import LifecycleStage
from crmbridge.scoring import ScoringModel, run_cases
from crmbridge.scoring.cases import explain_case, run_case_text
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
    assert [p.id for p in ranked] == ["engaged_customer", "average_company_very_active", "free_mail_hand_raiser",
                                      "interesting_company_wrong_person", "perfect_company_inactive",
                                      "student_three_guides"]
    assert [c.subject for c in report.checks if c.subject.startswith("order")] == \
        ["order activity_beats_demographics"] * 3 + ["order a_raised_hand_beats_reading"]
    assert report.warnings == ()


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
    assert "18 passed, 0 failed" in result.output


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


# --- stages after the lifecycle policy ---------------------------------------------------------------

CUSTOMER = """
as_of: 2025-03-03T09:00:00Z
personas:
  - id: customer
    person: {email: a@northwind.example, title: VP Sales, seniority: vp, department: sales,
             lifecycle_stage: customer}
    company: {domain: northwind.example, industry: software, employees: 300, region: EMEA}
    activities:
      - {kind: content_download, age: 2d, content_type: buyers_guide}
    expect: {proposed: sql, stage: customer}
"""


def test_a_case_expects_the_stage_after_the_lifecycle_policy(default_model: ScoringModel) -> None:
    report = run_case_text(default_model, CUSTOMER, name="cases.yaml")
    assert report.passed, report.failures
    customer = report.personas[0]
    assert (customer.score.stage, customer.final) == (LifecycleStage.SQL, LifecycleStage.CUSTOMER)
    assert customer.lifecycle == ("held at customer: scoring never moves opportunity, customer or evangelist "
                                  "(proposed: SQL)")
    assert [(c.expectation, c.passed) for c in report.checks] == [("stage is customer", True),
                                                                  ("model proposes sql", True)]
    data = report.to_dict()["personas"][0]
    assert (data["stage"], data["proposed"], data["current_stage"]) == ("customer", "sql", "customer")


def test_a_stage_the_policy_forbids_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = CUSTOMER.replace("expect: {proposed: sql, stage: customer}", "expect: {proposed: sql, stage: sql}")
    cases = write(tmp_path, "cases.yaml", text)
    result = invoke("test", "--model", DEFAULT, "--cases", cases)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert (f"{cases}:{line_of(text, 'expect:')}: personas.0.expect.stage: expects sql, which can never hold: "
            "from current stage customer the lifecycle policy only ever gives customer") in said


def test_a_proposal_the_model_never_makes_is_an_error(default_model: ScoringModel) -> None:
    text = CUSTOMER.replace("proposed: sql", "proposed: [customer, opportunity]")
    with pytest.raises(ConfigError) as caught:
        run_case_text(default_model, text, name="cases.yaml")
    assert caught.value.key == "personas.0.expect.proposed"
    assert caught.value.line == line_of(text, "expect:")
    assert "expects opportunity or customer, which can never hold: the model only ever proposes lead, mql or sql" \
        in caught.value.message


def test_an_expectation_that_always_holds_is_a_warning(tmp_path: Path) -> None:
    text = CUSTOMER.replace("expect: {proposed: sql, stage: customer}", "expect: {stage: {not: sql}}")
    cases = write(tmp_path, "cases.yaml", text)
    result = invoke("test", "--model", DEFAULT, "--cases", cases, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["warnings"] == [
        f"{cases}:{line_of(text, 'expect:')}: personas.0.expect.stage: expects not sql, which holds whatever the "
        "score: from current stage customer the lifecycle policy only ever gives customer"]
    table = invoke("test", "--model", DEFAULT, "--cases", cases)
    assert "warning:" in table.output and "holds whatever the score" in table.output


def test_a_rejected_sql_without_new_engagement_is_recycled(default_model: ScoringModel) -> None:
    text = """
as_of: 2025-03-03T09:00:00Z
personas:
  - id: rejected
    person: {email: a@northwind.example, title: VP Sales, seniority: vp, lifecycle_stage: sql}
    company: {domain: northwind.example, employees: 300, region: EMEA}
    activities: [{kind: content_download, age: 3w, content_type: buyers_guide}]
    rejected: {age: 1w}
    expect: {stage: lead, proposed: mql}
  - id: came_back
    person: {email: b@northwind.example, title: VP Sales, seniority: vp, lifecycle_stage: sql}
    company: {domain: northwind.example, employees: 300, region: EMEA}
    activities: [{kind: content_download, age: 2d, content_type: buyers_guide}]
    rejected: {age: 1w}
    expect: {stage: sql}
"""
    report = run_case_text(default_model, text)
    assert report.passed, report.failures
    assert report.personas[0].lifecycle is not None and report.personas[0].lifecycle.startswith("recycled to lead")


# --- negation and sets of stages ---------------------------------------------------------------------

@pytest.mark.parametrize(("stage", "passes"), [("{not: sql}", True), ("{not: [lead, mql]}", False),
                                               ("[lead, mql]", True), ("[sql, opportunity]", False),
                                               ("LEAD", True), ("{not: SQL}", True)])
def test_a_stage_can_be_negated_or_one_of_several(default_model: ScoringModel, stage: str, passes: bool) -> None:
    text = TWO_PERSONAS.replace("expect: {stage: [lead, subscriber], max_score: 0}", f"expect: {{stage: {stage}}}")
    check = next(c for c in run_case_text(default_model, text).checks if c.subject == "cold")
    assert check.passed is passes
    assert check.detail == "stage lead"


def test_a_negated_stage_reads_as_written(default_model: ScoringModel) -> None:
    text = TWO_PERSONAS.replace("expect: {stage: sql}", "expect: {stage: {not: [mql, lead]}}")
    check = next(c for c in run_case_text(default_model, text).checks if c.subject == "hot")
    assert (check.expectation, check.passed) == ("stage is not lead or mql", True)


@pytest.mark.parametrize(("stage", "message"), [
    ("sqll", "unknown stage 'sqll' (known: subscriber, lead, mql, sql, opportunity, customer, evangelist, other)"),
    ("{nott: sql}", "a mapping takes only 'not'"),
    ("[]", "the list is empty"),
    ("{not: [sql, 3]}", "expected a stage, a list of stages (any of them), or {not: stage or list}"),
])
def test_a_bad_stage_expectation_names_file_line_and_key(default_model: ScoringModel, stage: str,
                                                          message: str) -> None:
    text = TWO_PERSONAS.replace("expect: {stage: [lead, subscriber], max_score: 0}", f"expect: {{stage: {stage}}}")
    with pytest.raises(ConfigError) as caught:
        run_case_text(default_model, text, name="cases.yaml")
    assert (caught.value.file, caught.value.key) == ("cases.yaml", "personas.1.expect.stage")
    assert caught.value.line == line_of(text, f"stage: {stage}")
    assert message in caught.value.message


# --- several rankings --------------------------------------------------------------------------------

THREE = TWO_PERSONAS.replace("expect_order: [hot, cold]\n", "") + """  - id: warm
    person: {email: c@northwind.example, title: VP Sales, seniority: vp, department: sales}
    company: {domain: northwind.example, industry: software, employees: 300}
    activities: [{kind: email_click, age: 1d}]
"""


def test_several_named_rankings_are_each_checked(default_model: ScoringModel) -> None:
    report = run_case_text(default_model, THREE + "expect_order:\n  by_activity: [hot, warm, cold]\n"
                                                  "  fit_first: [warm, hot]\n")
    assert [(c.subject, c.expectation, c.passed) for c in report.checks if c.subject.startswith("order")] == [
        ("order by_activity", "hot ranks above warm", True), ("order by_activity", "warm ranks above cold", True),
        ("order fit_first", "warm ranks above hot", False)]


def test_rankings_can_be_a_list_of_lists(default_model: ScoringModel) -> None:
    report = run_case_text(default_model, THREE + "expect_order:\n  - [hot, cold]\n  - [warm, cold]\n")
    assert [c.subject for c in report.checks if c.subject.startswith("order")] == ["order 1", "order 2"]
    assert report.passed


@pytest.mark.parametrize(("order", "key", "needle", "message"), [
    ("  by_activity: [hot, lukewarm]\n", "expect_order.by_activity.1", "lukewarm", "names unknown persona 'lukewarm'"),
    ("  - [hot, cold]\n  - [warm, warm]\n", "expect_order.1.1", "[warm, warm]", "names persona 'warm' twice"),
    ("  - [hot, cold]\n  - warm\n", "expect_order.1", "- warm", "make every item a list"),
    ("  solo: [hot]\n", "expect_order.solo", "solo", "at least two persona ids"),
])
def test_a_bad_ranking_names_file_line_and_key(default_model: ScoringModel, order: str, key: str, needle: str,
                                               message: str) -> None:
    text = THREE + "expect_order:\n" + order
    with pytest.raises(ConfigError) as caught:
        run_case_text(default_model, text, name="cases.yaml")
    assert (caught.value.key, caught.value.line) == (key, line_of(text, needle))
    assert message in caught.value.message


# --- explaining a persona ----------------------------------------------------------------------------

def explain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str):  # type: ignore[no-untyped-def]
    from crmbridge import cli
    from crmbridge.cli import app as main_app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMBRIDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'store' / 'crmbridge.db'}")
    # The CLI's consoles read their width once, when first imported: COLUMNS alone may come too late.
    monkeypatch.setattr(cli.out, "width", 200)
    monkeypatch.setattr(cli.err, "width", 200)
    return CliRunner().invoke(main_app, ["score", "explain", *args], env={"COLUMNS": "200"})


def test_score_explain_explains_a_case_persona_without_a_database(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    result = explain(tmp_path, monkeypatch, "--cases", PERSONAS, "--model", DEFAULT, "Free mail hand raiser")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "A contact request from a free-mail address, no company (persona free_mail_hand_raiser)" in said
    assert "stage MQL" in said and "hand raised" in said
    assert "Held at MQL: fit -10 < 25 required for SQL (thresholds.sql.requires_fit)" in said
    assert "contact_request" in said and "for SQL" in said
    assert not (tmp_path / "store").exists()


def test_score_explain_of_a_persona_as_json_gives_both_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = explain(tmp_path, monkeypatch, "-c", PERSONAS, "-m", DEFAULT, "engaged_customer", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["id"], data["stage"], data["proposed"], data["current_stage"]) == (
        "engaged_customer", "customer", "sql", "customer")
    assert data["lifecycle"].startswith("held at customer") and data["held_back"] is None
    assert not (tmp_path / "store").exists()


def test_score_explain_of_an_unknown_persona_lists_the_known_ones(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    result = explain(tmp_path, monkeypatch, "--cases", PERSONAS, "--model", DEFAULT, "nobody")
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "no persona 'nobody'" in said and "free_mail_hand_raiser" in said
    assert not (tmp_path / "store").exists()


def test_a_new_record_can_never_be_scored_into_a_stage_sales_owns(default_model: ScoringModel) -> None:
    text = TWO_PERSONAS.replace("expect: {stage: sql}", "expect:\n      stage: [opportunity, customer]")
    with pytest.raises(ConfigError) as caught:
        run_case_text(default_model, text, name="cases.yaml")
    assert (caught.value.key, caught.value.line) == ("personas.0.expect.stage", line_of(text, "[opportunity,"))
    assert caught.value.message == ("expects opportunity or customer, which can never hold: with no current stage "
                                    "the model's proposal stands, and it only ever proposes lead, mql or sql")


def test_explaining_a_persona_does_not_judge_its_expectations(default_model: ScoringModel, tmp_path: Path) -> None:
    cases = write(tmp_path, "cases.yaml", CUSTOMER.replace("expect: {proposed: sql, stage: customer}",
                                                           "expect: {stage: sql}"))
    with pytest.raises(ConfigError):
        run_cases(default_model, cases)
    assert explain_case(default_model, cases, "CUSTOMER").final is LifecycleStage.CUSTOMER
