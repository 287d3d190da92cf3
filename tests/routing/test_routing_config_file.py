"""A routing file is configuration: every mistake is reported with its file, line and key."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from routing_helpers import line_of

from crmbridge.errors import ConfigError
from crmbridge.routing import RoutingConfig, load_routing

GOOD = """
teams:
  emea: [dana@lumen.example]
sellers:
  dana@lumen.example:
    weight: 2
    daily_cap: 5
    timezone: Europe/Berlin
    out_of_office: [{from: 2025-08-01, to: 2025-08-15}, 2025-12-24]
    working_hours: {days: [Monday, tue, WED], from: "08:30", to: "24:00"}
rules:
  - {name: rr, kind: round_robin, team: emea, window: 14d}
"""


def error_in(tmp_path: Path, text: str, needle: str, key: str | None) -> ConfigError:
    """Load ``text`` from a file and check the error names that file, the line holding ``needle``, and ``key``."""
    path = tmp_path / "routing.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_routing(path)
    err = caught.value
    line = line_of(text, needle)
    assert (err.file, err.line, err.key) == (str(path), line, key)
    assert str(err).startswith(f"{path}:{line}: " + (f"{key}: " if key else ""))
    return err


def test_a_good_file_loads_with_its_settings(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(GOOD, encoding="utf-8")
    config = load_routing(path)
    dana = config.sellers["dana@lumen.example"]
    assert (dana.weight, dana.daily_cap, dana.timezone) == (2, 5, "Europe/Berlin")
    assert [(o.start, o.last) for o in dana.out_of_office] == [(date(2025, 8, 1), date(2025, 8, 15)),
                                                                (date(2025, 12, 24), date(2025, 12, 24))]
    assert dana.working_hours is not None
    assert (dana.working_hours.days, dana.working_hours.start, dana.working_hours.end) == (
        ("mon", "tue", "wed"), 8 * 60 + 30, 24 * 60)
    assert config.rules[0].window == timedelta(days=14)
    assert config.source == str(path)


def test_an_empty_file_is_the_fallback_alone(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    config = load_routing(path)
    assert config.rules == () and config.fallback.mode == "claim"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    err = error_in(tmp_path, "teamz:\n  emea: []\n", "teamz", "teamz")
    assert "Extra inputs are not permitted" in err.message


def test_unknown_rule_kind_names_the_known_ones(tmp_path: Path) -> None:
    text = """
rules:
  - name: ok
    kind: round_robin
  - name: emea
    kind: teritory
