"""The SLA file is configuration: it resolves calendars and policies as documented, and every mistake names
its file, line and key."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmbridge.errors import ConfigError
from crmbridge.sla.calendar import SlaClock
from crmbridge.sla.config import SlaConfig, Step, ladder_steps, load_sla

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("sla*.yaml"))
DOC = ROOT / "docs" / "sla.md"


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def error_in(tmp_path: Path, text: str, needle: str, key: str) -> ConfigError:
    """Load ``text`` from a file; the error must name that file, the line holding ``needle``, and ``key``."""
    path = tmp_path / "sla.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_sla(path)
    err = caught.value
    assert (err.file, err.line, err.key) == (str(path), line_of(text, needle), key)
    assert str(err).startswith(f"{path}:{err.line}: {key}: ")
    return err


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_file_loads(path: Path) -> None:
    config = load_sla(path)
    assert config.policies and config.source == str(path)


def test_every_yaml_block_in_the_docs_loads() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks
    for block in blocks:
        SlaConfig.from_text(block, name="docs/sla.md")


def test_the_example_resolves_owners_teams_and_managers() -> None:
    config = load_sla(ROOT / "examples" / "sla.yaml")
    jordan = config.calendar_for("7", "Jordan.Hayes@lumen.example", None)
    assert jordan.timezone == "America/Chicago"
    assert jordan.holidays is not None and jordan.holidays.country == "US"  # the na team's calendar underneath
    assert jordan.closed_reason(datetime(2026, 12, 22, 16, tzinfo=UTC)) == "time off (year-end leave)"
    assert config.team_of(None, "jordan.hayes@lumen.example") == "na"
    assert config.manager_of(config.team_of(None, "jordan.hayes@lumen.example")) == "51"
    assert config.manager_of("EMEA") == "anna.berg@lumen.example"
    tomas = config.calendar_for(None, "tomas.novak@lumen.example", "na")
    assert tomas.timezone == "Europe/Berlin" and tomas.hours[4] == ()  # his own four-day week
    assert config.calendar_for(None, "tomas.novak@lumen.example", "na") is tomas  # cached


def test_a_team_without_an_owner_entry_uses_the_team_calendar_and_else_the_default() -> None:
    config = load_sla(ROOT / "examples" / "sla.yaml")
    assert config.calendar_for("99", "new.hire@lumen.example", "na").name == "na"
    assert config.calendar_for(None, None, "apac").name == "emea"
    assert config.calendar_for(None, None, None).name == "emea"
    assert config.team_of("99", None) is None and config.manager_of(None) is None


def test_policy_filters_pick_the_first_policy_per_measure() -> None:
    config = SlaConfig.from_text("""
policies:
  - {name: vip, measure: first_touch, within: 15m, when: {segments: [Enterprise], owners: ["7"]}}
  - {name: inbound, measure: first_touch, within: 60m, when: {teams: [emea], sources: [hubspot]}}
  - {name: anyone, measure: first_touch, within: 4h}
  - {name: meetings, measure: meeting_booked, within: 3d}
