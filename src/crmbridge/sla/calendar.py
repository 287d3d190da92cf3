"""Business time: when a team or an owner works (weekly hours in their time zone, public holidays, closures,
time off), and the arithmetic of response-time clocks over it.

Working hours are wall-clock times. A working interval opens the first time the local clock shows its start
and closes the last time the local clock reaches its end; a time the clock skips (the spring gap) stands for
the moment the clocks jump. So a 09:00-17:00 day is eight hours on the days clocks change, an interval
across the spring gap is shorter by the gap and one across the autumn fold longer by the repeated hour.

Nothing here reads the real clock: every instant is an argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holiday_data

Interval = tuple[int, int]
"""Minutes since local midnight, start included, end excluded; 0 <= start < end <= 1440 (24:00)."""
WeeklyHours = tuple[tuple[Interval, ...], ...]
"""Working intervals for Monday (index 0) to Sunday (index 6)."""

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
SEARCH_DAYS = 3 * 366  # how far to look for working time before giving up
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_US_PER_MINUTE = 60_000_000
_ONE_DAY = timedelta(days=1)
_CACHE_DAYS = 20_000  # per calendar; about fifty years of days before the cache starts over


def working_week(spec: Mapping[str | int, Iterable[Interval]]) -> WeeklyHours:
    """Weekly hours from ``{"mon": [(540, 720), (780, 1020)], ...}`` (weekday names or 0-6 for Monday-Sunday).

    Intervals are sorted; touching ones are joined; overlapping ones are a ``ValueError``.
    """
    week: list[list[Interval]] = [[] for _ in WEEKDAY_NAMES]
    for day, intervals in spec.items():
        index = day if isinstance(day, int) else WEEKDAY_NAMES.index(day)
        week[index].extend(intervals)
    return tuple(_normalise(day, WEEKDAY_NAMES[i]) for i, day in enumerate(week))


def _normalise(intervals: Iterable[Interval], day: str) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if not 0 <= start < end <= DAY_MINUTES:
            raise ValueError(f"{day}: {_hhmm(start)}-{_hhmm(end)} is not an interval within one day")
        if out and start < out[-1][1]:
            raise ValueError(f"{day}: {_hhmm(start)}-{_hhmm(end)} overlaps {_hhmm(out[-1][0])}-{_hhmm(out[-1][1])}")
        if out and start == out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return tuple(out)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


OFFICE_HOURS = working_week({d: [(9 * 60, 17 * 60)] for d in WEEKDAY_NAMES[:5]})
"""Monday to Friday, 09:00-17:00."""


@dataclass(frozen=True)
class DateRange:
    """Days off, both ends included, in the calendar's local dates."""

    first: date
    last: date
    note: str | None = None

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"time off ends ({self.last}) before it starts ({self.first})")

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


@dataclass(frozen=True)
class PublicHolidays:
    """Public holidays of a country (ISO 3166 code) and optionally one subdivision (state, region)."""

    country: str
    subdivision: str | None = None

    def name_on(self, day: date) -> str | None:
        return _holidays_of(self.country, self.subdivision, day.year).get(day)


@lru_cache(maxsize=512)
def _holidays_of(country: str, subdivision: str | None, year: int) -> dict[date, str]:
    table = holiday_data.country_holidays(country, subdiv=subdivision, years=year)
    if "en_US" in (table.supported_languages or ()):
        # Names in one language whatever the machine's locale, so reasons read the same everywhere.
        table = holiday_data.country_holidays(country, subdiv=subdivision, years=year, language="en_US")
    return {day: table.get(day) for day in table}


@dataclass(frozen=True)
class _Day:
    spans: tuple[tuple[int, int], ...]  # UTC epoch microseconds, sorted, disjoint
    total: int
    reason: str | None  # why the whole day is closed


_CLOSED_BY_HOURS = _Day((), 0, None)