"""
    err = error_in(tmp_path, text, "teritory", "rules.1.kind")
    assert err.message == ("unknown rule kind 'teritory' "
                           "(known: account_owner, claim, fixed, round_robin, segment, territory)")


def test_rule_without_a_kind(tmp_path: Path) -> None:
    err = error_in(tmp_path, "rules:\n  - name: emea\n    team: emea\n", "- name: emea", "rules.0")
    assert "missing 'kind'" in err.message


def test_unknown_key_in_a_rule(tmp_path: Path) -> None:
    text = "rules:\n  - name: rr\n    kind: round_robin\n    teem: emea\n"
    error_in(tmp_path, text, "teem", "rules.0.teem")


def test_unknown_condition(tmp_path: Path) -> None:
    text = "rules:\n  - name: big\n    kind: segment\n    owner: '1'\n    when:\n      headcount: {min: 50}\n"
    error_in(tmp_path, text, "headcount", "rules.0.when.headcount")


def test_unknown_time_zone(tmp_path: Path) -> None:
    text = "sellers:\n  dana@lumen.example:\n    timezone: Europe/Berlinn\n"
    err = error_in(tmp_path, text, "Berlinn", "sellers.dana@lumen.example.timezone")
    assert "unknown time zone 'Europe/Berlinn'" in err.message


def test_bad_date_in_out_of_office(tmp_path: Path) -> None:
    text = "sellers:\n  dana@lumen.example:\n    out_of_office:\n      - {from: 2025-02-30}\n"
    err = error_in(tmp_path, text, "2025-02-30", "sellers.dana@lumen.example.out_of_office.0.from")
    assert err.message == "invalid value '2025-02-30': day is out of range for month"


def test_out_of_office_that_ends_before_it_starts(tmp_path: Path) -> None:
    text = "sellers:\n  dana@lumen.example:\n    out_of_office:\n      - {from: 2025-08-15, to: 2025-08-01}\n"
    err = error_in(tmp_path, text, "2025-08-15", "sellers.dana@lumen.example.out_of_office.0")
    assert "'to' (2025-08-01) is before 'from' (2025-08-15)" in err.message


def test_weight_must_be_above_zero(tmp_path: Path) -> None:
    text = "sellers:\n  dana@lumen.example:\n    weight: 0\n"
    err = error_in(tmp_path, text, "weight", "sellers.dana@lumen.example.weight")
    assert "greater than 0" in err.message


def test_daily_cap_must_be_at_least_one(tmp_path: Path) -> None:
    text = "sellers:\n  dana@lumen.example:\n    daily_cap: 0\n"
    err = error_in(tmp_path, text, "daily_cap", "sellers.dana@lumen.example.daily_cap")
    assert "greater than or equal to 1" in err.message


def test_a_numeric_user_id_keeps_its_line(tmp_path: Path) -> None:
    text = "sellers:\n  48213:\n    weight: -1\n"
    error_in(tmp_path, text, "weight", "sellers.48213.weight")


def test_unquoted_time_of_day_is_refused_with_a_hint(tmp_path: Path) -> None:
    text = "sellers:\n  dana@lumen.example:\n    working_hours: {from: '09:00',\n                    to: 17:30}\n"
    err = error_in(tmp_path, text, "to: 17:30", "sellers.dana@lumen.example.working_hours.to")
    assert "write times in quotes" in err.message


def test_working_hours_that_end_before_they_start(tmp_path: Path) -> None:
    text = "sellers:\n  dana@lumen.example:\n    working_hours: {from: '18:00', to: '09:00'}\n"
    err = error_in(tmp_path, text, "working_hours", "sellers.dana@lumen.example.working_hours")
    assert "shifts across midnight are not supported" in err.message


def test_unknown_weekday(tmp_path: Path) -> None:
    text = "sellers:\n  dana@lumen.example:\n    working_hours:\n      days: [mon, tus]\n      from: '09:00'\n" \
           "      to: '17:00'\n"
    err = error_in(tmp_path, text, "days", "sellers.dana@lumen.example.working_hours.days")
    assert "unknown weekday 'tus'" in err.message


@pytest.mark.parametrize(("text", "needle", "key"), [
    ("rules:\n  - {name: rr, kind: round_robin,\n     team: emea}\n", "team: emea", "rules.0.team"),
    ("teams: {na: []}\nsellers:\n  dana@lumen.example:\n    teams: [na, emea]\n", "teams: [na",
     "sellers.dana@lumen.example.teams.1"),
    ("fallback:\n  mode: claim\n  team: emea\n", "team: emea", "fallback.team"),
])
def test_every_referenced_team_must_be_declared(tmp_path: Path, text: str, needle: str, key: str) -> None:
    err = error_in(tmp_path, text, needle, key)
    assert "unknown team 'emea'" in err.message


def test_unknown_size_band(tmp_path: Path) -> None:
    text = """
size_bands:
  smb: {max: 199}
rules:
  - name: big
    kind: segment
    owner: "1"
    when:
      size_band: enterprize
