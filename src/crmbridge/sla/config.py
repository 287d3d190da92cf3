"""The SLA file: business calendars, who works on which one, what counts as a touch, and the response-time
policies with their reminder ladders. Validated once, with errors that name file, line and key.

``load_sla(path)`` reads and checks a file; ``SlaConfig.default()`` is what applies when no file is
configured. The resolution methods (``calendar_for``, ``policies_for`` ...) are cheap to call per hand-off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import holidays as holiday_data
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from crmbridge.errors import ConfigError
from crmbridge.model import ActivityKind
from crmbridge.routing.config import (
    WEEKDAYS,
    Name,
    OutOfOffice,
    Ref,
    TimeZone,
    Values,
    WorkingHours,
    _clock,
    _days,
    _ooo,
    _stringify_keys,
)
from crmbridge.scoring.durations import parse_duration
from crmbridge.sla.calendar import (
    OFFICE_HOURS,
    BusinessCalendar,
    DateRange,
    Interval,
    PublicHolidays,
    SlaClock,
    WeeklyHours,
    working_week,
)
from crmbridge.yamlconf import Locator, PathKey, parse_yaml, read_config_file, validate

Measure = Literal["first_touch", "meeting_booked", "accepted"]
CalendarMode = Literal["owner", "team"]
StepKind = Literal["remind", "escalate", "reassign"]
MANAGER = "manager"
DEFAULT_TOUCH_KINDS = (ActivityKind.CALL.value, ActivityKind.EMAIL_SENT.value, ActivityKind.MEETING.value)


# -- scalar validators ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Within:
    """An SLA window: business minutes, or whole business days (``3d``)."""

    minutes: float | None = None
    days: int | None = None

    def text(self) -> str:
        if self.days is not None:
            return f"{self.days}d"
        assert self.minutes is not None
        return f"{self.minutes / 60:g}h" if self.minutes % 60 == 0 else f"{self.minutes:g}m"


_DAYS_ONLY = re.compile(r"^\s*(\d+)\s*d\s*$")
_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _business_minutes(value: Any) -> float:
    if isinstance(value, bool | int | float):
        raise ValueError(f"give a unit, e.g. {value}m or {value}h (business time)")
    if isinstance(value, str) and re.search(r"[dwy]", value.strip().lower()):
        raise ValueError(f"{value!r}: write business time in minutes or hours here, e.g. 30m or 2h")
    minutes = parse_duration(value).total_seconds() / 60
    if minutes <= 0:
        raise ValueError("must be longer than zero")
    return minutes


def _within(value: Any) -> Within:
    if isinstance(value, Within):
        return value
    match = _DAYS_ONLY.match(value) if isinstance(value, str) else None
    if match:
        if int(match[1]) == 0:
            raise ValueError("the SLA must be longer than zero")
        return Within(days=int(match[1]))
    if isinstance(value, str) and re.search(r"[dwy]", value.strip().lower()) and parse_duration(value):
        raise ValueError(f"{value!r}: give whole business days alone (3d) or minutes and hours (90m, 2h); "
                         "weeks, years and mixes such as 1d4h are not business time")
    try:
        return Within(minutes=_business_minutes(value))
    except ValueError as exc:
        raise ValueError(str(exc).replace("must be longer", "the SLA must be longer")) from None


def _share(value: Any) -> float:
    match = _SHARE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a share of the SLA such as 75% or 100%, got {value!r}")
    share = float(match[1]) / 100
    if share <= 0:
        raise ValueError("a share must be more than 0%")
    return share


@lru_cache(maxsize=1)
def _supported_countries() -> dict[str, list[str]]:
    return holiday_data.list_supported_countries()


def _country(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError(f"got {value!r} where a country code was expected; quote 'NO' for Norway")
    code = value.strip().upper() if isinstance(value, str) else None
    if not code or code not in _supported_countries():
        raise ValueError(f"unknown country {value!r} for public holidays (use an ISO 3166 code such as DE, US or GB)")
    return code


def _touch_kind(value: Any) -> str:
    known = [kind.value for kind in ActivityKind]
    if not isinstance(value, str) or value.strip().lower() not in known:
        raise ValueError(f"unknown activity kind {value!r} (known: {', '.join(known)})")
    return value.strip().lower()


WithinValue = Annotated[Within, BeforeValidator(_within)]
BusinessSpan = Annotated[float, BeforeValidator(_business_minutes)]
Share = Annotated[float, BeforeValidator(_share)]
Country = Annotated[str, BeforeValidator(_country)]
TouchKind = Annotated[str, BeforeValidator(_touch_kind)]


# -- the file's schema ---------------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HolidaysSpec(_Spec):
    country: Country
    subdivision: str | int | None = Field(default=None, description="state or region, e.g. BE for Berlin")


class CalendarSpec(_Spec):
    timezone: TimeZone = "UTC"
    hours: Any = None  # checked by _parse_hours, which names the day and interval at fault
    holidays: HolidaysSpec | None = None
    closed: list[date] = Field(default_factory=list)


class TeamSpec(_Spec):
    calendar: str | None = None
    manager: Ref | None = None


class OwnerSpec(_Spec):
    team: str | None = None
    calendar: str | None = None
    timezone: TimeZone | None = None
    hours: Any = None
    holidays: HolidaysSpec | None = None
    time_off: list[Annotated[OutOfOffice, BeforeValidator(_ooo)]] = Field(default_factory=list)


class TouchesSpec(_Spec):
    kinds: list[TouchKind] = Field(default_factory=lambda: list(DEFAULT_TOUCH_KINDS), min_length=1)
    ignore_users: list[Ref] = Field(default_factory=list)
    stage_exit_is_acceptance: bool = True


class WhenSpec(_Spec):
    teams: Values | None = None
    owners: Values | None = None
    sources: Values | None = None
    segments: Values | None = None


class EscalateSpec(_Spec):
    at: Share = 1.0
    to: Ref = MANAGER

    @field_validator("at")
    @classmethod
    def _at_breach_or_later(cls, value: float) -> float:
        if value < 1:
            raise ValueError(f"escalation comes at the breach or later (100% or more), got {value:.0%}")
        return value


class ReassignSpec(_Spec):
    after: BusinessSpan
    max: int = Field(default=1, ge=1)


class LadderSpec(_Spec):
    remind: list[Share] = Field(default_factory=list)
    escalate: EscalateSpec | None = None
    reassign: ReassignSpec | None = None


class PolicySpec(_Spec):
    name: Name
    description: str | None = None
    measure: Measure
    within: WithinValue
    when: WhenSpec | None = None
    calendar: CalendarMode = "owner"
    ladder: LadderSpec = LadderSpec()


class SlaSpec(_Spec):
    version: Literal[1] = 1
    default_calendar: str | None = None
    calendars: dict[Name, CalendarSpec] = Field(default_factory=dict)
    teams: dict[str, TeamSpec] = Field(default_factory=dict)
    owners: dict[str, OwnerSpec] = Field(default_factory=dict)
    touches: TouchesSpec = TouchesSpec()
    policies: list[PolicySpec] | None = None


# -- what an engine works with -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ladder:
    """What happens as an SLA runs out: reminders, one escalation, reassignments after the breach."""

    remind_fractions: tuple[float, ...] = ()
    escalate_fraction: float | None = None
    escalate_to: str | None = None  # "manager" (the team's) or a user id / e-mail
    reassign_after_minutes: float | None = None
    reassign_max: int = 0


@dataclass(frozen=True)
class Step:
    """One rung of a ladder. ``fraction`` (remind, escalate) is a share of the SLA's business minutes;
    ``after_breach_minutes`` (reassign) is business minutes after the breach. ``seq`` counts from 1 per kind."""

    kind: StepKind
    seq: int
    fraction: float | None = None
    after_breach_minutes: float | None = None

    def business_minutes(self, budget: float) -> float:
        """Business minutes from the clock's start to this step, for an SLA of ``budget`` business minutes."""
        if self.fraction is not None:
            return self.fraction * budget
        return budget + (self.after_breach_minutes or 0.0)

    def due_ms(self, clock: SlaClock, start_ms: int, budget: float) -> int:
        return clock.due_ms(start_ms, self.business_minutes(budget))