@dataclass(frozen=True)
class BusinessCalendar:
    """When someone works: weekly hours in a time zone, minus public holidays, closure dates and time off.

    Every method takes aware datetimes (a naive one is a ``ValueError``) and returns aware UTC datetimes.
    """

    name: str
    timezone: str = "UTC"
    hours: WeeklyHours = OFFICE_HOURS
    holidays: PublicHolidays | None = None
    closed: frozenset[date] = frozenset()
    time_off: tuple[DateRange, ...] = ()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)
    _days: dict[date, _Day] = field(init=False, repr=False, compare=False, hash=False, default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.hours) != 7:
            raise ValueError("hours has one entry per weekday, Monday first")
        object.__setattr__(self, "hours", tuple(_normalise(d, WEEKDAY_NAMES[i]) for i, d in enumerate(self.hours)))
        object.__setattr__(self, "closed", frozenset(self.closed))
        object.__setattr__(self, "time_off", tuple(self.time_off))
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    # -- questions about one instant -------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` falls inside working time."""
        return self._span_at(_us(at)) is not None

    def closed_reason(self, at: datetime) -> str | None:
        """Why the calendar is closed at ``at`` (None when open): a public holiday, a closure, time off,
        or being outside working hours. A reason for the whole day wins over the hour of the day."""
        now = _us(at)
        if self._span_at(now) is not None:
            return None
        return self._day(self._local_date(now)).reason or "outside working hours"

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself when open, else the moment working time next begins."""
        now = _us(at)
        for _, spans in self._days_from(now):
            for start, end in spans:
                if end > now:
                    return _datetime(max(start, now))
        raise AssertionError("unreachable")  # _days_from raises when it runs out of days

    # -- business time ---------------------------------------------------------------------------------

    def business_minutes(self, start: datetime, end: datetime) -> float:
        """Minutes of working time in [start, end); 0 when end <= start. Costs one step per day spanned."""
        return self._business_us(_us(start), _us(end)) / _US_PER_MINUTE

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        """The earliest instant t >= start with ``business_minutes(start, t) == minutes`` (to the microsecond).

        Raises ``ValueError`` for a negative amount, and when the calendar has no working time for three years.
        """
        if not math.isfinite(minutes) or minutes < 0:
            raise ValueError(f"business minutes to add must be zero or more, got {minutes!r}")
        return _datetime(self._add_us(_us(start), round(minutes * _US_PER_MINUTE)))

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """The same business-time offset ``days`` working days later.

        The clock starts at ``next_open(start)``, k business minutes into its working day (a working day is a
        local date with any working time). The result is k business minutes into the ``days``-th working day
        after that one (its close when that day is shorter than k), moved back to the earliest instant with the
        same business time since ``start``: when k is 0 that is the close of the day before.
        """
        if days < 1:
            raise ValueError(f"business days to add must be one or more, got {days!r}")
        begin = _us(start)
        opened = _us(self.next_open(start))
        day, spans = next((d, s) for d, s in self._days_from(opened) if s and s[-1][1] > opened)
        offset = self._business_us(spans[0][0], opened)
        for later, later_spans in self._days_from(_us(_datetime(spans[-1][1]))):
            if later > day and later_spans:
                days -= 1
                if days == 0:
                    target = min(self._add_us(later_spans[0][0], offset), later_spans[-1][1])
                    return _datetime(self._add_us(begin, self._business_us(begin, target)))
        raise AssertionError("unreachable")

    # -- internals -------------------------------------------------------------------------------------

    def _business_us(self, a: int, b: int) -> int:
        if b <= a:
            return 0
        total = 0
        day, last_day = self._local_date(a) - _ONE_DAY, self._local_date(b)
        while day <= last_day:
            info = self._day(day)
            if info.spans:
                if a <= info.spans[0][0] and info.spans[-1][1] <= b:
                    total += info.total
                else:
                    total += sum(max(0, min(end, b) - max(start, a)) for start, end in info.spans)
            day += _ONE_DAY
        return total

    def _add_us(self, a: int, need: int) -> int:
        if need == 0:
            return a
        for _, spans in self._days_from(a):
            for start, end in spans:
                start = max(start, a)
                if end <= start:
                    continue
                if end - start >= need:
                    return start + need
                need -= end - start
        raise AssertionError("unreachable")

    def _days_from(self, a: int) -> Iterator[tuple[date, tuple[tuple[int, int], ...]]]:
        """Local dates from the one before ``a``'s with their spans; gives up after three years without work."""
        day = self._local_date(a) - _ONE_DAY
        idle = 0
        while idle <= SEARCH_DAYS:
            spans = self._day(day).spans
            idle = 0 if spans and spans[-1][1] > a else idle + 1
            yield day, spans
            day += _ONE_DAY
        raise ValueError(f"calendar {self.name!r} has no working time in the {SEARCH_DAYS} days after "
                         f"{_datetime(a).isoformat()} (check its hours, closures and time off)")

    def _span_at(self, now: int) -> tuple[int, int] | None:
        day = self._local_date(now)
        for d in (day - _ONE_DAY, day, day + _ONE_DAY):
            for start, end in self._day(d).spans:
                if start <= now < end:
                    return start, end
        return None

    def _local_date(self, us: int) -> date:
        return _datetime(us).astimezone(self._zone).date()

    def _day(self, day: date) -> _Day:
        cached = self._days.get(day)
        if cached is None:
            if len(self._days) >= _CACHE_DAYS:
                self._days.clear()
            cached = self._days[day] = self._build_day(day)
        return cached

    def _build_day(self, day: date) -> _Day:
        reason = self._day_reason(day)
        if reason is not None:
            return _Day((), 0, reason)
        intervals = self.hours[day.weekday()]
        if not intervals:
            return _CLOSED_BY_HOURS
        midnight = datetime.combine(day, time())
        offset = self._zone.utcoffset(midnight)
        if offset == self._zone.utcoffset((midnight + _ONE_DAY).replace(fold=1)):
            # No clock change today (the usual case): one offset for the whole day.
            base = (midnight - _NAIVE_EPOCH - offset) // _US
            spans = tuple((base + s * _US_PER_MINUTE, base + e * _US_PER_MINUTE) for s, e in intervals)
            return _Day(spans, sum(e - s for s, e in intervals) * _US_PER_MINUTE, None)
        return self._build_changeover_day(day, intervals)

    def _build_changeover_day(self, day: date, intervals: tuple[Interval, ...]) -> _Day:
        # Yesterday's last close bounds today's first open, so a fold at midnight never counts twice.
        yesterday = self.hours[(day - _ONE_DAY).weekday()]
        floor = self._instant(day - _ONE_DAY, yesterday[-1][1], last=True) if yesterday else None
        spans: list[tuple[int, int]] = []
        for start_min, end_min in intervals:
            start = self._instant(day, start_min, last=False)
            end = self._instant(day, end_min, last=True)
            if floor is not None:
                start = max(start, floor)
            if spans:
                start = max(start, spans[-1][1])
            if end > start:
                spans.append((start, end))
        return _Day(tuple(spans), sum(end - start for start, end in spans), None)

    def day_off(self, day: date) -> str | None:
        """Why nobody on this calendar works on ``day`` (a local date) as a whole: a public holiday, a
        closure or time off; None for a working day and for a weekday without hours."""
        return self._day(day).reason

    def _day_reason(self, day: date) -> str | None:
        if self.holidays is not None and (holiday := self.holidays.name_on(day)):
            return f"public holiday: {holiday}"
        if day in self.closed:
            return "closed"
        for off in self.time_off:
            if off.covers(day):
                return "time off" + (f" ({off.note})" if off.note else "")
        return None

    def _instant(self, day: date, minute: int, *, last: bool) -> int:
        """The instant the local clock shows ``minute`` on ``day``: the first showing, or the last when ``last``
        (they differ only in the autumn fold); a skipped time is the moment the clocks jump."""
        naive = datetime.combine(day, time()) + timedelta(minutes=minute)
        wall = (naive - _NAIVE_EPOCH) // _US
        early = wall - self._zone.utcoffset(naive) // _US
        late = wall - self._zone.utcoffset(naive.replace(fold=1)) // _US
        if early == late:
            return early
        if early < late:  # the fold: the clock shows this time twice
            return late if last else early
        return self._transition(late, early)

    def _transition(self, before: int, after: int) -> int:
        """The first instant in (before, after] whose offset is the one after the jump, to the second."""
        target = _datetime(after).astimezone(self._zone).utcoffset()
        lo, hi = before // 1_000_000, -(-after // 1_000_000)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _datetime(mid * 1_000_000).astimezone(self._zone).utcoffset() == target:
                hi = mid
            else:
                lo = mid
        return hi * 1_000_000


