"""Business time as a sales team lives it: nights, weekends, holidays, lunch breaks, clock changes, time off."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crmbridge.sla.calendar import (
    WEEKDAY_NAMES,
    BusinessCalendar,
    DateRange,
    PublicHolidays,
    SlaClock,
    working_week,
)
from crmbridge.sla.config import SlaConfig

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def hm(hours: int, minutes: int = 0) -> int:
    return hours * 60 + minutes


def every(days: tuple[str, ...], *intervals: tuple[int, int]) -> dict[str, list[tuple[int, int]]]:
    return {day: list(intervals) for day in days}


WEEKDAYS = WEEKDAY_NAMES[:5]
NINE_TO_FIVE = working_week(every(WEEKDAYS, (hm(9), hm(17))))
emea = BusinessCalendar("emea", "Europe/Berlin", NINE_TO_FIVE, holidays=PublicHolidays("DE", "BE"))


def at(zone: ZoneInfo, *fields: int) -> datetime:
    return datetime(*fields, tzinfo=zone)  # type: ignore[misc]


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_a_friday_evening_hand_off_answered_monday_morning_counts_only_mondays_minutes() -> None:
    handed_off = at(BERLIN, 2026, 3, 6, 18, 30)  # Friday, after hours
    answered = at(BERLIN, 2026, 3, 9, 9, 20)  # Monday
    assert emea.business_minutes(handed_off, answered) == 20
    assert SlaClock(emea).elapsed(ms(handed_off), ms(answered)) == 20
    assert emea.next_open(handed_off) == at(BERLIN, 2026, 3, 9, 9, 0)
    assert emea.closed_reason(handed_off) == "outside working hours"


def test_a_one_hour_sla_handed_off_late_on_friday_is_due_on_monday() -> None:
    due = emea.add_business_minutes(at(BERLIN, 2026, 3, 6, 16, 30), 60)
    assert due == at(BERLIN, 2026, 3, 9, 9, 30)
    assert due.tzinfo == UTC


def test_german_unity_day_is_skipped() -> None:
    thursday, monday = at(BERLIN, 2025, 10, 2, 16, 30), at(BERLIN, 2025, 10, 6, 9, 30)
    assert emea.business_minutes(thursday, monday) == 60
    unity_day = at(BERLIN, 2025, 10, 3, 11, 0)
    assert not emea.is_open(unity_day)
    assert emea.closed_reason(unity_day) == "public holiday: German Unity Day"


def test_a_regional_holiday_closes_only_that_region() -> None:
    womens_day = at(BERLIN, 2027, 3, 8, 10, 0)  # a Monday; a public holiday in Berlin only
    assert emea.closed_reason(womens_day) == "public holiday: Women's Day"
    munich = BusinessCalendar("bavaria", "Europe/Berlin", NINE_TO_FIVE, holidays=PublicHolidays("DE", "BY"))
    assert munich.is_open(womens_day)


def test_us_thanksgiving_is_skipped() -> None:
    na = BusinessCalendar("na", "America/New_York", working_week(every(WEEKDAYS, (hm(8), hm(17)))),
                          holidays=PublicHolidays("US"))
    wednesday = at(NEW_YORK, 2026, 11, 25, 16, 30)
    assert na.add_business_minutes(wednesday, 60) == at(NEW_YORK, 2026, 11, 27, 8, 30)
    assert na.closed_reason(at(NEW_YORK, 2026, 11, 26, 10)) == "public holiday: Thanksgiving Day"


def test_closure_dates_close_the_whole_day() -> None:
    cal = BusinessCalendar("emea", "Europe/Berlin", NINE_TO_FIVE, closed=frozenset({date(2026, 12, 23)}))
    assert cal.closed_reason(at(BERLIN, 2026, 12, 23, 10)) == "closed"
    assert cal.business_minutes(at(BERLIN, 2026, 12, 22, 16), at(BERLIN, 2026, 12, 24, 10)) == 120


def test_lunch_breaks_split_the_day() -> None:
    cal = BusinessCalendar("split", "Europe/Berlin",
                           working_week(every(WEEKDAYS, (hm(9), hm(12)), (hm(13), hm(17)))))
    assert cal.business_minutes(at(BERLIN, 2026, 3, 4, 11, 30), at(BERLIN, 2026, 3, 4, 13, 30)) == 60
    assert cal.add_business_minutes(at(BERLIN, 2026, 3, 4, 11, 45), 45) == at(BERLIN, 2026, 3, 4, 13, 30)
    # The earliest instant: fifteen minutes run out at 12:00, not when work resumes at 13:00.
    assert cal.add_business_minutes(at(BERLIN, 2026, 3, 4, 11, 45), 15) == at(BERLIN, 2026, 3, 4, 12, 0)
    assert cal.closed_reason(at(BERLIN, 2026, 3, 4, 12, 30)) == "outside working hours"
    assert cal.next_open(at(BERLIN, 2026, 3, 4, 12, 30)) == at(BERLIN, 2026, 3, 4, 13, 0)


def test_time_off_stops_the_clock_for_those_days() -> None:
    cal = BusinessCalendar("jordan", "America/New_York", NINE_TO_FIVE,
                           time_off=(DateRange(date(2026, 12, 21), date(2026, 12, 23), "year-end"),))
    friday = at(NEW_YORK, 2026, 12, 18, 16, 30)
    assert cal.add_business_minutes(friday, 60) == at(NEW_YORK, 2026, 12, 24, 9, 30)
    assert cal.closed_reason(at(NEW_YORK, 2026, 12, 22, 10)) == "time off (year-end)"


@pytest.mark.parametrize(("day", "hours_long"), [((2026, 3, 29), 23), ((2026, 10, 25), 25)])
def test_berlin_clock_changes_keep_a_nine_to_five_day_eight_hours_long(day: tuple[int, int, int],
                                                                       hours_long: int) -> None:
    daily = BusinessCalendar("daily", "Europe/Berlin", working_week(every(WEEKDAY_NAMES, (hm(9), hm(17)))))
    around_the_clock = BusinessCalendar("24/7", "Europe/Berlin", working_week(every(WEEKDAY_NAMES, (0, hm(24)))))
    midnight, next_midnight = at(BERLIN, *day), at(BERLIN, *day) + timedelta(days=1)
    assert daily.business_minutes(midnight, next_midnight) == 8 * 60
    assert daily.add_business_minutes(midnight, 8 * 60) == at(BERLIN, *day, 17)
    # The day itself is an hour shorter or longer, and a 24-hour calendar counts the real time.
    assert around_the_clock.business_minutes(midnight, next_midnight) == hours_long * 60


def test_a_weekday_calendar_over_the_spring_change_counts_friday_and_monday_alike() -> None:
    friday, monday = at(BERLIN, 2026, 3, 27, 16, 30), at(BERLIN, 2026, 3, 30, 9, 30)
    assert emea.business_minutes(friday, monday) == 60
    assert emea.add_business_minutes(friday, 60) == monday
    assert monday.astimezone(UTC).hour == 7  # summer time: 09:30 in Berlin is 07:30 UTC


def test_hours_in_the_spring_gap_start_when_the_clocks_jump() -> None:
    # On 2026-03-29 Berlin's clocks jump from 02:00 to 03:00; 02:30 never shows.
    night = BusinessCalendar("night", "Europe/Berlin", working_week(every(WEEKDAY_NAMES, (hm(2, 30), hm(5)))))
    day = at(BERLIN, 2026, 3, 29)
    assert night.next_open(day) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 summer time
    assert night.business_minutes(day, day + timedelta(days=1)) == 120


def test_hours_in_the_autumn_fold_open_at_the_first_showing_and_close_at_the_last() -> None:
    # On 2026-10-25 Berlin's clocks go back from 03:00 to 02:00; 02:00-03:00 shows twice.
    day = at(BERLIN, 2026, 10, 25)
    opening = BusinessCalendar("n", "Europe/Berlin", working_week(every(WEEKDAY_NAMES, (hm(2, 30), hm(5)))))
    assert opening.next_open(day) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 summer time
    assert opening.business_minutes(day, day + timedelta(days=1)) == 210
    closing = BusinessCalendar("n", "Europe/Berlin", working_week(every(WEEKDAY_NAMES, (0, hm(2, 30)))))
    assert closing.business_minutes(day, day + timedelta(days=1)) == 210  # until 02:30 winter time


@pytest.mark.parametrize("day", [(2026, 3, 8), (2026, 11, 1)])
def test_new_york_clock_changes_keep_the_working_day_whole(day: tuple[int, int, int]) -> None:
    daily = BusinessCalendar("daily", "America/New_York", working_week(every(WEEKDAY_NAMES, (hm(8), hm(17)))))
    midnight = at(NEW_YORK, *day)
    assert daily.business_minutes(midnight, midnight + timedelta(days=1)) == 9 * 60
    assert daily.next_open(midnight) == at(NEW_YORK, *day, 8)


def test_an_owner_in_new_york_on_a_berlin_team_works_new_york_hours() -> None:
    config = SlaConfig.from_text("""