@dataclass(frozen=True)
class PolicyFilter:
    """Which hand-offs a policy covers; every given list must match (any of its values, case-insensitively)."""

    teams: frozenset[str] | None = None
    owners: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    segments: frozenset[str] | None = None

    def holds(self, team: str | None, owners: Iterable[str | None], source: str | None,
              segments: Iterable[str]) -> bool:
        return (_any_in(self.teams, [team]) and _any_in(self.owners, owners) and _any_in(self.sources, [source])
                and _any_in(self.segments, segments))


def _any_in(allowed: frozenset[str] | None, values: Iterable[str | None]) -> bool:
    return allowed is None or any(v is not None and _key(v) in allowed for v in values)


@dataclass(frozen=True)
class Policy:
    """A response-time promise: ``measure`` must happen within ``within`` business time of the hand-off."""

    name: str
    measure: Measure
    within: Within
    calendar: CalendarMode = "owner"
    ladder: Ladder = Ladder()
    when: PolicyFilter = PolicyFilter()

    @property
    def within_minutes(self) -> float | None:
        """The window in business minutes; None for a window in business days (use ``budget_minutes``)."""
        return self.within.minutes

    @property
    def within_days(self) -> int | None:
        return self.within.days

    def due_ms(self, clock: SlaClock, start_ms: int) -> int:
        """The breach instant of a clock started at ``start_ms``."""
        if self.within.days is not None:
            return clock.due_days_ms(start_ms, self.within.days)
        assert self.within.minutes is not None
        return clock.due_ms(start_ms, self.within.minutes)

    def budget_minutes(self, clock: SlaClock, start_ms: int) -> float:
        """The SLA's length in business minutes for a clock started at ``start_ms`` (for ``3d``: the business
        time from the start to the due instant, which depends on where the start falls)."""
        if self.within.minutes is not None:
            return self.within.minutes
        return clock.elapsed(start_ms, self.due_ms(clock, start_ms))

    def applies(self, team: str | None, owner: str | None, source: str | None,
                segments: Iterable[str] = (), owner_email: str | None = None) -> bool:
        return self.when.holds(team, (owner, owner_email), source, segments)


