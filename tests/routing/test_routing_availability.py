"""Who can take a lead right now: deactivated users, daily caps, out-of-office days and working hours,
each judged in the seller's own time zone, and the note each skip leaves behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from routing_helpers import NOW, assign, lead, seller

from crmbridge.routing import MemoryLedger, RoutingConfig, SkipCause

ROUND_ROBIN = """
rules:
  - {name: rr, kind: round_robin}
"""


def chain(sellers_yaml: str, availability: str = "available_today") -> str:
    return f"""
sellers:
{sellers_yaml}
rules:
  - {{name: rr, kind: round_robin, availability: {availability}}}
fallback: {{mode: claim}}
"""


def test_deactivated_seller_is_never_picked_by_round_robin() -> None:
    result = assign(ROUND_ROBIN, lead(), [seller("1", "Ann", active=False), seller("2", "Bo")])
    assert result.owner_id == "2"
    assert [(s.cause, s.seller_id, s.detail) for s in result.skipped] == [
        (SkipCause.INACTIVE, "1", "Ann is deactivated in the CRM")]


def test_daily_cap_counts_the_sellers_own_day_not_utc() -> None:
    cfg = chain('  "1": {daily_cap: 2, timezone: America/Los_Angeles}\n  "2": {daily_cap: 2}')
    now = datetime(2025, 3, 3, 20, 0, tzinfo=UTC)  # 12:00 in Los Angeles, Monday 3 March
    yesterday_in_la = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)  # 23:00 on Sunday in Los Angeles
    ledger = MemoryLedger()
    for who in ("1", "2"):
        ledger.record(who, yesterday_in_la)
        ledger.record(who, yesterday_in_la)
    result = assign(cfg, lead(), [seller("1", "Ann"), seller("2", "Bo")], ledger, now)
    # Same two assignments: Bo (UTC) is capped today, Ann (Los Angeles) made hers yesterday.
    assert result.owner_id == "1"
    assert [(s.cause, s.seller_id) for s in result.skipped] == [(SkipCause.CAPPED, "2")]
    assert result.skipped[0].detail == "Bo reached the daily cap (2 of 2 today in UTC)"


def test_capped_seller_is_free_again_after_their_local_midnight() -> None:
    cfg = chain('  "1": {daily_cap: 1, timezone: Asia/Tokyo}')
    ledger = MemoryLedger()
    ledger.record("1", datetime(2025, 3, 3, 10, 0, tzinfo=UTC))  # 19:00 in Tokyo
    sellers = [seller("1", "Aiko")]
    assert assign(cfg, lead(), sellers, ledger, datetime(2025, 3, 3, 14, 59, tzinfo=UTC)).mode == "claim"
    assert assign(cfg, lead(), sellers, ledger, datetime(2025, 3, 3, 15, 0, tzinfo=UTC)).owner_id == "1"


def test_out_of_office_days_are_the_sellers_local_dates_with_both_ends_included() -> None:
    cfg = chain('  "1": {timezone: Asia/Tokyo, out_of_office: [{from: 2025-03-04, to: 2025-03-06}]}')
    sellers = [seller("1", "Aiko")]
    at = [datetime(2025, 3, 3, 14, 59, tzinfo=UTC),  # 23:59 on the 3rd in Tokyo: still at work
          datetime(2025, 3, 3, 15, 0, tzinfo=UTC),  # midnight on the 4th in Tokyo: leave starts
          datetime(2025, 3, 6, 14, 59, tzinfo=UTC),  # 23:59 on the 6th: last day of leave
          datetime(2025, 3, 6, 15, 0, tzinfo=UTC)]  # the 7th: back
    assert [assign(cfg, lead(), sellers, now=t).owner_id for t in at] == ["1", None, None, "1"]


def test_out_of_office_seller_is_skipped_with_the_dates_in_the_note() -> None:
    cfg = chain('  "1": {out_of_office: [{from: 2025-03-01, to: 2025-03-14, note: parental leave}]}')
    result = assign(cfg, lead(), [seller("1", "Ann"), seller("2", "Bo")])
    assert result.owner_id == "2"
    assert result.skipped[0].cause == SkipCause.OUT_OF_OFFICE
    assert result.skipped[0].detail == "Ann is out of office 2025-03-01 to 2025-03-14 (parental leave)"


def test_outside_working_hours_skips_a_seller_when_the_rule_wants_someone_at_work_now() -> None:
    sellers_yaml = '  "1": {timezone: America/New_York, working_hours: {from: "09:00", to: "17:00"}}'
    sellers = [seller("1", "Nate"), seller("2", "Bo")]
    ledger = MemoryLedger()
    ledger.record("2", NOW - timedelta(hours=1))  # Bo has more load: Nate would win if at work
    result = assign(chain(sellers_yaml, "available_now"), lead(), sellers, ledger)  # 04:00 in New York
    assert result.owner_id == "2"
    assert result.skipped[0].cause == SkipCause.OUTSIDE_HOURS
    assert result.skipped[0].detail == ("Nate is outside working hours (it is 04:00 in America/New_York; "
                                        "works Mon-Fri 09:00-17:00)")
    # A rule content with "working today" gives Nate the lead; the SLA clock waits for his morning.
    assert assign(chain(sellers_yaml, "available_today"), lead(), sellers, ledger).owner_id == "1"


@pytest.mark.parametrize(("hour_utc", "at_work"), [(13, False), (14, True), (21, True), (22, False)])
def test_working_hours_start_inclusive_and_end_exclusive(hour_utc: int, at_work: bool) -> None:
    # New York is UTC-5 on 3 March: 09:00-17:00 there is 14:00-22:00 UTC.
    cfg = chain('  "1": {timezone: America/New_York, working_hours: {from: "09:00", to: "17:00"}}', "available_now")
    now = datetime(2025, 3, 3, hour_utc, 0, tzinfo=UTC)
    assert (assign(cfg, lead(), [seller("1")], now=now).owner_id == "1") is at_work


def test_working_hours_follow_daylight_saving_time() -> None:
    # After 9 March New York is UTC-4: 09:00 there is 13:00 UTC.
    cfg = chain('  "1": {timezone: America/New_York, working_hours: {from: "09:00", to: "17:00"}}', "available_now")
    assert assign(cfg, lead(), [seller("1")], now=datetime(2025, 3, 10, 13, 0, tzinfo=UTC)).owner_id == "1"


def test_a_seller_is_off_on_days_they_do_not_work_even_for_rules_that_ignore_hours() -> None:
    cfg = chain('  "1": {working_hours: {days: [mon, tue, wed, thu], from: "08:00", to: "18:00"}}')
    friday = datetime(2025, 3, 7, 10, 0, tzinfo=UTC)
    result = assign(cfg, lead(), [seller("1", "Ann"), seller("2", "Bo")], now=friday)
    assert result.owner_id == "2"
    assert result.skipped[0].cause == SkipCause.OFF_DAY
    assert result.skipped[0].detail == "Ann does not work on Fridays (works Mon-Thu 08:00-18:00, UTC)"


def test_a_sellers_crm_time_zone_is_used_when_the_file_names_none() -> None:
    cfg = chain('  "1": {working_hours: {from: "09:00", to: "17:00"}}', "available_now")
    tokyo = seller("1", "Aiko", timezone="Asia/Tokyo")  # 18:00 in Tokyo at NOW
    assert assign(cfg, lead(), [tokyo], now=NOW).mode == "claim"
    assert assign(cfg, lead(), [tokyo], now=NOW - timedelta(hours=2)).owner_id == "1"


def test_sellers_without_a_time_zone_work_in_the_default_time_zone() -> None:
    cfg = """
