"""Owner assignment: the routing chain applied to one lead, as a pure function of the lead, the CRM's
sellers, how many leads each already has, and the moment.

Rules run in order. The first rule whose conditions hold and that finds an eligible seller decides; a
rule that holds but finds nobody records why and lets the next rule try; the fallback always answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from crmbridge.routing.availability import DaysOff, calendar_problem, unavailable
from crmbridge.routing.conditions import describe_match
from crmbridge.routing.config import (
    AccountOwnerRule,
    Availability,
    ClaimRule,
    FixedRule,
    RoundRobinRule,
    RoutingConfig,
    RuleSpec,
    TerritoryRule,
)
from crmbridge.routing.ledger import CachedCounts, Ledger
from crmbridge.routing.model import Assignment, Lead, Seller, Skip, SkipCause
from crmbridge.routing.roster import Roster, SellerProfile
from crmbridge.scoring.durations import format_duration

FALLBACK = "fallback"

_CAUSE_WORDS = {
    SkipCause.INACTIVE: "deactivated",
    SkipCause.OUT_OF_OFFICE: "out of office",
    SkipCause.OFF_DAY: "off today",
    SkipCause.OUTSIDE_HOURS: "outside working hours",
    SkipCause.CAPPED: "at the daily cap",
}


@dataclass
class _Decision:
    """The state of one assignment while the chain runs."""

    lead: Lead
    roster: Roster
    counts: CachedCounts
    now: datetime
    config: RoutingConfig
    days_off: DaysOff | None = None
    skips: list[Skip] = field(default_factory=list)

    def skip(self, rule: str, cause: SkipCause, detail: str, seller_id: str | None = None) -> None:
        self.skips.append(Skip(rule, cause, detail, seller_id))

    def answer(self, rule: str, reason: str, owner: SellerProfile | None = None,
               candidates: Sequence[SellerProfile] = (), team: str | None = None) -> Assignment:
        return Assignment(
            owner_id=owner.id if owner else None, mode="owner" if owner else "claim", rule=rule, reason=reason,
            owner_name=owner.label if owner else None, candidates=tuple(p.id for p in candidates), team=team,
            skipped=tuple(self.skips),
        )

    def eligible(self, rule: str, members: Sequence[SellerProfile], level: Availability,
                 *, record: bool = True) -> tuple[list[SellerProfile], Counter[SkipCause]]:
        ok: list[SellerProfile] = []
        causes: Counter[SkipCause] = Counter()
        for profile in members:
            problem = unavailable(profile, level, self.now, self.counts, self.days_off)
            if problem is None:
                ok.append(profile)
                continue
            causes[problem[0]] += 1
            if record:
                self.skip(rule, problem[0], problem[1], profile.id)
        return ok, causes


class OwnerRouter:
    """Decides who owns a sales-ready lead under a routing configuration (the built-in default if none)."""

    def __init__(self, config: RoutingConfig | None = None, days_off: DaysOff | None = None) -> None:
        self.config = config or RoutingConfig.default()
        self.days_off = days_off  # holidays and time off from the SLA calendars: a seller off today is skipped

    def assign(self, lead: Lead, sellers: Sequence[Seller], ledger: Ledger, now: datetime) -> Assignment:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must carry a time zone")
        decision = _Decision(lead, Roster(self.config, sellers), CachedCounts(ledger), now, self.config,
                             self.days_off)
        for rule in self.config.rules:
            matched = describe_match(rule.when, lead, self.config.size_bands)
            if matched is None:
                continue
            answer = _apply(rule, matched, decision)
            if answer is not None:
                return answer
        return _fallback(decision)


def _apply(rule: RuleSpec, matched: list[str], d: _Decision) -> Assignment | None:
    if isinstance(rule, AccountOwnerRule):
        return _account_owner(rule, d)
    if isinstance(rule, TerritoryRule):
        prefix = f"{rule.kind} {rule.name} ({', '.join(matched)}): "
        if rule.owner is not None:
            return _fixed(rule.name, rule.owner, rule.availability, d, prefix, f"owns this {rule.kind}")
        return _round_robin(rule, d, prefix)
    prefix = f"rule {rule.name} ({', '.join(matched)}): " if matched else ""
    if isinstance(rule, RoundRobinRule):
        return _round_robin(rule, d, prefix)
    if isinstance(rule, FixedRule):
        return _fixed(rule.name, rule.owner, rule.availability, d, prefix, f"is the fixed owner of rule {rule.name}")
    if isinstance(rule, ClaimRule):
        return _claim(rule.name, rule.team, rule.availability, d, prefix)
    raise TypeError(f"unknown rule {rule!r}")  # pragma: no cover - the config admits no other kind


def _account_owner(rule: AccountOwnerRule, d: _Decision) -> Assignment | None:
    owner_id = d.lead.company_owner_id
    if not owner_id:
        return None
    profile = d.roster.resolve(owner_id)
    if profile is None:
        d.skip(rule.name, SkipCause.UNKNOWN_SELLER,
               f"account owner {owner_id} of {d.lead.account_label} is not a user in the CRM", owner_id)
        return None
    problem = unavailable(profile, rule.availability, d.now, d.counts, d.days_off)
    if problem is not None:
        d.skip(rule.name, problem[0], f"account owner {problem[1]}; {d.lead.account_label} goes to the next rule",
               profile.id)
        return None
    reason = f"account owner {profile.label} keeps {d.lead.account_label}"
    note = calendar_problem(profile, "available_today", d.now, d.days_off) if rule.availability == "active" else None
    if note is not None:
        reason += f" (note: {note[1]})"
    return d.answer(rule.name, reason, profile, [profile])


def _fixed(rule: str, ref: str, level: Availability, d: _Decision, prefix: str, role: str) -> Assignment | None:
    profile = d.roster.resolve(ref)
    if profile is None:
        d.skip(rule, SkipCause.UNKNOWN_SELLER, f"owner {ref!r} is not a user in the CRM", ref)
        return None
    problem = unavailable(profile, level, d.now, d.counts, d.days_off)
    if problem is not None:
        d.skip(rule, problem[0], problem[1], profile.id)
        return None
    return d.answer(rule, f"{prefix}{profile.label} {role}", profile, [profile])


def _pool(rule: RoundRobinRule | TerritoryRule, d: _Decision) -> tuple[str, list[SellerProfile]]:
    if rule.team is not None:
        return f"team {rule.team}", d.roster.team(rule.team)
    if rule.pool is not None:
        members, unknown = d.roster.pool(rule.pool)
        for ref in unknown:
            d.skip(rule.name, SkipCause.UNKNOWN_SELLER, f"pool member {ref!r} is not a user in the CRM", ref)
        return f"pool {rule.name}", members
    return "all sellers", d.roster.everyone()


def _within(label: str) -> str:
    return "among all sellers" if label == "all sellers" else f"in {label}"


def _nobody(rule: str, label: str, members: Sequence[SellerProfile], causes: Counter[SkipCause],
            d: _Decision) -> None:
    if not members:
        d.skip(rule, SkipCause.NOBODY_ELIGIBLE, f"{label} has no members among the CRM's users")
        return
    why = ", ".join(f"{causes[c]} {_CAUSE_WORDS.get(c, c.value)}" for c in SkipCause if causes[c])
    d.skip(rule, SkipCause.NOBODY_ELIGIBLE, f"nobody eligible {_within(label)} ({why})")


def _round_robin(rule: RoundRobinRule | TerritoryRule, d: _Decision, prefix: str) -> Assignment | None:
    """Weighted round robin: the eligible seller with the lowest (load + 1) / weight wins, ties by id.

    Load is the seller's assignments within the window, so the sequence is smooth (weights 1:2 give
    A B B A B B ...) and a seller back from leave or new to the pool catches up for at most one window.
    """
    label, members = _pool(rule, d)
    eligible, causes = d.eligible(rule.name, members, rule.availability)
    if not eligible:
        _nobody(rule.name, label, members, causes, d)
        return None
    window = rule.window or d.config.window
    since = d.now - window
    loads = {p.id: d.counts.count(p.id, since) for p in eligible}
    chosen = min(eligible, key=lambda p: (Fraction(loads[p.id] + 1) / p.weight, p.id))
    reason = (f"{prefix}round robin {_within(label)}: {chosen.label} had the lowest weighted load "
              f"({loads[chosen.id]} in {format_duration(window)} / weight {chosen.settings.weight:g}) "
              f"of {len(eligible)} eligible")
    return d.answer(rule.name, reason, chosen, eligible, rule.team)


def _claim(rule: str, team: str | None, level: Availability, d: _Decision, prefix: str,
           *, final: bool = False) -> Assignment | None:
    label = f"team {team}" if team else "all sellers"
    members = d.roster.team(team) if team else d.roster.everyone()
    eligible, causes = d.eligible(rule, members, level, record=not final)
    if not eligible and not final:
        _nobody(rule, label, members, causes, d)
        return None
    if eligible:
        tail = f"{len(eligible)} can claim it; the first seller to claim it becomes the owner"
    else:
        tail = "nobody is available to claim it now; a manager must assign it"
    return d.answer(rule, f"{prefix}claim mode: announced to {label} ({tail})", None, eligible, team)


def _fallback(d: _Decision) -> Assignment:
    fallback = d.config.fallback
    opening = "no rule found an eligible owner" if d.skips else "no rule applied to this lead"
    if fallback.mode == "owner" and fallback.owner is not None:
        profile = d.roster.resolve(fallback.owner)
        if profile is not None and profile.seller.active:
            return d.answer(FALLBACK, f"{opening}; fallback owner {profile.label} takes it", profile, [profile])
        if profile is None:
            d.skip(FALLBACK, SkipCause.UNKNOWN_SELLER, f"fallback owner {fallback.owner!r} is not a user in the CRM",
                   fallback.owner)
        else:
            d.skip(FALLBACK, SkipCause.INACTIVE, f"fallback owner {profile.label} is deactivated in the CRM",
                   profile.id)
        opening = "the fallback owner cannot take it"
    answer = _claim(FALLBACK, fallback.team, "active", d, f"{opening}; ", final=True)
    assert answer is not None  # a final claim always answers
    return answer
