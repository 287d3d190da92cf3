"""Business-time arithmetic holds its laws for any instants, including around clock changes and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from crmbridge.sla.calendar import WEEKDAY_NAMES, BusinessCalendar, DateRange, PublicHolidays, SlaClock, working_week

H = 60
CALENDARS = [
    # Weekdays with a lunch break, German holidays, a week of time off.
    BusinessCalendar("berlin", "Europe/Berlin", working_week(
        {d: [(9 * H, 12 * H), (13 * H, 17 * H + 30)] for d in WEEKDAY_NAMES[:5]}),
        holidays=PublicHolidays("DE", "BE"), time_off=(DateRange(date(2026, 8, 3), date(2026, 8, 7)),)),
    # Night hours that meet both of Berlin's clock changes.
    BusinessCalendar("night", "Europe/Berlin", working_week(
        {d: [(0, 2 * H + 30), (2 * H + 45, 4 * H)] for d in WEEKDAY_NAMES})),
    # Around the clock in New York, US holidays.
    BusinessCalendar("always", "America/New_York", working_week({d: [(0, 24 * H)] for d in WEEKDAY_NAMES}),
                     holidays=PublicHolidays("US")),
    # Half-hour clock changes, weekends only.
    BusinessCalendar("lord-howe", "Australia/Lord_Howe", working_week(
        {d: [(1 * H, 3 * H), (20 * H, 24 * H)] for d in ("sat", "sun")})),
]
LOW, HIGH = datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC)
calendars = st.sampled_from(CALENDARS)
instants = st.integers(0, int((HIGH - LOW).total_seconds() * 1_000_000)).map(
    lambda us: LOW + timedelta(microseconds=us))
spans = st.integers(0, 40 * 24 * 3600 * 1_000_000).map(lambda us: timedelta(microseconds=us))
bounded = settings(max_examples=200, deadline=None)
MINUTE = timedelta(minutes=1)
TINY = timedelta(microseconds=1)


@bounded
@given(calendars, instants, spans, spans)
def test_more_time_never_counts_fewer_business_minutes(cal: BusinessCalendar, a: datetime, ab: timedelta,
                                                       bc: timedelta) -> None:
    b, c = a + ab, a + ab + bc
    assert cal.business_minutes(a, b) <= cal.business_minutes(a, c)


@bounded
@given(calendars, instants, spans, spans)
def test_business_minutes_add_up_over_consecutive_spans(cal: BusinessCalendar, a: datetime, ab: timedelta,
                                                        bc: timedelta) -> None:
    b, c = a + ab, a + ab + bc
    whole = cal.business_minutes(a, c)
    assert abs(cal.business_minutes(a, b) + cal.business_minutes(b, c) - whole) <= 1e-9 * max(1.0, whole)


@bounded
@given(calendars, instants)
def test_no_minute_outside_working_hours_is_counted(cal: BusinessCalendar, moment: datetime) -> None:
    counted = cal.business_minutes(moment, moment + MINUTE)
    assert 0 <= counted <= 1
    if cal.is_open(moment):
        assert cal.closed_reason(moment) is None
        assert cal.business_minutes(moment, moment + TINY) > 0
    else:
        assert cal.closed_reason(moment)
        opens = cal.next_open(moment)
        assert opens > moment and cal.is_open(opens)
        assert cal.business_minutes(moment, opens) == 0
        if opens >= moment + MINUTE:
            assert counted == 0


@bounded
@given(calendars, instants, st.floats(0, 20_000, allow_nan=False))
def test_the_due_instant_is_the_earliest_with_that_much_business_time(cal: BusinessCalendar, start: datetime,
                                                                      minutes: float) -> None:
    due = cal.add_business_minutes(start, minutes)
    assert due >= start
    assert abs(cal.business_minutes(start, due) - minutes) < 1e-6
    if due > start:
        assert cal.business_minutes(start, due - TINY) < minutes


@bounded
@given(calendars, instants, st.integers(1, 5_000), st.integers(0, 10 * 24 * 3600 * 1000))
def test_the_clock_in_milliseconds_agrees_with_the_calendar(cal: BusinessCalendar, start: datetime, minutes: int,
                                                            later_ms: int) -> None:
    clock = SlaClock(cal)
    start_ms = int(start.timestamp() * 1000)
    due = clock.due_ms(start_ms, minutes)
    assert abs(clock.elapsed(start_ms, due) - minutes) < 1e-6
    now = start_ms + later_ms
    assert abs(clock.left(start_ms, minutes, now) - (minutes - clock.elapsed(start_ms, now))) < 1e-9
    assert (clock.left(start_ms, minutes, now) < 0) == (now > due and clock.elapsed(start_ms, now) > minutes)


@bounded
@given(calendars, instants, st.integers(1, 10))
def test_business_days_move_forward_by_at_least_the_days_in_between(cal: BusinessCalendar, start: datetime,
                                                                    days: int) -> None:
    due = cal.add_business_days(start, days)
    assert due > start
    # The due instant is the earliest with its business time, so the clock is never paused just before it.
    assert cal.business_minutes(start, due) > cal.business_minutes(start, due - TINY)
