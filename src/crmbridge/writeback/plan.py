"""The write-back planner: desired values per CRM person, diffed against what the CRM holds.

Pure decisions: what to write follows from the stored score, the hand-off, the values write-back
last wrote (the ledger) and the lifecycle stage the CRM reported at the last sync. Only changed
fields are planned. Lifecycle stages follow one rule set for every CRM: a stage sales owns
(opportunity, customer, evangelist) is never touched, a stage someone set in the CRM (a seller by
hand, a workflow) is only ever raised, never lowered, and a backward move of a stage write-back set
itself is planned as a clear followed by the new value where the CRM requires it (its plugin
declares it lifecycle forward-only).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crmbridge.model import LifecycleStage
from crmbridge.writeback.contract import CLEAR

SCORED_STAGES = (LifecycleStage.LEAD, LifecycleStage.MQL, LifecycleStage.SQL)


def iso_utc(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reasons_text(reasons: Iterable[Mapping[str, Any]], limit: int = 3) -> str:
    """The rules that moved the score most, positive first: ``Contact request (+50); ...``."""
    fired = [r for r in reasons if round(float(r.get("points") or 0)) != 0]
    fired.sort(key=lambda r: (-float(r["points"]) if float(r["points"]) > 0 else 1e9 - float(r["points"]),
                              str(r.get("rule"))))
    parts = []
    for r in fired[:limit]:
        points = float(r["points"])
        parts.append(f"{r.get('description') or r.get('rule')} ({'+' if points > 0 else ''}{points:.0f})")
    return "; ".join(parts)


OUTCOME_TEXT = {"contacted": "contacted", "accepted": "accepted", "meeting": "meeting booked", "won": "won",
                "lost": "lost", "rejected": "rejected"}
# Which outcome a person's record shows when sales recorded several: the furthest along, then the latest.
OUTCOME_RANK = {"contacted": 1, "accepted": 2, "meeting": 3, "rejected": 4, "lost": 4, "won": 4}


def latest_outcome(outcomes: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The outcome a person's record should show: the furthest along of the newest hand-off generation."""
    if not outcomes:
        return None
    return max(outcomes, key=lambda o: (int(o.get("generation") or 1), OUTCOME_RANK.get(o["kind"], 0),
                                        int(o["at_ms"])))