def ladder_steps(policy: Policy) -> list[Step]:
    """Every step of a policy's ladder: reminders by share, then the escalation, then reassignments 1..max.

    A step is due at ``clock.due_ms(start_ms, step.business_minutes(budget))`` with ``budget =
    policy.budget_minutes(clock, start_ms)``: a reminder at 75% after 0.75 x budget business minutes, the
    escalation at 100% exactly at the breach, reassignment n at budget + n x ``reassign.after``.
    """
    ladder = policy.ladder
    steps = [Step("remind", i, fraction=f) for i, f in enumerate(ladder.remind_fractions, 1)]
    if ladder.escalate_fraction is not None:
        steps.append(Step("escalate", 1, fraction=ladder.escalate_fraction))
    if ladder.reassign_after_minutes is not None:
        steps += [Step("reassign", n, after_breach_minutes=n * ladder.reassign_after_minutes)
                  for n in range(1, ladder.reassign_max + 1)]
    return steps


@dataclass(frozen=True)
class TeamSla:
    name: str
    calendar: str | None = None
    manager: str | None = None


@dataclass(frozen=True)
class OwnerSla:
    """An owner's own calendar settings; each given one replaces the team's."""

    key: str
    team: str | None = None
    calendar: str | None = None
    timezone: str | None = None
    hours: WeeklyHours | None = None
    holidays: PublicHolidays | None = None
    time_off: tuple[DateRange, ...] = ()


