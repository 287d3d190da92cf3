"""The routing file: its YAML schema, validated once with errors that name file, line and key.

``load_routing(path)`` reads and checks a file; ``RoutingConfig.default()`` is the chain used when no
file is configured. Seller references (ids, e-mails) can only be checked against the CRM's users at
run time; ``RoutingConfig.audit(sellers)`` lists the ones that match nobody.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from crmbridge.errors import ConfigError
from crmbridge.routing.model import Seller
from crmbridge.scoring.durations import parse_duration
from crmbridge.yamlconf import Locator, PathKey, parse_yaml, read_config_file, validate

Availability = Literal["available_now", "available_today", "active"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _ref(value: Any) -> str:
    # CRM user ids are often numeric; YAML reads them as numbers.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("expected a user id or an e-mail address")
    text = str(value).strip()
    if not text:
        raise ValueError("expected a user id or an e-mail address, got an empty value")
    return text


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected an IANA time zone such as Europe/Berlin")
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None
    return value.strip()


_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


def _clock(value: Any) -> int:
    """Minutes since midnight from ``"09:00"``; ``"24:00"`` is the end of the day."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 17:30 as the number 1050; refuse rather than guess.
        raise ValueError("write times in quotes, e.g. '17:30' (YAML reads an unquoted 17:30 as a number)")
    match = _CLOCK.match(str(value).strip()) if isinstance(value, str) else None
    if not match or (int(match[1]) == 24 and int(match[2]) != 0):
        raise ValueError(f"expected a time of day such as '09:00' or '17:30', got {value!r}")
    return int(match[1]) * 60 + int(match[2])


_DAY_NAMES = {d: d for d in WEEKDAYS} | {
    full: full[:3] for full in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}


def _days(value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    out = []
    for item in values:
        day = _DAY_NAMES.get(item.strip().lower()) if isinstance(item, str) else None
        if day is None:
            raise ValueError(f"unknown weekday {item!r} (use mon, tue, wed, thu, fri, sat, sun)")
        out.append(day)
    if not out:
        raise ValueError("name at least one working day")
    return tuple(dict.fromkeys(out))


def _values(value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError("name at least one value")
    for item in values:
        if isinstance(item, bool):
            # YAML 1.1 reads unquoted NO, YES, ON, OFF as booleans: Norway's country code becomes false.
            raise ValueError(f"got {item!r} where text was expected; quote values YAML reads as true/false, "
                             "e.g. 'NO' for Norway")
        if not isinstance(item, str | int | float):
            raise ValueError(f"expected plain text values, got {item!r}")
    return tuple(str(item).strip() for item in values)


def _duration(value: Any) -> timedelta:
    delta = value if isinstance(value, timedelta) else parse_duration(value)
    if delta <= timedelta(0):
        raise ValueError("the window must be longer than zero")
    return delta


def _ooo(value: Any) -> Any:
    # A bare date is a single day off.
    return {"from": value} if isinstance(value, date | str) else value


def _team(value: Any) -> Any:
    if value is None:
        return {}
    return {"members": value} if isinstance(value, list) else value


Ref = Annotated[str, BeforeValidator(_ref)]
TimeZone = Annotated[str, BeforeValidator(_timezone)]
Clock = Annotated[int, BeforeValidator(_clock)]
Weekdays = Annotated[tuple[str, ...], BeforeValidator(_days)]
Values = Annotated[tuple[str, ...], BeforeValidator(_values)]
Window = Annotated[timedelta, BeforeValidator(_duration)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64,
                            description="letters, digits, _ . -")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Spec):
    """Inclusive bounds; either may be left out."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class OutOfOffice(_Spec):
    """Days off, both ends included, in the seller's own calendar."""

    start: date = Field(alias="from")
    end: date | None = Field(default=None, alias="to")
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> OutOfOffice:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"'to' ({self.end}) is before 'from' ({self.start})")
        return self

    @property
    def last(self) -> date:
        return self.end or self.start

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.last

    def describe(self) -> str:
        span = str(self.start) if self.last == self.start else f"{self.start} to {self.last}"
        return span + (f" ({self.note})" if self.note else "")


