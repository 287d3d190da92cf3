"""Account-based (ABM) roll-up: a company's people scores become an account score, stage and surge flag.

Milestones follow the playbook: people identified → engaged → engaged in a decision role → responding
to calls-to-action → sales-ready. A surge is the account's score rising by the model's amount within
its window, judged against earlier snapshots the caller passes in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from crmbridge.model import Company, LifecycleStage, Person
from crmbridge.scoring.conditions import Facts
from crmbridge.scoring.durations import format_duration
from crmbridge.scoring.model import ScoringModel
from crmbridge.scoring.result import PersonScore, Reason, fingerprint, write_value
from crmbridge.scoring.rules import AccountSettings

_NOBODY = Person(source="", source_id="")


class AccountStage(StrEnum):
    """Account milestones, in order."""

    UNKNOWN = "unknown"
    IDENTIFIED = "identified"
    ENGAGED = "engaged"
    DECISION_ENGAGED = "decision_engaged"
    RESPONDING = "responding"
    SALES_READY = "sales_ready"


@dataclass(frozen=True, slots=True)
class ScoreSnapshot:
    """An account score recorded earlier, as the store keeps them."""

    at: datetime
    score: float


@dataclass(frozen=True, slots=True)
class Surge:
    detected: bool
    rise: float
    baseline: ScoreSnapshot | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        baseline = None
        if self.baseline is not None:
            baseline = {"at": self.baseline.at.isoformat(), "score": round(self.baseline.score, 2)}
        return {"detected": self.detected, "rise": round(self.rise, 2), "baseline": baseline,
                "reason": self.reason}


@dataclass(frozen=True, slots=True)
class AccountScore:
    domain: str | None
    as_of: datetime
    score: float
    fit: float
    people: int
    engaged_people: int
    decision_people: int
    responding_people: int
    sql_people: int
    committee: tuple[str, ...]
    covered_roles: tuple[str, ...]
    stage: AccountStage
    surge: Surge
    reasons: tuple[Reason, ...]

    @property
    def coverage(self) -> float:
        """Share of the buying committee's roles held by engaged people (0.0-1.0)."""
        return len(self.covered_roles) / len(self.committee) if self.committee else 0.0

    def writeback(self) -> dict[str, Any]:
        """The account values a write-back plan compares with what the CRM holds."""
        return {"account_score": write_value(self.score), "account_stage": self.stage.value,
                "committee_coverage": f"{len(self.covered_roles)}/{len(self.committee)}",
                "intent_surge": self.surge.detected}

    @property
    def fingerprint(self) -> str:
        return fingerprint(*self.writeback().values())

    @property
    def missing_roles(self) -> tuple[str, ...]:
        return tuple(role for role in self.committee if role not in self.covered_roles)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain, "as_of": self.as_of.isoformat(), "score": round(self.score, 2),
            "fit": round(self.fit, 2), "people": self.people, "engaged_people": self.engaged_people,
            "decision_people": self.decision_people, "responding_people": self.responding_people,
            "sql_people": self.sql_people, "committee": list(self.committee),
            "covered_roles": list(self.covered_roles), "missing_roles": list(self.missing_roles),
            "coverage": round(self.coverage, 4), "stage": self.stage.value, "surge": self.surge.to_dict(),
            "reasons": [r.to_dict() for r in self.reasons], "fingerprint": self.fingerprint,
        }


class AccountScorer:
    """Rolls people scores up to their company with the model's ``account`` settings."""

    def __init__(self, model: ScoringModel) -> None:
        self._settings: AccountSettings = model.compiled.account
        self._company_rules = model.compiled.company_rules

    def score(self, company: Company | None, people: Sequence[PersonScore], as_of: datetime,
              history: Iterable[ScoreSnapshot] = ()) -> AccountScore:
        s = self._settings
        reasons = self._fit_reasons(company)
        fit = sum(r.points for r in reasons)
        live = [p for p in people if p.disqualified is None]
        engaged = [p for p in live if p.engagement >= s.engaged_min]
        covered = tuple(role for role in s.committee if any(p.persona == role for p in engaged))
        top = sorted(engaged, key=lambda p: (-p.engagement, p.email or ""))[: s.top_people]
        reasons += [Reason(f"person:{p.email or '?'}", f"Engagement of {p.email or 'a person'}", "engagement",
                           p.engagement, p.engagement, 1.0) for p in top]
        if covered and s.points_per_role:
            points = s.points_per_role * len(covered)
            reasons.append(Reason("committee", f"Committee roles covered: {', '.join(covered)}", "committee",
                                  points, points, 1.0, len(covered)))
        total = sum(r.points for r in reasons)
        decision = sum(1 for p in engaged if p.persona in s.decision_roles)
        responding = sum(1 for p in live if p.responded)
        sqls = sum(1 for p in live if p.stage is LifecycleStage.SQL)
        stage = _stage(s, total, len(people), len(engaged), decision, responding, sqls, len(covered))
        surge = detect_surge(total, history, as_of, rise=s.surge_rise, window=s.surge_window)
        return AccountScore(
            domain=company.domain if company else None, as_of=as_of, score=total, fit=fit, people=len(people),
            engaged_people=len(engaged), decision_people=decision, responding_people=responding,
            sql_people=sqls, committee=s.committee, covered_roles=covered, stage=stage, surge=surge,
            reasons=tuple(reasons),
        )

    def _fit_reasons(self, company: Company | None) -> list[Reason]:
        if company is None:
            return []
        facts = Facts(_NOBODY, company)
        return [Reason(r.id, r.description, r.category, r.points, r.points, 1.0)
                for r in self._company_rules if r.test(facts)]


def _stage(s: AccountSettings, score: float, people: int, engaged: int, decision: int, responding: int,
           sqls: int, covered: int) -> AccountStage:
    ready_by_score = (s.sales_ready_score_min is not None and score >= s.sales_ready_score_min
                      and covered >= s.sales_ready_committee_min)
    if sqls or ready_by_score:
        return AccountStage.SALES_READY
    if responding:
        return AccountStage.RESPONDING
    if decision:
        return AccountStage.DECISION_ENGAGED
    if engaged:
        return AccountStage.ENGAGED
    return AccountStage.IDENTIFIED if people else AccountStage.UNKNOWN


def detect_surge(score: float, history: Iterable[ScoreSnapshot], as_of: datetime, *, rise: float,
                 window: timedelta) -> Surge:
    """Did the score rise by ``rise`` or more within ``window`` before ``as_of``?

    The baseline is the lowest score seen in the window, counting the score that stood when the
    window opened (the last snapshot before it). Snapshots after ``as_of`` are ignored; with no
    earlier snapshot there is nothing to rise from, so no surge.
    """
    start = as_of - window
    past = [snap for snap in history if snap.at <= as_of]
    candidates = [snap for snap in past if snap.at >= start]
    before = [snap for snap in past if snap.at < start]
    if before:
        candidates.append(max(before, key=lambda snap: snap.at))
    if not candidates:
        return Surge(False, 0.0, None, "no earlier score to compare with")
    low = min(candidates, key=lambda snap: (snap.score, snap.at))
    up = score - low.score
    span = format_duration(window)
    if up >= rise:
        return Surge(True, up, low, f"score rose {up:.0f} points within {span} "
                                    f"(from {low.score:.0f} on {low.at:%Y-%m-%d} to {score:.0f})")
    return Surge(False, up, low, f"score moved {up:+.0f} within {span}; a surge is +{rise:g}")