@dataclass(frozen=True)
class Touches:
    """What stops a first-touch clock: a seller activity of these kinds, by a person rather than automation."""

    kinds: frozenset[str] = frozenset(DEFAULT_TOUCH_KINDS)
    ignore_users: frozenset[str] = frozenset()
    stage_exit_is_acceptance: bool = True


DEFAULT_CALENDAR = BusinessCalendar("default", "UTC", OFFICE_HOURS)
DEFAULT_POLICIES = (
    Policy("first-touch", "first_touch", Within(minutes=60),
           ladder=Ladder(remind_fractions=(0.75,), escalate_fraction=1.0, escalate_to=MANAGER,
                         reassign_after_minutes=30, reassign_max=1)),
    Policy("meeting-booked", "meeting_booked", Within(days=3),
           ladder=Ladder(escalate_fraction=1.0, escalate_to=MANAGER)),
)


@dataclass(frozen=True, eq=False)
class SlaConfig:
    """A validated SLA file, with the lookups an SLA engine makes for every hand-off."""

    calendars: Mapping[str, BusinessCalendar]
    default_calendar: str
    teams: Mapping[str, TeamSla] = field(default_factory=dict)
    owners: Mapping[str, OwnerSla] = field(default_factory=dict)
    touches: Touches = Touches()
    policies: tuple[Policy, ...] = DEFAULT_POLICIES
    source: str = "<sla>"
    _resolved: dict[tuple[str, str | None], BusinessCalendar] = field(default_factory=dict, init=False, repr=False)
    _teams: dict[str, TeamSla] = field(default_factory=dict, init=False, repr=False)
    _owners: dict[str, OwnerSla] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._teams.update({_key(name): team for name, team in self.teams.items()})
        self._owners.update({_key(key): owner for key, owner in self.owners.items()})

    @classmethod
    def load(cls, path: str | Path) -> SlaConfig:
        return cls.from_text(read_config_file(path), name=str(path))

    @classmethod
    def from_text(cls, text: str, name: str = "<sla>") -> SlaConfig:
        data, locator = parse_yaml(text, Locator(name))
        return _from_data(data, locator)

    @classmethod
    def default(cls) -> SlaConfig:
        """Monday to Friday 09:00-17:00 UTC, no holidays; first touch within 60m, a meeting within 3d."""
        return cls(calendars={"default": DEFAULT_CALENDAR}, default_calendar="default", source="<built-in default>")

    # -- resolution ------------------------------------------------------------------------------------

    def owner(self, owner_ref: str | None, owner_email: str | None) -> OwnerSla | None:
        """The owner's entry, found by CRM user id first, then by e-mail."""
        for ref in (owner_ref, owner_email):
            if ref is not None and (found := self._owners.get(_key(ref))) is not None:
                return found
        return None

    def team_of(self, owner_ref: str | None, owner_email: str | None) -> str | None:
        owner = self.owner(owner_ref, owner_email)
        return owner.team if owner else None

    def manager_of(self, team: str | None) -> str | None:
        found = self._team(team)
        return found.manager if found else None

    def calendar_for(self, owner_ref: str | None, owner_email: str | None, team: str | None) -> BusinessCalendar:
        """The owner's calendar: their own ``calendar`` or else their team's (the file's team for them, else
        ``team``) or else the default, with the owner's time zone, hours, holidays and time off laid over it."""
        owner = self.owner(owner_ref, owner_email)
        base_name = (owner.calendar if owner and owner.calendar else None) or self._team_calendar(
            owner.team if owner and owner.team else team)
        key = (base_name, owner.key if owner else None)
        cached = self._resolved.get(key)
        if cached is None:
            cached = self._resolved[key] = _merge(self.calendars[base_name], owner)
        return cached

    def day_off(self, owner_ref: str, owner_email: str | None, day: date) -> str | None:
        """Why an owner does not work on ``day`` (their local date) — holiday, closure, time off — for routing,
        which then skips them at assignment."""
        return self.calendar_for(owner_ref, owner_email, self.team_of(owner_ref, owner_email)).day_off(day)

    def policies_for(self, team: str | None, owner: str | None, source: str | None,
                     segments: Iterable[str] = (), owner_email: str | None = None) -> list[Policy]:
        """The policies covering a hand-off: for each measure, the first policy in the file that applies."""
        segments = tuple(segments)
        chosen: dict[str, Policy] = {}
        for policy in self.policies:
            if policy.measure not in chosen and policy.applies(team, owner, source, segments, owner_email):
                chosen[policy.measure] = policy
        return list(chosen.values())

    def is_touch(self, kind: str, user_ref: str | None, automated: bool) -> bool:
        """Whether an activity stops a first-touch clock: a touch kind, by a person, not an ignored user."""
        if automated or str(kind).lower() not in self.touches.kinds:
            return False
        return user_ref is None or _key(user_ref) not in self.touches.ignore_users

    def _team(self, team: str | None) -> TeamSla | None:
        return self._teams.get(_key(team)) if team is not None else None

    def _team_calendar(self, team: str | None) -> str:
        found = self._team(team)
        return found.calendar if found and found.calendar else self.default_calendar