def desired_values(score: Mapping[str, Any], handoff: Mapping[str, Any] | None, fields: Sequence[str],
                   reasons: int = 3, outcome: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What one person's CRM record should hold, from their stored score row, hand-off and sales outcome
    (the closed loop: marketing sees what sales made of the lead)."""
    data = score.get("data") or {}
    values: dict[str, Any] = {
        "score": int(data.get("score", math.floor(float(score["total"]) + 0.5))),
        "fit_score": math.floor(float(score["fit"]) + 0.5),
        "engagement_score": math.floor(float(score["engagement"]) + 0.5),
        "score_reasons": reasons_text(data.get("reasons") or (), reasons),
        "scored_at": iso_utc(score.get("scored_ms")),
        "lifecycle_stage": score["stage"],
    }
    if handoff is not None:
        values["handoff_at"] = iso_utc(handoff.get("done_ms"))
        values["handoff_owner"] = handoff.get("owner_label")
    if outcome is not None:
        values["sales_outcome"] = OUTCOME_TEXT.get(outcome["kind"], outcome["kind"])
        values["sales_outcome_reason"] = outcome.get("reason") or ""
        values["sales_outcome_at"] = iso_utc(outcome.get("at_ms"))
    return {k: v for k, v in values.items() if k in fields and v is not None}


@dataclass(frozen=True, slots=True)
class PersonChange:
    """One CRM person's planned write: field -> (held, new); ``clear_first`` for a backward stage."""

    source: str
    source_id: str
    person_id: int
    email: str | None
    changes: Mapping[str, tuple[Any, Any]]
    clear_first: bool = False

    @property
    def values(self) -> dict[str, Any]:
        return {k: new for k, (_, new) in self.changes.items()}


def lifecycle_change(held: str | None, crm: LifecycleStage | None, desired: str, *, forward_only: bool
                     ) -> tuple[str | None, bool]:
    """The stage to write (or None) and whether it must be cleared first.

    ``held`` is what write-back last wrote; ``crm`` what the CRM reported at the last sync. The CRM's
    stage wins whenever it stands above anything we wrote (or we never wrote one): someone else set it,
    a seller by hand, a workflow or an import, and scoring may then only move it forward, never lower
    it. Only a stage write-back set itself may be moved backwards (a recycled SQL goes back to MQL).
    A CRM stage below what we wrote is taken for a sync older than our write, so ours is current.
    """
    try:
        wanted = LifecycleStage(desired)
    except ValueError:
        return None, False
    if wanted not in SCORED_STAGES:
        return None, False
    if crm is not None and crm.is_protected:
        return None, False  # opportunity, customer, evangelist: never downgraded by scoring
    ours = LifecycleStage(held) if held in LifecycleStage._value2member_map_ else None
    theirs = None if crm is None or crm is LifecycleStage.OTHER else crm
    if theirs is not None and (ours is None or theirs.rank > ours.rank):
        return (wanted.value, False) if wanted.rank > theirs.rank else (None, False)
    current = ours or theirs
    if current is None or current is LifecycleStage.OTHER:
        return wanted.value, False
    if current.is_protected or current == wanted:
        return None, False
    return wanted.value, forward_only and wanted.rank < current.rank


def plan_person(source: str, source_id: str, person_id: int, email: str | None, desired: Mapping[str, Any],
                held: Mapping[str, Any], crm_stage: LifecycleStage | None, *, forward_only: bool
                ) -> PersonChange | None:
    changes: dict[str, tuple[Any, Any]] = {}
    clear_first = False
    for key, value in desired.items():
        if key == "lifecycle_stage":
            stage, clear_first = lifecycle_change(held.get(key), crm_stage, value, forward_only=forward_only)
            if stage is not None:
                changes[key] = (held.get(key, crm_stage.value if crm_stage else None), stage)
        elif held.get(key) != value:
            changes[key] = (held.get(key), value)
    if not changes:
        return None
    return PersonChange(source, source_id, person_id, email, changes, clear_first)


@dataclass
class WritePlan:
    changes: list[PersonChange] = field(default_factory=list)
    batch_sizes: dict[str, int] = field(default_factory=dict)  # source -> people per write call
    considered: int = 0
    full: bool = True  # everyone was planned (else only the people changed since the last pass)

    def by_source(self) -> dict[str, list[PersonChange]]:
        out: dict[str, list[PersonChange]] = {}
        for change in self.changes:
            out.setdefault(change.source, []).append(change)
        return out

    def calls(self) -> dict[str, int]:
        """Write calls the plan will cost per CRM (clears first, then the values)."""
        out = {}
        for source, changes in self.by_source().items():
            size = self.batch_sizes.get(source, 1)
            clears = sum(1 for c in changes if c.clear_first)
            out[source] = math.ceil(len(changes) / size) + math.ceil(clears / size)
        return out

    def field_counts(self) -> Counter[str]:
        return Counter(k for c in self.changes for k in c.changes)

    def as_dict(self) -> dict[str, Any]:
        return {"considered": self.considered, "full": self.full, "changes": len(self.changes), "calls": self.calls(),
                "fields": dict(self.field_counts()),
                "people": [{"source": c.source, "id": c.source_id, "email": c.email, "clear_first": c.clear_first,
                            "changes": {k: {"from": old, "to": new} for k, (old, new) in c.changes.items()}}
                           for c in self.changes]}


def clear_update(change: PersonChange) -> dict[str, Any]:
    return {"lifecycle_stage": CLEAR}
