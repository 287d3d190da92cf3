"""The examples in docs/scoring.md are real: the complete model loads and the case file runs."""

from __future__ import annotations

import re
from pathlib import Path

from scoring_helpers import ROOT

from crmbridge.scoring import ScoringModel
from crmbridge.scoring.cases import run_case_text

DOC = (ROOT / "docs" / "scoring.md").read_text(encoding="utf-8")


def yaml_block_after(heading: str) -> str:
    section = DOC[DOC.index(heading):]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match, f"no YAML block after {heading!r}"
    return match.group(1)


def test_the_complete_example_model_loads() -> None:
    model = ScoringModel.from_text(yaml_block_after("## A complete example"), name="docs")
    assert model.name == "acme-icp"


def test_the_documented_case_file_runs_against_the_default_model(default_model: ScoringModel) -> None:
    report = run_case_text(default_model, yaml_block_after("## Testing a model: persona cases"))
    assert report.passed, report.failures
    assert report.warnings == ()
    assert [p.id for p in report.personas] == ["average_company_very_active", "engaged_customer", "rejected_sql",
                                               "student"]
    assert [p.final.value for p in report.personas] == ["lead", "customer", "lead", "lead"]
    assert {c.subject for c in report.checks if c.subject.startswith("order")} == {
        "order activity_first", "order fresh_interest_first"}


def test_every_example_file_is_referenced_from_the_docs() -> None:
    for path in sorted((ROOT / "examples" / "scoring").glob("*.yaml")):
        assert f"examples/scoring/{Path(path).name}" in DOC