class WorkingHours(_Spec):
    """When a seller works, in their own time zone. Shifts across midnight are not supported."""

    days: Weekdays = ("mon", "tue", "wed", "thu", "fri")
    start: Clock = Field(alias="from")
    end: Clock = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.end <= self.start:
            raise ValueError("'to' must be after 'from' on the same day (shifts across midnight are not supported)")
        return self

    def describe(self) -> str:
        return f"{_span_of_days(self.days)} {clock_text(self.start)}-{clock_text(self.end)}"


def clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _span_of_days(days: Sequence[str]) -> str:
    idx = sorted(WEEKDAYS.index(d) for d in set(days))
    if len(idx) > 2 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{WEEKDAYS[idx[0]].title()}-{WEEKDAYS[idx[-1]].title()}"
    return ", ".join(WEEKDAYS[i].title() for i in idx)


class SellerSettings(_Spec):
    weight: float = Field(default=1, gt=0, description="share of round robin relative to the others")
    daily_cap: int | None = Field(default=None, ge=1, description="most leads per day, in the seller's day")
    timezone: TimeZone | None = Field(default=None, description="overrides the CRM's time zone for the seller")
    out_of_office: list[Annotated[OutOfOffice, BeforeValidator(_ooo)]] = Field(default_factory=list)
    working_hours: WorkingHours | None = None
    teams: list[str] = Field(default_factory=list)


class TeamSpec(_Spec):
    description: str | None = None
    members: list[Ref] = Field(default_factory=list)


