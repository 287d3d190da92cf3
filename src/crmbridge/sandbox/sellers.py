"""Sandbox sellers who answer hand-offs, in simulated time: who answers how fast, and what follows.

Vendor-free and pure: each vendor sandbox lists its open deals in the hand-off stage and carries out
the steps through its own state (a ``SalesDesk``); this module decides, from a seed, when each seller
first touches the lead, whether a meeting follows, when the deal is accepted, won, lost or rejected.
Every instant is a whole UTC minute, so a vendor that keeps activity times to the minute only
reports the same instant as one that keeps milliseconds.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HANDOFF_STAGE = "Sales-ready leads"  # write-back's default stage name (``HandoffConfig.stage``)
MINUTE = timedelta(minutes=1)

# -- profiles ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """How soon a seller first touches a hand-off: ``first_touch`` minutes after it (working minutes
    when ``hours_only``), or never (None)."""

    name: str
    first_touch: tuple[int, int] | None
    hours_only: bool = False


PROFILES: dict[str, Profile] = {
    "fast": Profile("fast", (2, 20)),
    "slow": Profile("slow", (45, 240)),
    "outside_hours": Profile("outside_hours", (5, 60), hours_only=True),
    "never": Profile("never", None),
}
DEFAULT_MIX = (("fast", 0.4), ("slow", 0.3), ("outside_hours", 0.2), ("never", 0.1))

# After the first touch (chances and delays; delays land inside the seller's working hours).
REJECT = 0.2  # rejected early, straight from the hand-off stage
MEETING = 0.6  # an accepted lead gets a meeting
WIN, LOSE = 0.35, 0.35  # an accepted lead's outcome; the rest stay open
ACCEPT_HOURS = (1, 24)
REJECT_HOURS = (1, 48)
MEETING_DAYS = (1, 6)
OUTCOME_DAYS = (7, 30)
REJECT_REASONS = ("not a fit", "no budget", "bad timing")
LOSS_REASONS = ("went with a competitor", "no budget", "no decision", "price")
WIN_REASONS = ("clear fit", "fast time to value", "strong champion")

# What each step counts as in ``/_sandbox/stats``.
STAT_NAMES = {"touch": "touches", "meeting": "meetings", "accept": "accepted", "won": "won", "lost": "lost",
              "rejected": "rejected"}


def default_profile(owner: str, seed: int) -> str:
    """The profile an owner has unless the request names one: drawn from the seed and the owner."""
    roll = random.Random(f"seller-profile:{seed}:{owner}").random()
    for name, share in DEFAULT_MIX:
        roll -= share
        if roll < 0:
            return name
    return DEFAULT_MIX[-1][0]


# -- working hours ------------------------------------------------------------------------------------


def floor_minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def ceil_minute(at: datetime) -> datetime:
    down = floor_minute(at)
    return down if down == at else down + MINUTE


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """A seller's week: ``opens``-``closes`` local time on ``days`` (0 = Monday) in an IANA zone."""

    zone: ZoneInfo
    opens: time = time(9)
    closes: time = time(17)
    days: frozenset[int] = frozenset(range(5))

    @classmethod
    def in_zone(cls, name: str | None) -> WorkingHours:
        """Office hours in the named zone; UTC when the CRM names none or one this system does not know."""
        try:
            return cls(ZoneInfo(name)) if name else cls(ZoneInfo("UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            return cls(ZoneInfo("UTC"))

    def _day(self, day: Any) -> tuple[datetime, datetime]:
        return (datetime.combine(day, self.opens, self.zone).astimezone(UTC),
                datetime.combine(day, self.closes, self.zone).astimezone(UTC))

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        return local.weekday() in self.days and self.opens <= local.time() < self.closes

    def next_open(self, at: datetime) -> datetime:
        """``at`` (rounded up to the minute) if the seller works then, else when they next start work."""
        at = ceil_minute(at)
        local = at.astimezone(self.zone).date()
        for ahead in range(15):
            day = local + timedelta(days=ahead)
            if day.weekday() not in self.days:
                continue
            start, end = self._day(day)
            if at < start:
                return start
            if at < end:
                return at
        raise ValueError("these working hours never open")

    def add(self, at: datetime, minutes: int) -> datetime:
        """The instant ``minutes`` of working time after ``at``; always inside the hours."""
        moment, left = self.next_open(at), timedelta(minutes=minutes)
        for _ in range(10_000):
            _, end = self._day(moment.astimezone(self.zone).date())
            if moment + left < end:
                return moment + left
            left -= end - moment
            moment = self.next_open(end)
        raise ValueError("working time runs past any plausible horizon")


# -- plans ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One thing a seller does: touch (a call or e-mail), meeting, accept (leave the hand-off stage),
    won, lost, rejected; ``at`` is its simulated instant (a whole UTC minute)."""

    action: str
    at: datetime
    channel: str | None = None  # touch: call or email
    reason: str | None = None  # won, lost, rejected

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "at": iso(self.at)}
        if self.channel:
            out["channel"] = self.channel
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class DealPlan:
    deal: str
    owner: str
    profile: str
    handoff_at: datetime
    steps: tuple[Step, ...]


def _hours(rng: random.Random, bounds: tuple[int, int]) -> timedelta:
    return timedelta(minutes=rng.randint(bounds[0] * 60, bounds[1] * 60))


def _at_work(rng: random.Random, hours: WorkingHours, at: datetime) -> datetime:
    """``at`` or, outside the seller's hours, some time in their next working morning (not all at opening)."""
    at = ceil_minute(at)
    return at if hours.is_open(at) else hours.add(at, rng.randint(0, 180))


def first_touch(rng: random.Random, profile: Profile, handoff_at: datetime, hours: WorkingHours) -> datetime | None:
    if profile.first_touch is None:
        return None
    low, high = profile.first_touch
    if profile.hours_only:
        return hours.add(handoff_at, rng.randint(low, high))
    # One minute more than the low bound, then down to the minute: strictly inside (low, high].
    return floor_minute(handoff_at + timedelta(minutes=rng.randint(low + 1, high)))


def plan_deal(deal: str, owner: str, handoff_at: datetime, profile: str, hours: WorkingHours, seed: int
              ) -> DealPlan:
    """Everything the owner will do with this hand-off; the same for the same (seed, deal, profile)."""
    rng = random.Random(f"sellers:{seed}:{deal}")
    touched = first_touch(rng, PROFILES[profile], handoff_at, hours)
    if touched is None:
        return DealPlan(deal, owner, profile, handoff_at, ())
    steps = [Step("touch", touched, channel=rng.choice(("call", "email")))]
    if rng.random() < REJECT:
        steps.append(Step("rejected", _at_work(rng, hours, touched + _hours(rng, REJECT_HOURS)),
                          reason=rng.choice(REJECT_REASONS)))
        return DealPlan(deal, owner, profile, handoff_at, tuple(steps))
    accepted = _at_work(rng, hours, touched + _hours(rng, ACCEPT_HOURS))
    steps.append(Step("accept", accepted))
    last = accepted
    if rng.random() < MEETING:
        met = _at_work(rng, hours, touched + timedelta(days=rng.randint(*MEETING_DAYS)))
        last = max(met, accepted)
        steps.append(Step("meeting", last))
    roll, closed = rng.random(), _at_work(rng, hours, last + timedelta(days=rng.randint(*OUTCOME_DAYS)))
    if roll < WIN:
        steps.append(Step("won", closed, reason=rng.choice(WIN_REASONS)))
    elif roll < WIN + LOSE:
        steps.append(Step("lost", closed, reason=rng.choice(LOSS_REASONS)))
    steps.sort(key=lambda s: s.at)  # stable: a meeting at the acceptance instant stays after it
    return DealPlan(deal, owner, profile, handoff_at, tuple(steps))


# -- requests ---------------------------------------------------------------------------------------


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(value: Any, name: str) -> datetime:
    """An ISO 8601 instant with a zone (``Z`` or an offset), as UTC; ValueError naming ``name`` otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be an ISO 8601 instant such as 2026-03-02T09:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} is not an ISO 8601 instant: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{name} must carry a time zone (Z or an offset): {value!r}")
    return parsed.astimezone(UTC)


def parse_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}")
    return value


def _only(body: Any, name: str, keys: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ValueError(f"{name} must be a JSON object")
    unknown = sorted(set(body) - set(keys))
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {', '.join(unknown)} (known: {', '.join(keys)})")
    return body


def parse_profiles(value: Any) -> dict[str, str]:
    """``{"<owner id or e-mail>": "fast", ...}``, keys as given (e-mails lower-cased)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("sellers.profiles must be an object of owner id or e-mail to profile name")
    out: dict[str, str] = {}
    for owner, profile in value.items():
        if not isinstance(owner, str) or not owner.strip():
            raise ValueError("sellers.profiles: every key must be an owner id or e-mail")
        if profile not in PROFILES:
            raise ValueError(f"sellers.profiles: unknown profile {profile!r} for {owner!r} "
                             f"(known: {', '.join(PROFILES)})")
        out[owner.strip().lower()] = profile
    return out


@dataclass(frozen=True, slots=True)
class SellerRequest:
    """``{"until": "<instant>", "seed": 7, "profiles": {...}}``: carry out what is due by ``until``."""

    until: datetime
    seed: int
    profiles: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: Any, default_seed: int) -> SellerRequest:
        body = _only(body, "sellers", ("until", "seed", "profiles"))
        if "until" not in body:
            raise ValueError("sellers.until is required: the simulated instant to work until")
        seed = parse_int(body["seed"], "sellers.seed", 0, 2**63) if body.get("seed") is not None else default_seed
        return cls(parse_instant(body["until"], "sellers.until"), seed, parse_profiles(body.get("profiles")))

    def profile_of(self, owner: str, email: str | None) -> str:
        named = self.profiles.get(owner.lower()) or (self.profiles.get(email.lower()) if email else None)
        return named or default_profile(owner, self.seed)


# -- carrying plans out -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandoffDeal:
    """An open deal in the hand-off stage as a vendor sandbox sees it."""

    deal: str
    owner: str | None
    owner_email: str | None
    owner_zone: str | None
    handoff_at: datetime


class SalesDesk(Protocol):
    """What a vendor sandbox offers its sellers (called with its state locked)."""

    def handoff_deals(self) -> Sequence[HandoffDeal]: ...

    def carry_out(self, plan: DealPlan, step: Step) -> dict[str, Any] | None:
        """Do ``step`` through the state as the owner in the web app; answer what was made (ids), or
        ``{"skipped": why}`` for a step no longer needed, or None when the deal is gone or closed."""
        ...


class SellerLedger:
    """The plans made and the steps done, per deal (a sandbox keeps one; ``reset`` forgets it)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.plans: dict[str, DealPlan] = {}
        self.progress: dict[str, int] = {}  # deal -> steps done (steps run in order)
        self.counts: Counter[str] = Counter()
        self.last_until: datetime | None = None

    def plan(self, deal: HandoffDeal, make: Callable[[datetime], DealPlan]) -> None:
        """Plan a deal the first time it is seen; again only when its owner changed before any step."""
        known = self.plans.get(deal.deal)
        if known is None:
            self.plans[deal.deal] = make(deal.handoff_at)
        elif known.owner != deal.owner and not self.progress.get(deal.deal):
            # Reassigned before anyone answered: the new owner starts from when the sellers last looked.
            self.plans[deal.deal] = make(max(deal.handoff_at, self.last_until or deal.handoff_at))

    def due(self, until: datetime) -> list[tuple[DealPlan, list[tuple[int, Step]]]]:
        out = []
        for deal, plan in sorted(self.plans.items()):
            done = self.progress.get(deal, 0)
            steps = [(i, s) for i, s in enumerate(plan.steps) if i >= done and s.at <= until]
            if steps:
                out.append((plan, steps))
        return out

    def mark(self, plan: DealPlan, index: int, step: Step, counted: bool) -> None:
        self.progress[plan.deal] = index + 1
        if counted:
            self.counts[STAT_NAMES[step.action]] += 1

    def abandon(self, plan: DealPlan) -> None:
        self.progress[plan.deal] = len(plan.steps)
        self.counts["abandoned"] += 1

    def next_step(self, deal: str) -> Step | None:
        plan = self.plans[deal]
        done = self.progress.get(deal, 0)
        return plan.steps[done] if done < len(plan.steps) else None

    def snapshot(self) -> dict[str, int]:
        return {"planned": len(self.plans), **{name: self.counts.get(name, 0)
                                               for name in (*STAT_NAMES.values(), "abandoned")}}


def work_until(desk: SalesDesk, ledger: SellerLedger, request: SellerRequest) -> dict[str, Any]:
    """Plan every hand-off deal not yet planned, then carry out every step due by ``request.until``."""
    seen = desk.handoff_deals()
    for deal in seen:
        if deal.owner is None:
            continue
        owner, profile = deal.owner, request.profile_of(deal.owner, deal.owner_email)
        hours = WorkingHours.in_zone(deal.owner_zone)
        ledger.plan(deal, lambda start, d=deal.deal, o=owner, p=profile, h=hours:
                    plan_deal(d, o, start, p, h, request.seed))
    deals: list[dict[str, Any]] = []
    summary: Counter[str] = Counter()
    for plan, steps in ledger.due(request.until):
        actions = []
        for index, step in steps:
            made = desk.carry_out(plan, step)
            if made is None:
                ledger.abandon(plan)
                actions.append({**step.as_dict(), "skipped": "the deal is gone or was closed by someone else"})
                break
            counted = "skipped" not in made
            ledger.mark(plan, index, step, counted)
            if counted:
                summary[STAT_NAMES[step.action]] += 1
            actions.append({**step.as_dict(), **made})
        following = ledger.next_step(plan.deal)
        deals.append({"deal_id": plan.deal, "owner_id": plan.owner, "profile": plan.profile,
                      "handoff_at": iso(plan.handoff_at), "actions": actions,
                      "next": following.as_dict() if following else None})
    ledger.last_until = max(request.until, ledger.last_until or request.until)
    waiting = sum(1 for d in ledger.plans if ledger.next_step(d) is not None)
    return {"until": iso(request.until), "seed": request.seed, "deals": deals,
            "summary": {"handoff_deals": len(seen), "acted_on": len(deals), "waiting": waiting,
                        **{name: summary.get(name, 0) for name in STAT_NAMES.values()}}}


# -- account surge ------------------------------------------------------------------------------------

SURGE_KINDS = (("page_view", 0.5), ("email_open", 0.25), ("email_click", 0.15), ("guide_download", 0.1))
MAX_SURGE_ACCOUNTS = 50
MAX_SURGE_DAYS = 90


@dataclass(frozen=True, slots=True)
class SurgeRequest:
    """``{"accounts": 3, "days": 5, "until": "<instant>", "seed": 7}``."""

    accounts: int
    days: int
    until: datetime
    seed: int

    @classmethod
    def parse(cls, body: Any, default_seed: int) -> SurgeRequest:
        body = _only(body, "surge", ("accounts", "days", "until", "seed"))
        if "until" not in body:
            raise ValueError("surge.until is required: the simulated instant the surge builds up to")
        seed = parse_int(body["seed"], "surge.seed", 0, 2**63) if body.get("seed") is not None else default_seed
        return cls(parse_int(body.get("accounts", 3), "surge.accounts", 1, MAX_SURGE_ACCOUNTS),
                   parse_int(body.get("days", 5), "surge.days", 1, MAX_SURGE_DAYS),
                   parse_instant(body["until"], "surge.until"), seed)

    @property
    def key(self) -> tuple[int, int, datetime, int]:
        return self.accounts, self.days, self.until, self.seed


@dataclass(frozen=True, slots=True)
class SurgeEvent:
    account: str
    person: str
    kind: str  # page_view, email_open, email_click, guide_download
    at: datetime


def rising_instant(rng: random.Random, until: datetime, days: int) -> datetime:
    """An instant in the ``days`` before ``until``, denser towards ``until`` (density grows linearly)."""
    span = days * 86_400
    offset = span * (1.0 - math.sqrt(rng.random()))
    return floor_minute(until - timedelta(seconds=min(offset, span - 60)))


def plan_surge(people_by_account: Mapping[str, Sequence[str]], request: SurgeRequest) -> list[SurgeEvent]:
    """Pick ``request.accounts`` accounts (of those given, which should have several people each) and
    have their people engage over the days before ``until``; each account downloads the buyer's guide."""
    rng = random.Random(f"surge:{request.seed}")
    candidates = sorted(people_by_account)
    chosen = sorted(rng.sample(candidates, min(request.accounts, len(candidates))))
    kinds, weights = zip(*SURGE_KINDS, strict=True)
    events: list[SurgeEvent] = []
    for account in chosen:
        people = sorted(people_by_account[account])
        for person in people:
            for _ in range(request.days * rng.randint(1, 3)):
                events.append(SurgeEvent(account, person, rng.choices(kinds, weights)[0],
                                         rising_instant(rng, request.until, request.days)))
        # Someone reads the buyer's guide on the last day: the moment buying interest shows.
        last_day = floor_minute(request.until - timedelta(minutes=rng.randint(1, 24 * 60 - 1)))
        events.append(SurgeEvent(account, rng.choice(people), "guide_download", last_day))
    events.sort(key=lambda e: (e.at, e.account, e.person))
    return events