calendars:
  emea: {timezone: Europe/Berlin, hours: {mon-fri: "09:00-17:00"}}
teams:
  emea: {calendar: emea}
owners:
  jordan.hayes@lumen.example: {team: emea, timezone: America/New_York}
""", name="sla.yaml")
    owner = config.calendar_for(None, "jordan.hayes@lumen.example", "emea")
    team = config.calendar_for(None, None, "emea")
    handed_off, answered = at(BERLIN, 2026, 3, 2, 15, 0), at(BERLIN, 2026, 3, 2, 17, 30)  # 09:00-11:30 in New York
    assert owner.business_minutes(handed_off, answered) == 150
    assert team.business_minutes(handed_off, answered) == 120


def test_three_business_days_keep_the_time_of_day() -> None:
    monday = at(BERLIN, 2026, 3, 2, 10, 0)
    assert emea.add_business_days(monday, 3) == at(BERLIN, 2026, 3, 5, 10, 0)


def test_three_business_days_from_a_weekend_end_at_the_close_of_the_third_working_day() -> None:
    saturday = at(BERLIN, 2026, 3, 7, 11, 0)
    due = emea.add_business_days(saturday, 3)
    assert due == at(BERLIN, 2026, 3, 11, 17, 0)  # Monday, Tuesday, Wednesday
    assert emea.business_minutes(saturday, due) == 3 * 8 * 60


def test_business_days_land_on_a_shorter_day_at_its_close() -> None:
    short_friday = BusinessCalendar("emea", "Europe/Berlin", working_week(
        every(WEEKDAYS[:4], (hm(9), hm(17, 30))) | every(("fri",), (hm(9), hm(15)))))
    tuesday = at(BERLIN, 2026, 3, 3, 16, 0)  # seven hours into the day
    assert short_friday.add_business_days(tuesday, 3) == at(BERLIN, 2026, 3, 6, 15, 0)


def test_business_days_skip_holidays() -> None:
    wednesday = at(BERLIN, 2025, 10, 1, 10, 0)  # Friday 3 October is German Unity Day
    assert emea.add_business_days(wednesday, 2) == at(BERLIN, 2025, 10, 6, 10, 0)


def test_an_empty_or_backward_span_counts_nothing() -> None:
    moment = at(BERLIN, 2026, 3, 4, 10)
    assert emea.business_minutes(moment, moment) == 0
    assert emea.business_minutes(moment, moment - timedelta(hours=3)) == 0
    assert emea.add_business_minutes(moment, 0) == moment


def test_a_long_span_is_counted_exactly() -> None:
    start = at(BERLIN, 2026, 1, 1)
    # 2026 has 261 weekdays; seven of Berlin's public holidays fall on one (1 Jan, Good Friday, Easter Monday,
    # 1 May, Ascension, Whit Monday, Christmas Day; Women's Day, Unity Day and Boxing Day are on weekends).
    assert emea.business_minutes(start, at(BERLIN, 2027, 1, 1)) == (261 - 7) * 8 * 60


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        emea.is_open(datetime(2026, 3, 4, 10))
    with pytest.raises(ValueError, match="aware datetime"):
        emea.business_minutes(datetime(2026, 3, 4, 10), at(BERLIN, 2026, 3, 5))


def test_a_calendar_without_working_time_fails_clearly_instead_of_looping() -> None:
    never = BusinessCalendar("never", "UTC", working_week({}))
    with pytest.raises(ValueError, match=r"calendar 'never' has no working time in the 1098 days after"):
        never.add_business_minutes(at(BERLIN, 2026, 3, 4), 60)
    with pytest.raises(ValueError, match="no working time"):
        never.next_open(at(BERLIN, 2026, 3, 4))
    on_leave = BusinessCalendar("away", "UTC", NINE_TO_FIVE, time_off=(DateRange(date(2026, 1, 1), date(2030, 1, 1)),))
    with pytest.raises(ValueError, match="no working time"):
        on_leave.add_business_minutes(at(BERLIN, 2026, 3, 4), 1)


def test_negative_minutes_are_refused() -> None:
    with pytest.raises(ValueError, match="zero or more"):
        emea.add_business_minutes(at(BERLIN, 2026, 3, 4), -1)


def test_overlapping_hours_are_refused() -> None:
    with pytest.raises(ValueError, match="mon: 12:00-17:00 overlaps 09:00-13:00"):
        working_week({"mon": [(hm(9), hm(13)), (hm(12), hm(17))]})


def test_the_sla_clock_pauses_outside_hours_and_goes_negative_after_the_breach() -> None:
    clock = SlaClock(emea)
    start = ms(at(BERLIN, 2026, 3, 6, 16, 30))
    due = clock.due_ms(start, 60)
    assert due == ms(at(BERLIN, 2026, 3, 9, 9, 30))
    assert clock.paused(ms(at(BERLIN, 2026, 3, 7, 12)))
    assert not clock.paused(start)
    saturday = ms(at(BERLIN, 2026, 3, 7, 12))
    assert clock.left(start, 60, saturday) == 30
    assert clock.used(start, 60, saturday) == 0.5
    monday_ten = ms(at(BERLIN, 2026, 3, 9, 10))
    assert clock.left(start, 60, monday_ten) == -30
    assert clock.used(start, 60, monday_ten) == 1.5
    assert clock.due_days_ms(start, 1) == ms(at(BERLIN, 2026, 3, 9, 16, 30))
