"""A scoring model is configuration: every mistake is reported with its file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from scoring_helpers import EXAMPLES, MINIMAL, line_of, model_from

from crmbridge.errors import ConfigError
from crmbridge.scoring import ScoringModel


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        model_from(text)
    return caught.value


def test_shipped_default_model_loads() -> None:
    model = ScoringModel.load(EXAMPLES / "default.yaml")
    assert model.name == "playbook-default"
    assert model.sql_threshold == 50


def test_unknown_field_names_file_line_and_key() -> None:
    text = MINIMAL + """
fit:
  company:
    - id: size
      when: {headcount: {min: 50}}
      points: 10
"""
    err = error_of(text)
    line = line_of(text, "headcount")
    assert (err.file, err.line, err.key) == ("model.yaml", line, "fit.company.0.when.headcount")
    assert str(err) == f"model.yaml:{line}: fit.company.0.when.headcount: unknown company field 'headcount'"


def test_unknown_operator_is_named_with_the_known_ones() -> None:
    err = error_of(MINIMAL + """
fit:
  company:
    - id: size
      when: {employees: {atleast: 50}}
      points: 10
""")
    assert err.key == "fit.company.0.when.employees.atleast"
    assert "unknown operator 'atleast'" in err.message and "min" in err.message


def test_invalid_regular_expression_points_at_the_pattern() -> None:
    text = MINIMAL + """
engagement:
  - id: pricing
    kind: page_view
    where: {url: {matches: '/pricing('}}
    points: 5
"""
    err = error_of(text)
    assert err.key == "engagement.0.where.url.matches"
    assert err.line == line_of(text, "/pricing(")
    assert "invalid regular expression" in err.message


def test_missing_required_key_is_reported_where_its_parent_stands() -> None:
    text = MINIMAL + """
engagement:
  - id: pricing
    kind: page_view
"""
    err = error_of(text)
    assert err.key == "engagement.0.points"
    assert err.line == line_of(text, "- id: pricing")
    assert "Field required" in err.message


def test_unknown_activity_kind_is_rejected() -> None:
    text = MINIMAL + """
engagement:
  - id: tweet
    kind: tweet
    points: 5
"""
    err = error_of(text)
    assert err.key == "engagement.0.kind"
    assert err.line == line_of(text, "kind: tweet")


def test_negative_rule_with_positive_points_is_rejected() -> None:
    err = error_of(MINIMAL + """
negative:
  - id: student
    when: {seniority: student}
    points: 30
""")
    assert err.key == "negative.0.points"
    assert "points < 0" in err.message


def test_sql_without_an_engagement_minimum_is_rejected() -> None:
    text = MINIMAL.replace("engagement_min: 10", "engagement_min: 0")
    err = error_of(text)
    assert err.key == "thresholds.sql.engagement_min"
    assert err.line == line_of(text, "engagement_min")


def test_duplicate_rule_ids_name_both_places() -> None:
    err = error_of(MINIMAL + """
fit:
  company:
    - {id: size, when: {employees: {min: 50}}, points: 10}
negative:
  - {id: size, when: {employees: {max: 4}}, points: -10}
""")
    assert err.key == "negative.0.id"
    assert "fit.company.0.id" in err.message


def test_unknown_list_is_named_with_the_defined_ones() -> None:
    err = error_of(MINIMAL + """
lists:
  free_mail: [gmail.com]
negative:
  - {id: free_mail, when: {email_domain: {in_list: freemail}}, points: -10}
""")
    assert err.key == "negative.0.when.email_domain.in_list"
    assert "free_mail" in err.message


def test_committee_roles_must_be_defined_personas() -> None:
    err = error_of(MINIMAL + """
personas:
  - {role: decision_maker, when: {seniority: [executive, vp]}}
  - {role: champion, when: {seniority: manager}}
  - {role: influencer, when: {seniority: senior}}
account:
  committee: [decision_maker, champion, budget_holder]
""")
    assert err.key == "account.committee.2"
    assert "budget_holder" in err.message


def test_buying_committee_has_three_to_six_roles() -> None:
    err = error_of(MINIMAL + """
account:
  committee: [decision_maker, champion]
""")
    assert err.key == "account.committee"


def test_persona_rules_cannot_use_the_persona_they_assign() -> None:
    err = error_of(MINIMAL + """
personas:
  - {role: decision_maker, when: {persona: champion}}
""")
    assert err.key == "personas.0.when.persona"


def test_bad_duration_is_reported_at_its_key() -> None:
    err = error_of(MINIMAL + """
decay:
  half_life: thirty days
""")
    assert err.key == "decay.half_life"
    assert "not a duration" in err.message


def test_invalid_yaml_names_the_line() -> None:
    err = error_of("name: test\nthresholds: [unclosed\n")
    assert err.file == "model.yaml"
    assert err.line is not None
    assert "invalid YAML" in err.message


def test_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        ScoringModel.load(tmp_path / "nope.yaml")
    assert "file not found" in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_model_must_be_a_mapping() -> None:
    err = error_of("- just\n- a list\n")
    assert "YAML mapping" in err.message


def test_model_fingerprint_is_stable_and_tracks_content() -> None:
    first = model_from(MINIMAL)
    assert first.fingerprint == model_from(MINIMAL).fingerprint
    assert first.fingerprint != model_from(MINIMAL.replace("total_min: 50", "total_min: 60")).fingerprint


def test_model_can_be_built_from_a_dict() -> None:
    model = ScoringModel.from_dict({"name": "x", "thresholds": {"mql": {"fit_min": 1},
                                                                "sql": {"total_min": 5, "engagement_min": 1}}})
    assert model.sql_threshold == 5
    with pytest.raises(ConfigError) as caught:
        ScoringModel.from_dict({"name": "x"})
    assert caught.value.key == "thresholds"