""", name="sla.yaml")

    def names(*args: object, **kw: object) -> list[str]:
        return [p.name for p in config.policies_for(*args, **kw)]  # type: ignore[arg-type]

    assert names("emea", "7", "pipedrive", ["enterprise"]) == ["vip", "meetings"]
    assert names("emea", None, "pipedrive", ["enterprise"], owner_email="7") == ["vip", "meetings"]
    assert names("EMEA", "8", "HubSpot", []) == ["inbound", "meetings"]
    assert names("na", "8", "hubspot", []) == ["anyone", "meetings"]
    assert names(None, None, None, []) == ["anyone", "meetings"]


def test_touches_count_sales_activities_by_people_only() -> None:
    config = load_sla(ROOT / "examples" / "sla.yaml")
    assert config.is_touch("call", "7", automated=False)
    assert not config.is_touch("call", "12345", automated=False)  # the integration user
    assert not config.is_touch("email_sent", "7", automated=True)
    assert not config.is_touch("note", "7", automated=False)
    assert config.touches.stage_exit_is_acceptance


def test_the_built_in_default() -> None:
    config = SlaConfig.default()
    cal = config.calendar_for("1", "a@b.example", "emea")
    assert (cal.name, cal.timezone, cal.holidays) == ("default", "UTC", None)
    assert cal.is_open(datetime(2026, 3, 2, 9, tzinfo=UTC)) and not cal.is_open(datetime(2026, 3, 2, 17, tzinfo=UTC))
    first, meeting = config.policies_for(None, None, None, [])
    assert (first.name, first.measure, first.within_minutes) == ("first-touch", "first_touch", 60)
    assert ladder_steps(first) == [Step("remind", 1, fraction=0.75), Step("escalate", 1, fraction=1.0),
                                   Step("reassign", 1, after_breach_minutes=30)]
    assert first.ladder.escalate_to == "manager"
    assert (meeting.name, meeting.within_days, meeting.within_minutes) == ("meeting-booked", 3, None)
    assert [s.kind for s in ladder_steps(meeting)] == ["escalate"]


def test_a_file_without_policies_gets_the_built_in_ones_and_an_empty_list_none() -> None:
    assert [p.name for p in SlaConfig.from_text("version: 1\n").policies] == ["first-touch", "meeting-booked"]
    assert SlaConfig.from_text("policies: []\n").policies == ()


def test_ladder_steps_fall_due_at_their_share_of_business_time() -> None:
    config = load_sla(ROOT / "examples" / "sla.yaml")
    policy = config.policies[0]
    clock = SlaClock(config.calendar_for(None, None, "emea"))
    start = int(datetime(2026, 3, 6, 12, 30, tzinfo=UTC).timestamp() * 1000)  # Friday 13:30 in Berlin
    budget = policy.budget_minutes(clock, start)
    due = {(s.kind, s.seq): datetime.fromtimestamp(s.due_ms(clock, start, budget) / 1000, UTC)
           for s in ladder_steps(policy)}
    assert due == {("remind", 1): datetime(2026, 3, 6, 13, 15, tzinfo=UTC),     # 45 of 60 minutes
                   ("escalate", 1): datetime(2026, 3, 6, 13, 30, tzinfo=UTC),   # the breach, 14:30 in Berlin
                   ("reassign", 1): datetime(2026, 3, 6, 14, 0, tzinfo=UTC),    # Friday's close, not Monday 09:00
                   ("reassign", 2): datetime(2026, 3, 9, 8, 30, tzinfo=UTC)}    # Monday 09:30 in Berlin
    assert policy.due_ms(clock, start) == int(due[("escalate", 1)].timestamp() * 1000)


def test_a_business_day_policy_escalates_at_its_due_instant() -> None:
    config = load_sla(ROOT / "examples" / "sla.yaml")
    policy = config.policies[1]
    clock = SlaClock(config.calendar_for(None, None, "emea"))
    start = int(datetime(2026, 3, 7, 10, tzinfo=UTC).timestamp() * 1000)  # Saturday
    budget = policy.budget_minutes(clock, start)
    assert budget == 3 * 8.5 * 60  # Monday to Wednesday, 09:00-17:30
    (escalate,) = ladder_steps(policy)
    assert escalate.due_ms(clock, start, budget) == policy.due_ms(clock, start)


# -- every mistake names file, line and key -------------------------------------------------------------------

CAL = "calendars:\n  emea:\n"


def test_bad_time_zone(tmp_path: Path) -> None:
    err = error_in(tmp_path, CAL + "    timezone: Europe/Berlinn\n", "Berlinn", "calendars.emea.timezone")
    assert "unknown time zone 'Europe/Berlinn'" in err.message


def test_bad_country(tmp_path: Path) -> None:
    err = error_in(tmp_path, CAL + "    holidays: {country: XX}\n", "XX", "calendars.emea.holidays.country")
    assert "unknown country 'XX'" in err.message


def test_norway_read_as_false_is_explained(tmp_path: Path) -> None:
    err = error_in(tmp_path, CAL + "    holidays: {country: NO}\n", "NO", "calendars.emea.holidays.country")
    assert "quote 'NO' for Norway" in err.message


def test_bad_subdivision_lists_the_known_ones(tmp_path: Path) -> None:
    err = error_in(tmp_path, CAL + "    holidays:\n      country: DE\n      subdivision: XY\n", "XY",
                   "calendars.emea.holidays.subdivision")
    assert "unknown subdivision 'XY' of DE (known: BB, BE," in err.message


def test_unknown_key(tmp_path: Path) -> None:
    err = error_in(tmp_path, CAL + "    timezone: UTC\n    holiday: {country: DE}\n", "holiday:",
                   "calendars.emea.holiday")
    assert "Extra inputs are not permitted" in err.message


def test_unquoted_time_is_explained(tmp_path: Path) -> None:
    text = CAL + "    hours:\n      days: [mon, tue]\n      from: \"09:00\"\n      to: 17:30\n"
    err = error_in(tmp_path, text, "to: 17:30", "calendars.emea.hours.to")
    assert "write times in quotes" in err.message


def test_unquoted_time_in_a_day_entry_is_explained(tmp_path: Path) -> None:
    text = CAL + "    hours:\n      fri: {from: \"09:00\", to: 15:00}\n"
    err = error_in(tmp_path, text, "fri:", "calendars.emea.hours.fri.to")
    assert "write times in quotes" in err.message


def test_overlapping_intervals(tmp_path: Path) -> None:
    text = CAL + "    hours:\n      mon-fri: \"09:00-13:00\"\n      wed: \"12:00-17:00\"\n"
    err = error_in(tmp_path, text, "wed:", "calendars.emea.hours.wed")
    assert err.message == "12:00-17:00 overlaps 09:00-13:00 on wed"


def test_unknown_weekday(tmp_path: Path) -> None:
    err = error_in(tmp_path, CAL + "    hours: {mon-fry: \"09:00-17:00\"}\n", "fry", "calendars.emea.hours.mon-fry")
    assert "unknown weekday 'fry'" in err.message


def test_an_interval_that_ends_before_it_starts(tmp_path: Path) -> None:
    err = error_in(tmp_path, CAL + "    hours: {mon: \"22:00-06:00\"}\n", "22:00", "calendars.emea.hours.mon")
    assert "ends before it starts" in err.message


POLICY = "policies:\n  - name: first-touch\n    measure: first_touch\n"


def test_a_window_of_zero(tmp_path: Path) -> None:
    err = error_in(tmp_path, POLICY + "    within: 0m\n", "within", "policies.0.within")
    assert "the SLA must be longer than zero" in err.message
    err = error_in(tmp_path, POLICY + "    within: 0d\n", "within", "policies.0.within")
    assert "the SLA must be longer than zero" in err.message


def test_a_window_without_a_unit(tmp_path: Path) -> None:
    err = error_in(tmp_path, POLICY + "    within: 60\n", "within", "policies.0.within")
    assert "give a unit, e.g. 60m or 60h" in err.message


def test_a_window_mixing_days_and_hours(tmp_path: Path) -> None:
    err = error_in(tmp_path, POLICY + "    within: 1d4h\n", "within", "policies.0.within")
    assert "whole business days alone" in err.message


def test_a_negative_reassignment_cap(tmp_path: Path) -> None:
    text = POLICY + "    within: 1h\n    ladder:\n      reassign: {after: 30m, max: -1}\n"
    err = error_in(tmp_path, text, "max: -1", "policies.0.ladder.reassign.max")
    assert "greater than or equal to 1" in err.message


def test_escalation_before_the_breach(tmp_path: Path) -> None:
    text = POLICY + "    within: 1h\n    ladder:\n      escalate: {at: 90%}\n"
    err = error_in(tmp_path, text, "at: 90%", "policies.0.ladder.escalate.at")
    assert "100% or more" in err.message


def test_a_share_without_percent(tmp_path: Path) -> None:
    text = POLICY + "    within: 1h\n    ladder:\n      remind:\n        - 0.75\n"
    err = error_in(tmp_path, text, "0.75", "policies.0.ladder.remind.0")
    assert "such as 75%" in err.message


def test_reassign_after_in_days_is_refused(tmp_path: Path) -> None:
    text = POLICY + "    within: 1h\n    ladder:\n      reassign: {after: 1d}\n"
    err = error_in(tmp_path, text, "after", "policies.0.ladder.reassign.after")
    assert "minutes or hours" in err.message


def test_unknown_measure(tmp_path: Path) -> None:
    text = "policies:\n  - name: x\n    measure: replied\n    within: 1h\n"
    error_in(tmp_path, text, "replied", "policies.0.measure")


def test_duplicate_policy_names(tmp_path: Path) -> None:
    text = POLICY + "    within: 1h\n" + "  - {name: first-touch, measure: accepted, within: 2h}\n"
    err = error_in(tmp_path, text, "accepted", "policies.1.name")
    assert err.message == "duplicate policy name 'first-touch' (also policy 0)"


def test_unknown_touch_kind(tmp_path: Path) -> None:
    err = error_in(tmp_path, "touches:\n  kinds: [call, cal]\n", "kinds", "touches.kinds.1")
    assert "unknown activity kind 'cal'" in err.message


def test_unknown_calendar_reference_from_a_team(tmp_path: Path) -> None:
    text = CAL + "    timezone: UTC\nteams:\n  emea: {calendar: emae}\n"
    err = error_in(tmp_path, text, "emae", "teams.emea.calendar")
    assert err.message == "unknown calendar 'emae' (declared under calendars: emea)"


def test_unknown_calendar_reference_from_an_owner(tmp_path: Path) -> None:
    text = CAL + "    timezone: UTC\nowners:\n  12345:\n    calendar: apac\n"
    error_in(tmp_path, text, "apac", "owners.12345.calendar")


def test_unknown_default_calendar(tmp_path: Path) -> None:
    error_in(tmp_path, "default_calendar: apac\n" + CAL + "    timezone: UTC\n", "apac", "default_calendar")


def test_several_calendars_need_a_default(tmp_path: Path) -> None:
    text = CAL + "    timezone: UTC\n  na:\n    timezone: America/New_York\n"
    err = error_in(tmp_path, text, "calendars:", "calendars")
    assert err.message == "name the default_calendar, one of: emea, na"


def test_an_owner_on_an_undeclared_team(tmp_path: Path) -> None:
    text = "teams:\n  emea: {}\nowners:\n  a@lumen.example: {team: apac}\n"
    error_in(tmp_path, text, "apac", "owners.a@lumen.example.team")


def test_time_off_that_ends_before_it_starts(tmp_path: Path) -> None:
    text = "owners:\n  a@lumen.example:\n    time_off:\n      - {from: 2026-12-23, to: 2026-12-21}\n"
    err = error_in(tmp_path, text, "from: 2026", "owners.a@lumen.example.time_off.0")
    assert "is before 'from'" in err.message


def test_a_date_that_does_not_exist(tmp_path: Path) -> None:
    err = error_in(tmp_path, CAL + "    closed: [2026-02-30]\n", "2026-02-30", "calendars.emea.closed.0")
    assert "2026-02-30" in err.message
