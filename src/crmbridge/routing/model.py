"""The shapes an owner decision reads and returns: the lead to route, the sellers who may take it, and
the assignment with the reason a sales manager reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from crmbridge.model import Owner

AssignmentMode = Literal["owner", "claim"]


@dataclass(frozen=True)
class Lead:
    """What routing knows about a sales-ready person and their company."""

    person_id: int
    email: str | None = None
    name: str | None = None
    title: str | None = None
    country: str | None = None
    region: str | None = None
    company_name: str | None = None
    company_domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    company_owner_id: str | None = None
    product_interest: tuple[str, ...] = ()
    segment: str | None = None
    score: float = 0.0

    @property
    def account_label(self) -> str:
        """``Acme (acme.com)``, or whichever of the two is known."""
        if self.company_name and self.company_domain:
            return f"{self.company_name} ({self.company_domain})"
        return self.company_name or self.company_domain or "the account"


@dataclass(frozen=True)
class Seller:
    """An owner/user of the target CRM who can be given a lead."""

    id: str
    name: str = ""
    email: str | None = None
    active: bool = True
    timezone: str | None = None
    teams: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.name or self.email or f"user {self.id}"

    @classmethod
    def from_owner(cls, owner: Owner) -> Seller:
        """A seller from a canonical owner record (its source id is the id the CRM assigns by)."""
        name = " ".join(p for p in (owner.first_name, owner.last_name) if p)
        return cls(id=owner.source_id, name=name or (owner.email or ""), email=owner.email, active=owner.active,
                   timezone=owner.timezone, teams=tuple(owner.teams))


class SkipCause(StrEnum):
    """Why a seller or a whole rule was passed over."""

    INACTIVE = "inactive"
    OUT_OF_OFFICE = "out_of_office"
    OFF_DAY = "off_day"
    OUTSIDE_HOURS = "outside_hours"
    CAPPED = "capped"
    UNKNOWN_SELLER = "unknown_seller"
    NOBODY_ELIGIBLE = "nobody_eligible"


@dataclass(frozen=True)
class Skip:
    """One note of the decision trail: a seller skipped by a rule, or a rule that found nobody."""

    rule: str
    cause: SkipCause
    detail: str
    seller_id: str | None = None


@dataclass(frozen=True)
class Assignment:
    """The decision: who owns the lead (or that it is announced for claiming), which rule said so, and why.

    ``candidates`` are the seller ids the deciding rule could choose from (in claim mode: who the lead
    is announced to); ``team`` is the team the rule drew from, if any (in claim mode: the team whose
    channel announces the lead); ``skipped`` is the trail of sellers and rules passed over before it.
    """

    owner_id: str | None
    mode: AssignmentMode
    rule: str
    reason: str
    owner_name: str | None = None
    candidates: tuple[str, ...] = ()
    team: str | None = None
    skipped: tuple[Skip, ...] = field(default=())

    def explain(self) -> str:
        """The reason followed by every skip, one per line, for logs and ``explain`` commands."""
        lines = [self.reason]
        lines += [f"  - {s.rule}: {s.detail}" for s in self.skipped]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the decision, to store with the hand-off."""
        return {
            "owner_id": self.owner_id,
            "mode": self.mode,
            "rule": self.rule,
            "reason": self.reason,
            "owner_name": self.owner_name,
            "candidates": list(self.candidates),
            "team": self.team,
            "skipped": [{"rule": s.rule, "cause": s.cause.value, "detail": s.detail, "seller_id": s.seller_id}
                        for s in self.skipped],
        }