def load_sla(path: str | Path) -> SlaConfig:
    """Read and validate an SLA file; a mistake raises ``ConfigError`` naming file, line and key."""
    return SlaConfig.load(path)


def _key(value: Any) -> str:
    return str(value).strip().casefold()


def _merge(base: BusinessCalendar, owner: OwnerSla | None) -> BusinessCalendar:
    if owner is None:
        return base
    return replace(base, name=f"{base.name}/{owner.key}", timezone=owner.timezone or base.timezone,
                   hours=owner.hours or base.hours, holidays=owner.holidays or base.holidays,
                   time_off=base.time_off + owner.time_off)


# -- from YAML to SlaConfig ----------------------------------------------------------------------------


def _from_data(data: Any, locator: Locator) -> SlaConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("an SLA file is a YAML mapping (calendars, teams, owners, touches, policies)",
                          file=locator.file, line=locator.line(()))
    data = _stringify_keys(_stringify_keys(data, locator, "owners"), locator, "teams")
    spec = validate(SlaSpec, data, locator)
    calendars = {name: _calendar(name, cal, ("calendars", name), locator) for name, cal in spec.calendars.items()}
    default = _default_calendar(spec, calendars, locator)
    calendars.setdefault(default, DEFAULT_CALENDAR)
    known = ", ".join(sorted(calendars))

    def calendar_exists(name: str | None, path: PathKey) -> None:
        if name is not None and name not in calendars:
            raise locator.error(f"unknown calendar {name!r} (declared under calendars: {known})", path)

    teams = {}
    for name, team in spec.teams.items():
        calendar_exists(team.calendar, ("teams", name, "calendar"))
        teams[name] = TeamSla(name, team.calendar, team.manager)
    team_keys = {_key(name) for name in spec.teams}
    owners = {}
    for ref, owner in spec.owners.items():
        path = ("owners", ref)
        calendar_exists(owner.calendar, (*path, "calendar"))
        if owner.team is not None and _key(owner.team) not in team_keys:
            declared = ", ".join(sorted(spec.teams)) or "none declared"
            raise locator.error(f"unknown team {owner.team!r} (declared under teams: {declared})", (*path, "team"))
        owners[ref] = OwnerSla(
            key=ref, team=owner.team, calendar=owner.calendar, timezone=owner.timezone,
            hours=_parse_hours(owner.hours, (*path, "hours"), locator) if owner.hours is not None else None,
            holidays=_holidays(owner.holidays, (*path, "holidays"), locator),
            time_off=tuple(DateRange(off.start, off.last, off.note) for off in owner.time_off))
    policies = DEFAULT_POLICIES if spec.policies is None else _policies(spec.policies, locator)
    touches = Touches(frozenset(spec.touches.kinds), frozenset(_key(u) for u in spec.touches.ignore_users),
                      spec.touches.stage_exit_is_acceptance)
    return SlaConfig(calendars=calendars, default_calendar=default, teams=teams, owners=owners, touches=touches,
                     policies=policies, source=locator.file)