class SizeBand(_Spec):
    """A company size band by employees, both ends included."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> SizeBand:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self

    def holds(self, employees: int | None) -> bool:
        if employees is None:
            return False
        return (self.min is None or employees >= self.min) and (self.max is None or employees <= self.max)


class When(_Spec):
    """Conditions on the lead; all given ones must hold. Text compares case-insensitively."""

    country: Values | None = None
    region: Values | None = None
    industry: Values | None = None
    segment: Values | None = None
    product_interest: Values | None = Field(default=None, description="the lead is interested in any of these")
    size_band: Values | None = Field(default=None, description="names from size_bands; any of them")
    employees: Range | None = None
    annual_revenue: Range | None = None
    score: Range | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)


class _RuleSpec(_Spec):
    name: Name
    description: str | None = None
    when: When | None = None


class AccountOwnerRule(_RuleSpec):
    kind: Literal["account_owner"]
    availability: Availability = "active"


class _PoolRule(_RuleSpec):
    team: str | None = None
    pool: list[Ref] | None = Field(default=None, min_length=1)
    availability: Availability = "available_today"
    window: Window | None = Field(default=None, description="round robin counts assignments this far back")


class TerritoryRule(_PoolRule):
    kind: Literal["territory"]
    when: When  # type: ignore[assignment]
    owner: Ref | None = None


class SegmentRule(TerritoryRule):
    kind: Literal["segment"]  # type: ignore[assignment]


class RoundRobinRule(_PoolRule):
    kind: Literal["round_robin"]


class FixedRule(_RuleSpec):
    kind: Literal["fixed"]
    owner: Ref
    availability: Availability = "available_today"


class ClaimRule(_RuleSpec):
    kind: Literal["claim"]
    team: str | None = None
    availability: Availability = "available_today"


RuleSpec = AccountOwnerRule | TerritoryRule | SegmentRule | RoundRobinRule | FixedRule | ClaimRule
RULE_KINDS: dict[str, type[_RuleSpec]] = {
    "account_owner": AccountOwnerRule,
    "territory": TerritoryRule,
    "segment": SegmentRule,
    "round_robin": RoundRobinRule,
    "fixed": FixedRule,
    "claim": ClaimRule,
}


class FallbackSpec(_Spec):
    """What answers when no rule found an owner: a fixed owner, or announcing the lead for claiming."""

    mode: Literal["claim", "owner"] = "claim"
    owner: Ref | None = None
    team: str | None = None


class RoutingSpec(_Spec):
    version: Literal[1] = 1
    default_timezone: TimeZone = "UTC"
    window: Window = timedelta(days=30)
    size_bands: dict[str, SizeBand] = Field(default_factory=dict)
    teams: dict[str, Annotated[TeamSpec, BeforeValidator(_team)]] = Field(default_factory=dict)
    sellers: dict[str, SellerSettings] = Field(default_factory=dict)
    rules: list[Any] = Field(default_factory=list)
    fallback: FallbackSpec = FallbackSpec()


@dataclass(frozen=True)
class RoutingConfig:
    """A validated routing chain and the per-seller settings it uses."""

    rules: tuple[RuleSpec, ...]
    fallback: FallbackSpec = field(default_factory=FallbackSpec)
    sellers: dict[str, SellerSettings] = field(default_factory=dict)
    teams: dict[str, TeamSpec] = field(default_factory=dict)
    size_bands: dict[str, SizeBand] = field(default_factory=dict)
    default_timezone: str = "UTC"
    window: timedelta = timedelta(days=30)
    source: str = "<routing>"

    @classmethod
    def load(cls, path: str | Path) -> RoutingConfig:
        return cls.from_text(read_config_file(path), name=str(path))

    @classmethod
    def from_text(cls, text: str, name: str = "<routing>") -> RoutingConfig:
        try:
            data, locator = parse_yaml(text, Locator(name))
        except ValueError as exc:
            raise _bad_scalar(text, name, exc) from None
        return _from_data(data, locator)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoutingConfig:
        return _from_data(data, Locator("<routing>"))

    @classmethod
    def default(cls) -> RoutingConfig:
        """Existing account owners keep their accounts; everyone else by weighted round robin; else claim."""
        return cls(
            rules=(AccountOwnerRule(name="account-owner", kind="account_owner"),
                   RoundRobinRule(name="round-robin", kind="round_robin")),
            fallback=FallbackSpec(mode="claim"),
            source="<built-in default>",
        )

    def audit(self, sellers: Iterable[Seller]) -> list[str]:
        """Problems only the CRM's users reveal: references that match nobody or a deactivated user,
        and time zones the CRM reports that are not IANA names."""
        from crmbridge.routing.roster import Roster

        return Roster(self, list(sellers)).audit()


def load_routing(path: str | Path) -> RoutingConfig:
    """Read and validate a routing file; a mistake raises ``ConfigError`` naming file, line and key."""
    return RoutingConfig.load(path)


def _bad_scalar(text: str, name: str, exc: ValueError) -> ConfigError:
    """Name the value YAML itself could not read (such as the date 2025-02-30) by its line and key."""
    loader = yaml.SafeLoader("")

    def walk(node: yaml.Node, path: PathKey) -> ConfigError | None:
        if isinstance(node, yaml.MappingNode):
            pairs = [(k, v, (*path, k.value)) for k, v in node.value]
            return next((e for _, v, p in pairs if (e := walk(v, p))), None)
        if isinstance(node, yaml.SequenceNode):
            return next((e for i, v in enumerate(node.value) if (e := walk(v, (*path, i)))), None)
        try:
            loader.construct_object(node, deep=True)
        except ValueError as problem:
            return ConfigError(f"invalid value {node.value!r}: {problem}", file=name, line=node.start_mark.line + 1,
                               key=".".join(str(p) for p in path) or None)
        return None

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    return (walk(root, ()) if root is not None else None) or ConfigError(f"invalid value: {exc}", file=name)


def _from_data(data: Any, locator: Locator) -> RoutingConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("a routing file is a YAML mapping (teams, sellers, rules, fallback, ...)",
                          file=locator.file, line=locator.line(()))
    data = _stringify_keys(data, locator, "sellers")
    spec = validate(RoutingSpec, data, locator)
    rules = tuple(_rule(raw, ("rules", i), locator) for i, raw in enumerate(spec.rules))
    _check_references(spec, rules, locator)
    return RoutingConfig(rules=rules, fallback=spec.fallback, sellers=spec.sellers, teams=spec.teams,
                         size_bands=spec.size_bands, default_timezone=spec.default_timezone, window=spec.window,
                         source=locator.file)


def _stringify_keys(data: dict[Any, Any], locator: Locator, section: str) -> dict[Any, Any]:
    """Numeric user ids used as keys become text, and keep their line numbers."""
    block = data.get(section)
    if not isinstance(block, dict) or all(isinstance(k, str) for k in block):
        return data
    for key in list(block):
        if not isinstance(key, str):
            for path, line in list(locator.lines.items()):
                if path[:2] == (section, key):
                    locator.lines[(section, str(key), *path[2:])] = line
    return {**data, section: {str(k): v for k, v in block.items()}}


def _rule(raw: Any, path: PathKey, locator: Locator) -> RuleSpec:
    if not isinstance(raw, dict):
        raise locator.error("a rule is a mapping with at least name and kind", path)
    kind = raw.get("kind")
    if kind is None:
        raise locator.error(f"missing 'kind' (one of: {', '.join(sorted(RULE_KINDS))})", path)
    if kind not in RULE_KINDS:
        raise locator.error(f"unknown rule kind {kind!r} (known: {', '.join(sorted(RULE_KINDS))})",
                            (*path, "kind"))
    rule = validate(RULE_KINDS[kind], raw, locator, base=path)
    _check_rule(rule, path, locator)
    return rule  # type: ignore[return-value]


def _check_rule(rule: _RuleSpec, path: PathKey, locator: Locator) -> None:
    if isinstance(rule, TerritoryRule):
        if rule.when.is_empty():
            raise locator.error(f"a {rule.kind} rule needs at least one condition", (*path, "when"))
        targets = [k for k in ("owner", "team", "pool") if getattr(rule, k) is not None]
        if len(targets) != 1:
            key = targets[1] if len(targets) > 1 else "kind"
            raise locator.error(f"a {rule.kind} rule routes to exactly one of owner, team or pool "
                                f"(got {', '.join(targets) or 'none'})", (*path, key))
        if rule.owner is not None and rule.window is not None:
            raise locator.error("window only applies to round robin (team or pool)", (*path, "window"))
    elif isinstance(rule, RoundRobinRule) and rule.team is not None and rule.pool is not None:
        raise locator.error("give team or pool, not both", (*path, "pool"))


def _check_references(spec: RoutingSpec, rules: Sequence[RuleSpec], locator: Locator) -> None:
    teams = {name.casefold() for name in spec.teams}
    declared = ", ".join(sorted(spec.teams)) or "none declared"

    def team_exists(name: str | None, path: PathKey) -> None:
        if name is not None and name.casefold() not in teams:
            raise locator.error(f"unknown team {name!r} (declared under teams: {declared})", path)

    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.name == "fallback":
            raise locator.error("the name 'fallback' is reserved for the fallback section", ("rules", i, "name"))
        if rule.name in seen:
            raise locator.error(f"duplicate rule name {rule.name!r} (also rule {seen[rule.name]})",
                                ("rules", i, "name"))
        seen[rule.name] = i
        team_exists(getattr(rule, "team", None), ("rules", i, "team"))
        for band in (rule.when.size_band if rule.when and rule.when.size_band else ()):
            if band not in spec.size_bands:
                known = ", ".join(sorted(spec.size_bands)) or "none declared"
                raise locator.error(f"unknown size band {band!r} (declared under size_bands: {known})",
                                    ("rules", i, "when", "size_band"))
    for ref, settings in spec.sellers.items():
        for j, team in enumerate(settings.teams):
            team_exists(team, ("sellers", ref, "teams", j))
    team_exists(spec.fallback.team, ("fallback", "team"))
    if spec.fallback.mode == "owner" and spec.fallback.owner is None:
        raise locator.error("fallback mode 'owner' needs an owner (a user id or e-mail)", ("fallback", "mode"))
    if spec.fallback.mode == "claim" and spec.fallback.owner is not None:
        raise locator.error("an owner only applies to fallback mode 'owner'", ("fallback", "owner"))
