"""The SLA report: how fast sales answered hand-offs, in business minutes and in wall-clock minutes.

Figures are over first-touch clocks started in ``[since, until)``. A hand-off reassigned after a breach
has one clock per owner; it counts once, as its last owner's clock (the one still running or settled),
while its breach and its reassignment are counted where they happened. ``within_sla_pct`` is the share
of hand-offs whose outcome is known (touched, or breached while open) that were touched in time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from crmbridge.sla.ledger import CLOSED, MET, MISSED, OPEN, REASSIGNED, SKIPPED
from crmbridge.store import schema
from crmbridge.store.store import Store

BANDS = (("0-5", 0.0, 5.0), ("5-15", 5.0, 15.0), ("15-60", 15.0, 60.0), ("60+", 60.0, math.inf))
GROUPS = ("owner", "team", "source")


def percentile(ordered: list[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted values (the value a p % share of hand-offs stays at or under)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return round(ordered[rank - 1], 1)


@dataclass
class Figures:
    handoffs: int = 0
    touched: list[float] = field(default_factory=list)  # business minutes to first touch
    wall: list[float] = field(default_factory=list)  # wall-clock minutes to first touch
    met: int = 0
    late: int = 0  # touched after the due instant, or breached and still open
    breaches: int = 0
    open: int = 0
    at_risk: int = 0
    closed: int = 0  # won, lost or rejected before any touch
    reminders: int = 0
    escalations: int = 0
    reassignments: int = 0

    def as_dict(self) -> dict[str, Any]:
        touched, wall = sorted(self.touched), sorted(self.wall)
        judged = self.met + self.late
        bands = dict.fromkeys((name for name, _, _ in BANDS), 0)
        for minutes in touched:
            for name, low, high in BANDS:
                if low <= minutes < high:
                    bands[name] += 1
                    break
        return {"handoffs": self.handoffs, "touched": len(touched),
                "within_sla_pct": round(100 * self.met / judged, 1) if judged else None,
                "p50_minutes": percentile(touched, 50), "p90_minutes": percentile(touched, 90),
                "p95_minutes": percentile(touched, 95), "speed_to_lead_p50_minutes": percentile(wall, 50),
                "speed_to_lead_p95_minutes": percentile(wall, 95), "bands": bands, "breaches": self.breaches,
                "open": self.open, "at_risk": self.at_risk, "closed_untouched": self.closed,
                "reminders": self.reminders, "escalations": self.escalations, "reassignments": self.reassignments}


def sla_report(store: Store, *, now_ms: int, since_ms: int | None = None, until_ms: int | None = None,
               by: str | None = None, policy: str | None = None) -> dict[str, Any]:
    """One object: the figures over everything, plus ``groups`` (the same figures per owner, team or source)."""
    if by is not None and by not in GROUPS:
        raise ValueError(f"--by must be one of {', '.join(GROUPS)}")
    c = schema.sla_clocks.c
    where = [c.measure == "first_touch"] if policy is None else [c.policy == policy]
    if since_ms is not None:
        where.append(c.started_ms >= since_ms)
    if until_ms is not None:
        where.append(c.started_ms < until_ms)
    total = Figures()
    groups: dict[str, Figures] = {}
    group_col = {"owner": c.owner_id, "team": c.team, "source": c.source}.get(by or "", sa.literal(None))
    q = sa.select(c.id, c.status, c.breached, c.business_minutes, c.wall_minutes, c.risk_ms, c.due_ms,
                  group_col.label("grp"), c.owner_label).where(*where)
    labels: dict[str, str] = {}
    ids_by_group: dict[int, str | None] = {}
    with store.engine.connect() as conn:
        result = conn.execution_options(yield_per=50_000).execute(q)
        for cid, status, breached, business, wall, risk, due, grp, label in result:
            key = None if by is None else (grp or ("(to claim)" if by == "owner" else "(none)"))
            if by == "owner" and grp and label:
                labels[grp] = label
            targets = [total] if key is None else [total, groups.setdefault(key, Figures())]
            if by is not None:
                ids_by_group[cid] = key
            for f in targets:
                _count(f, status, bool(breached), business, wall, risk, due, now_ms)
        steps = _step_counts(conn, where)
    for cid, kind, n in steps:
        targets = [total]
        if by is not None and cid in ids_by_group:
            targets.append(groups[ids_by_group[cid]])  # type: ignore[index]
        for f in targets:
            _add_step(f, kind, n)
    out = total.as_dict()
    out["groups"] = {_group_name(name, labels): f.as_dict() for name, f in sorted(groups.items())} if by else {}
    out["by"] = by
    out["since"] = since_ms
    out["until"] = until_ms
    return out


def _group_name(key: str, labels: Mapping[str, str]) -> str:
    """Owners are grouped by id and shown by name (with the id when two owners share a name)."""
    label = labels.get(key)
    if label is None:
        return key
    shared = sum(1 for other in labels.values() if other == label) > 1
    return f"{label} ({key})" if shared else label


def _count(f: Figures, status: str, breached: bool, business: float | None, wall: float | None, risk: int,
           due: int, now: int) -> None:
    if breached:
        f.breaches += 1
    if status == REASSIGNED:
        return
    f.handoffs += 1
    if status in (MET, MISSED):
        f.touched.append(float(business or 0.0))
        f.wall.append(float(wall or 0.0))
        if status == MET:
            f.met += 1
        else:
            f.late += 1
    elif status == OPEN:
        f.open += 1
        if now >= due or breached:
            f.late += 1
        elif now >= risk:
            f.at_risk += 1
    elif status == CLOSED:
        f.closed += 1


def _step_counts(conn: sa.Connection, where: Iterable[Any]) -> list[tuple[int, str, int]]:
    c, s = schema.sla_clocks.c, schema.sla_steps.c
    q = (sa.select(s.clock_id, s.kind, sa.func.count()).join(schema.sla_clocks, c.id == s.clock_id)
         .where(*where, s.status != SKIPPED).group_by(s.clock_id, s.kind))
    return [(int(cid), kind, int(n)) for cid, kind, n in conn.execute(q)]


def _add_step(f: Figures, kind: str, n: int) -> None:
    if kind == "remind":
        f.reminders += n
    elif kind == "escalate":
        f.escalations += n
    elif kind == "reassign":
        f.reassignments += n


def open_clock_counts(store: Store, now_ms: int) -> dict[str, int]:
    """For ``crmbridge status``: open clocks on track, at risk and breached."""
    c = schema.sla_clocks.c
    state = sa.case((c.due_ms <= now_ms, "breached"), (c.risk_ms <= now_ms, "at_risk"), else_="on_track")
    q = sa.select(state, sa.func.count()).where(c.status == OPEN).group_by(state)
    with store.engine.connect() as conn:
        found: Mapping[str, int] = dict(conn.execute(q).all())  # type: ignore[arg-type]
    return {"open": sum(found.values()), "on_track": found.get("on_track", 0), "at_risk": found.get("at_risk", 0),
            "breached": found.get("breached", 0)}