"""
    err = error_in(tmp_path, text, "enterprize", "rules.0.when.size_band")
    assert err.message == "unknown size band 'enterprize' (declared under size_bands: smb)"


def test_size_band_with_min_above_max(tmp_path: Path) -> None:
    text = "size_bands:\n  mid: {min: 1000, max: 200}\n"
    err = error_in(tmp_path, text, "mid", "size_bands.mid")
    assert "min (1000) is above max (200)" in err.message


def test_territory_needs_conditions(tmp_path: Path) -> None:
    text = "rules:\n  - name: emea\n    kind: territory\n    owner: '1'\n    when: {}\n"
    err = error_in(tmp_path, text, "when", "rules.0.when")
    assert err.message == "a territory rule needs at least one condition"


def test_territory_without_conditions_at_all(tmp_path: Path) -> None:
    text = "rules:\n  - name: emea\n    kind: territory\n    owner: '1'\n"
    err = error_in(tmp_path, text, "- name: emea", "rules.0.when")
    assert "Field required" in err.message


def test_territory_routes_to_exactly_one_target(tmp_path: Path) -> None:
    text = "teams: {emea: []}\nrules:\n  - name: emea\n    kind: territory\n    when: {region: EMEA}\n" \
           "    team: emea\n    pool: ['1']\n"
    err = error_in(tmp_path, text, "pool", "rules.0.pool")
    assert "exactly one of owner, team or pool (got team, pool)" in err.message


def test_territory_without_a_target(tmp_path: Path) -> None:
    text = "rules:\n  - name: emea\n    kind: segment\n    when: {region: EMEA}\n"
    err = error_in(tmp_path, text, "kind: segment", "rules.0.kind")
    assert "(got none)" in err.message


def test_rule_names_are_unique(tmp_path: Path) -> None:
    text = "rules:\n  - {name: rr, kind: round_robin}\n  - {name: rr, kind: claim}\n"
    err = error_in(tmp_path, text, "kind: claim", "rules.1.name")
    assert err.message == "duplicate rule name 'rr' (also rule 0)"


def test_fallback_is_a_reserved_rule_name(tmp_path: Path) -> None:
    err = error_in(tmp_path, "rules:\n  - {name: fallback, kind: claim}\n", "fallback", "rules.0.name")
    assert "reserved" in err.message


def test_fallback_owner_mode_needs_an_owner(tmp_path: Path) -> None:
    err = error_in(tmp_path, "fallback:\n  mode: owner\n", "mode: owner", "fallback.mode")
    assert "needs an owner" in err.message


def test_window_must_be_a_duration(tmp_path: Path) -> None:
    err = error_in(tmp_path, "window: a month\n", "window", "window")
    assert "is not a duration" in err.message


def test_unquoted_norway_is_caught_instead_of_matching_nothing(tmp_path: Path) -> None:
    text = "rules:\n  - name: nordics\n    kind: territory\n    owner: '1'\n    when:\n      country: [SE, NO]\n"
    err = error_in(tmp_path, text, "country", "rules.0.when.country")
    assert "'NO' for Norway" in err.message


def test_availability_is_one_of_three_levels(tmp_path: Path) -> None:
    text = "rules:\n  - name: rr\n    kind: round_robin\n    availability: always\n"
    err = error_in(tmp_path, text, "availability", "rules.0.availability")
    assert "available_now" in err.message


def test_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    err = error_in(tmp_path, "- rules\n", "- rules", None)
    assert "a routing file is a YAML mapping" in err.message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("rules:\n  - {name: rr, kind: round_robin\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_routing(path)
    assert caught.value.file == str(path) and caught.value.line is not None
    assert "invalid YAML" in str(caught.value)


def test_a_missing_file_is_named() -> None:
    with pytest.raises(ConfigError, match=r"nowhere/routing\.yaml: file not found"):
        load_routing("nowhere/routing.yaml")


def test_configs_from_text_name_their_source() -> None:
    with pytest.raises(ConfigError) as caught:
        RoutingConfig.from_text("window: 0d\n", name="inline.yaml")
    assert str(caught.value) == "inline.yaml:1: window: Value error, the window must be longer than zero"