default_timezone: Asia/Tokyo
sellers:
  "1": {working_hours: {from: "09:00", to: "17:00"}}
rules:
  - {name: rr, kind: round_robin, availability: available_now}
"""
    assert assign(cfg, lead(), [seller("1")], now=NOW).mode == "claim"  # 18:00 in Tokyo


def test_an_unknown_crm_time_zone_falls_back_to_the_default() -> None:
    cfg = chain('  "1": {working_hours: {from: "09:00", to: "17:00"}}', "available_now")
    assert assign(cfg, lead(), [seller("1", timezone="Mars/Olympus")], now=NOW).owner_id == "1"  # 09:00 UTC


def test_a_rule_that_finds_nobody_eligible_says_why_and_the_next_rule_answers() -> None:
    cfg = """
teams:
  emea: ["1", "2", "3"]
sellers:
  "2": {out_of_office: [2025-03-03]}
  "3": {daily_cap: 1}
rules:
  - {name: emea, kind: round_robin, team: emea}
  - {name: backup, kind: fixed, owner: "4"}
"""
    ledger = MemoryLedger()
    ledger.record("3", NOW - timedelta(hours=1))
    sellers = [seller("1", active=False), seller("2"), seller("3"), seller("4", "Dee")]
    result = assign(cfg, lead(), sellers, ledger)
    assert (result.rule, result.owner_id) == ("backup", "4")
    assert [s.cause for s in result.skipped] == [SkipCause.INACTIVE, SkipCause.OUT_OF_OFFICE, SkipCause.CAPPED,
                                                 SkipCause.NOBODY_ELIGIBLE]
    assert result.skipped[-1].detail == ("nobody eligible in team emea "
                                         "(1 deactivated, 1 out of office, 1 at the daily cap)")


def test_active_only_rules_ignore_caps_and_calendars() -> None:
    cfg = chain('  "1": {daily_cap: 1, out_of_office: [2025-03-03]}', "active")
    ledger = MemoryLedger()
    ledger.record("1", NOW)
    assert assign(cfg, lead(), [seller("1")], ledger).owner_id == "1"


def test_a_team_with_no_crm_users_is_noted_and_skipped() -> None:
    cfg = """
teams:
  apac: {description: not hired yet}
rules:
  - {name: apac, kind: round_robin, team: apac}
"""
    result = assign(cfg, lead(), [seller("1")])
    assert result.skipped[0].detail == "team apac has no members among the CRM's users"
    assert result.rule == "fallback"


def test_default_config_skips_nobody_for_calendars_it_does_not_know() -> None:
    assert assign(RoutingConfig.default(), lead(), [seller("1")], now=datetime(2025, 3, 8, 3, tzinfo=UTC)).owner_id \
        == "1"