def _default_calendar(spec: SlaSpec, calendars: dict[str, BusinessCalendar], locator: Locator) -> str:
    if spec.default_calendar is not None:
        if spec.default_calendar not in calendars:
            known = ", ".join(sorted(calendars)) or "none declared"
            raise locator.error(f"unknown calendar {spec.default_calendar!r} (declared under calendars: {known})",
                                ("default_calendar",))
        return spec.default_calendar
    if len(calendars) > 1:
        raise locator.error(f"name the default_calendar, one of: {', '.join(sorted(calendars))}", ("calendars",))
    return next(iter(calendars), DEFAULT_CALENDAR.name)


def _calendar(name: str, spec: CalendarSpec, path: PathKey, locator: Locator) -> BusinessCalendar:
    hours = _parse_hours(spec.hours, (*path, "hours"), locator) if spec.hours is not None else OFFICE_HOURS
    return BusinessCalendar(name, spec.timezone, hours, holidays=_holidays(spec.holidays, (*path, "holidays"), locator),
                            closed=frozenset(spec.closed))


def _holidays(spec: HolidaysSpec | None, path: PathKey, locator: Locator) -> PublicHolidays | None:
    if spec is None:
        return None
    if spec.subdivision is None:
        return PublicHolidays(spec.country)
    known = _supported_countries()[spec.country]
    wanted = str(spec.subdivision).strip().casefold()
    match = next((s for s in known if s.casefold() == wanted), None)
    if match is None:
        listed = ", ".join(known) if known else "none"
        raise locator.error(f"unknown subdivision {spec.subdivision!r} of {spec.country} (known: {listed})",
                            (*path, "subdivision"))
    return PublicHolidays(spec.country, match)


def _policies(specs: list[PolicySpec], locator: Locator) -> tuple[Policy, ...]:
    seen: dict[str, int] = {}
    out = []
    for i, spec in enumerate(specs):
        if spec.name in seen:
            raise locator.error(f"duplicate policy name {spec.name!r} (also policy {seen[spec.name]})",
                                ("policies", i, "name"))
        seen[spec.name] = i
        reminders = spec.ladder.remind
        if len(set(reminders)) != len(reminders):
            raise locator.error("each reminder share is listed once", ("policies", i, "ladder", "remind"))
        escalate, reassign = spec.ladder.escalate, spec.ladder.reassign
        ladder = Ladder(remind_fractions=tuple(sorted(reminders)),
                        escalate_fraction=escalate.at if escalate else None,
                        escalate_to=escalate.to if escalate else None,
                        reassign_after_minutes=reassign.after if reassign else None,
                        reassign_max=reassign.max if reassign else 0)
        when = spec.when or WhenSpec()
        out.append(Policy(spec.name, spec.measure, spec.within, spec.calendar, ladder, PolicyFilter(
            *(None if values is None else frozenset(_key(v) for v in values)
              for values in (when.teams, when.owners, when.sources, when.segments)))))
    return tuple(out)


# -- hours ---------------------------------------------------------------------------------------------

_BLOCK_KEYS = {"days", "from", "to"}