def _us(at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected an aware datetime (with a time zone), got naive {at.isoformat()}")
    return (at - _EPOCH) // _US


def _datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class SlaClock:
    """Business-time arithmetic over epoch milliseconds, as the store keeps them, on one calendar.

    ``minutes`` are business minutes. Nothing reads the real clock: "now" is always an argument.
    """

    def __init__(self, calendar: BusinessCalendar) -> None:
        self.calendar = calendar

    def elapsed(self, start_ms: int, end_ms: int) -> float:
        """Business minutes in [start, end); 0 when end <= start."""
        return self.calendar._business_us(start_ms * 1000, end_ms * 1000) / _US_PER_MINUTE

    def due_ms(self, start_ms: int, minutes: float) -> int:
        """The earliest millisecond at which ``minutes`` business minutes have passed since ``start_ms``."""
        due = self.calendar.add_business_minutes(_datetime(start_ms * 1000), minutes)
        return -(-_us(due) // 1000)

    def due_days_ms(self, start_ms: int, days: int) -> int:
        """The due instant of a window of ``days`` business days (see ``BusinessCalendar.add_business_days``)."""
        due = self.calendar.add_business_days(_datetime(start_ms * 1000), days)
        return -(-_us(due) // 1000)

    def paused(self, at_ms: int) -> bool:
        """Whether the clock stands still at ``at_ms`` (outside working time)."""
        return not self.calendar.is_open(_datetime(at_ms * 1000))

    def left(self, start_ms: int, minutes: float, now_ms: int) -> float:
        """Business minutes left of an SLA of ``minutes``; negative once breached."""
        return minutes - self.elapsed(start_ms, now_ms)

    def used(self, start_ms: int, minutes: float, now_ms: int) -> float:
        """The share of the SLA used so far: 0 at the start, 1.0 at the breach, above 1 after it."""
        if minutes <= 0:
            raise ValueError(f"an SLA lasts more than zero business minutes, got {minutes!r}")
        return self.elapsed(start_ms, now_ms) / minutes