def _parse_hours(raw: Any, path: PathKey, locator: Locator) -> WeeklyHours:
    """Weekly hours in any of the three spellings: ``{mon-thu: "09:00-17:30", fri: [...]}``,
    ``{days: [mon, ...], from: "09:00", to: "17:00"}``, or a list of the latter."""
    found: dict[str, list[tuple[Interval, PathKey]]] = {day: [] for day in WEEKDAYS}
    blocks: list[tuple[Any, PathKey]] = []
    if isinstance(raw, dict) and raw and set(raw) <= _BLOCK_KEYS:
        blocks = [(raw, path)]
    elif isinstance(raw, list):
        if not raw:
            raise locator.error("list at least one block of working hours", path)
        blocks = [(block, (*path, i)) for i, block in enumerate(raw)]
    if blocks:
        for block, where in blocks:
            if not isinstance(block, dict):
                raise locator.error("expected {days: [...], from: 'HH:MM', to: 'HH:MM'}", where)
            hours = validate(WorkingHours, block, locator, base=where)
            for day in hours.days:
                found[day].append(((hours.start, hours.end), where))
    elif isinstance(raw, dict) and raw:
        for key, value in raw.items():
            for day in _day_key(key, (*path, key), locator):
                found[day] += _intervals(value, (*path, key), locator)
    else:
        raise locator.error("expected working hours such as {mon-fri: '09:00-17:00'}", path)
    week: list[tuple[Interval, ...]] = []
    for day, intervals in found.items():
        ordered = sorted(intervals)
        for (prev, _), (cur, where) in pairwise(ordered):
            if cur[0] < prev[1]:
                raise locator.error(f"{_text(cur)} overlaps {_text(prev)} on {day}", where)
        week.append(tuple(interval for interval, _ in ordered))
    return working_week(dict(enumerate(week)))


def _day_key(key: Any, path: PathKey, locator: Locator) -> list[str]:
    """``mon``, ``monday``, ``mon-thu`` (a range, may wrap past Sunday) or ``sat,sun``."""
    days: list[str] = []
    try:
        for part in str(key).split(","):
            ends = [_days(end.strip())[0] for end in part.split("-")]
            if len(ends) > 2:
                raise ValueError(f"{part.strip()!r} is not a day or a range of days such as mon-fri")
            first, last = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
            days += [WEEKDAYS[(first + n) % 7] for n in range((last - first) % 7 + 1)]
    except ValueError as exc:
        raise locator.error(str(exc), path) from None
    return days


def _intervals(value: Any, path: PathKey, locator: Locator) -> list[tuple[Interval, PathKey]]:
    if value is None or value == "closed":
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        where = (*path, i) if isinstance(value, list) else path
        out.append((_interval(item, where, locator), where))
    return out


def _interval(item: Any, path: PathKey, locator: Locator) -> Interval:
    if isinstance(item, dict):
        unknown = set(item) - {"from", "to"}
        if unknown or set(item) != {"from", "to"}:
            raise locator.error("an interval is {from: 'HH:MM', to: 'HH:MM'} or 'HH:MM-HH:MM'", path)
        ends = [(_at(item[k], (*path, k), locator)) for k in ("from", "to")]
    elif isinstance(item, str) and item.count("-") == 1:
        ends = [_at(part.strip(), path, locator) for part in item.split("-")]
    elif isinstance(item, int | float) and not isinstance(item, bool):
        raise locator.error("write times in quotes, e.g. '09:00-17:30' (YAML reads an unquoted 17:30 as a number)",
                            path)
    else:
        raise locator.error(f"expected an interval such as '09:00-17:30', got {item!r}", path)
    start, end = ends
    if end <= start:
        raise locator.error(f"{_text((start, end))} ends before it starts (shifts across midnight are not supported)",
                            path)
    return start, end


def _at(value: Any, path: PathKey, locator: Locator) -> int:
    try:
        return _clock(value)
    except ValueError as exc:
        raise locator.error(str(exc), path) from None


def _text(interval: Interval) -> str:
    return "-".join(f"{m // 60:02d}:{m % 60:02d}" for m in interval)
