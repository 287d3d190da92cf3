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


def rank(n: int, p: float) -> int:
    """The 1-based nearest rank of the p-th percentile among n sorted values."""
    return max(1, math.ceil(p / 100 * n))


def percentile(ordered: list[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted values (the value a p % share of hand-offs stays at or under)."""
    if not ordered:
        return None
    return round(ordered[rank(len(ordered), p) - 1], 1)


BUSINESS_PCTS = (50, 90, 95)
WALL_PCTS = (50, 95)


@dataclass
class Figures:
    handoffs: int = 0
    touched: int = 0
    met: int = 0
    late: int = 0  # touched after the due instant, or breached and still open
    breaches: int = 0
    open: int = 0
    at_risk: int = 0
    closed: int = 0  # won, lost or rejected before any touch
    bands: dict[str, int] = field(default_factory=lambda: dict.fromkeys((name for name, _, _ in BANDS), 0))
    business: dict[int, float] = field(default_factory=dict)  # percentile -> business minutes to first touch
    wall: dict[int, float] = field(default_factory=dict)  # percentile -> wall-clock minutes to first touch
    reminders: int = 0
    escalations: int = 0
    reassignments: int = 0

    def as_dict(self) -> dict[str, Any]:
        judged = self.met + self.late
        return {"handoffs": self.handoffs, "touched": self.touched,
                "within_sla_pct": round(100 * self.met / judged, 1) if judged else None,
                "p50_minutes": self._pct(self.business, 50), "p90_minutes": self._pct(self.business, 90),
                "p95_minutes": self._pct(self.business, 95),
                "speed_to_lead_p50_minutes": self._pct(self.wall, 50),
                "speed_to_lead_p95_minutes": self._pct(self.wall, 95), "bands": dict(self.bands),
                "breaches": self.breaches, "open": self.open, "at_risk": self.at_risk, "closed_untouched": self.closed,
                "reminders": self.reminders, "escalations": self.escalations, "reassignments": self.reassignments}

    @staticmethod
    def _pct(values: Mapping[int, float], p: int) -> float | None:
        return round(values[p], 1) if p in values else None


def sla_report(store: Store, *, now_ms: int, since_ms: int | None = None, until_ms: int | None = None,
               by: str | None = None, policy: str | None = None) -> dict[str, Any]:
    """One object: the figures over everything, plus ``groups`` (the same figures per owner, team or source).

    Counts are summed in SQL; the exact percentiles come from the minutes streamed in order from the
    database, keeping only the values at the wanted ranks, so memory does not grow with the hand-offs."""
    if by is not None and by not in GROUPS:
        raise ValueError(f"--by must be one of {', '.join(GROUPS)}")
    c = schema.sla_clocks.c
    where = [c.measure == "first_touch"] if policy is None else [c.policy == policy]
    if since_ms is not None:
        where.append(c.started_ms >= since_ms)
    if until_ms is not None:
        where.append(c.started_ms < until_ms)
    column = {"owner": c.owner_id, "team": c.team, "source": c.source}.get(by or "")
    with store.engine.connect() as conn:
        _room_to_sort(conn)
        if column is None:
            total = _figures_by(conn, None, where, now_ms).get("", Figures())
            groups: dict[str, Figures] = {}
        else:
            key = sa.func.coalesce(sa.func.nullif(column, ""), "(to claim)" if by == "owner" else "(none)")
            groups = _figures_by(conn, key, where, now_ms)
            total = _total(groups.values())
            _all_percentiles(conn, None, where, {"": total})  # over every group's minutes together
        labels = _owner_labels(conn, where) if by == "owner" else {}
    out = total.as_dict()
    out["groups"] = {_group_name(name, labels): f.as_dict() for name, f in sorted(groups.items())} if by else {}
    out["by"] = by
    out["since"] = since_ms
    out["until"] = until_ms
    return out


def _figures_by(conn: sa.Connection, key: Any | None, where: list[Any], now: int) -> dict[str, Figures]:
    groups = {str(row.grp): _figures(row) for row in conn.execute(_counts_query(key, where, now))}
    for grp, kind, n in conn.execute(_steps_query(key, where)):
        _add_step(groups.setdefault(str(grp), Figures()), kind, int(n))
    _all_percentiles(conn, key, where, groups)
    return groups


def _all_percentiles(conn: sa.Connection, key: Any | None, where: list[Any], groups: Mapping[str, Figures]) -> None:
    """Each group's exact percentiles: the database numbers the touched clocks in order of business and of
    wall-clock minutes, and returns only the rows at the wanted ranks (computed here, as ``percentile`` does)."""
    c = schema.sla_clocks.c
    wanted = {"business": _wanted(groups, BUSINESS_PCTS), "wall": _wanted(groups, WALL_PCTS)}
    if not wanted["business"]:
        return
    business, wall = sa.func.coalesce(c.business_minutes, 0.0), sa.func.coalesce(c.wall_minutes, 0.0)
    part = {} if key is None else {"partition_by": key}
    numbered = (sa.select(_grp(key), business.label("business"), wall.label("wall"),
                          sa.func.row_number().over(order_by=business, **part).label("business_rank"),
                          sa.func.row_number().over(order_by=wall, **part).label("wall_rank"))
                .where(*where, _touched()).subquery())
    n = numbered.c
    if key is None:
        hit = sa.or_(n.business_rank.in_([r for _, r in wanted["business"]]),
                     n.wall_rank.in_([r for _, r in wanted["wall"]]))
    else:
        hit = sa.or_(sa.tuple_(n.grp, n.business_rank).in_(list(wanted["business"])),
                     sa.tuple_(n.grp, n.wall_rank).in_(list(wanted["wall"])))
    for grp, b, w, b_rank, w_rank in conn.execute(sa.select(n.grp, n.business, n.wall, n.business_rank,
                                                            n.wall_rank).where(hit)):
        figures = groups[str(grp)]
        for p in wanted["business"].get((str(grp), int(b_rank)), ()):
            figures.business[p] = float(b)
        for p in wanted["wall"].get((str(grp), int(w_rank)), ()):
            figures.wall[p] = float(w)


def _total(groups: Iterable[Figures]) -> Figures:
    total = Figures()
    for f in groups:
        for name in ("handoffs", "touched", "met", "late", "breaches", "open", "at_risk", "closed", "reminders",
                     "escalations", "reassignments"):
            setattr(total, name, getattr(total, name) + getattr(f, name))
        for band, n in f.bands.items():
            total.bands[band] += n
    return total


def _owner_labels(conn: sa.Connection, where: list[Any]) -> dict[str, str]:
    c = schema.sla_clocks.c
    q = (sa.select(c.owner_id, sa.func.max(c.owner_label))
         .where(*where, c.owner_id.is_not(None), c.owner_id != "", c.owner_label.is_not(None), c.owner_label != "")
         .group_by(c.owner_id))
    return {str(owner): str(label) for owner, label in conn.execute(q)}


def _group_name(key: str, labels: Mapping[str, str]) -> str:
    """Owners are grouped by id and shown by name (with the id when two owners share a name)."""
    label = labels.get(key)
    if label is None:
        return key
    shared = sum(1 for other in labels.values() if other == label) > 1
    return f"{label} ({key})" if shared else label


def _counts_query(key: Any | None, where: list[Any], now: int) -> sa.Select[Any]:
    c = schema.sla_clocks.c

    def count(*cond: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((sa.and_(*cond), 1), else_=0)), 0)

    touched = c.status.in_((MET, MISSED))
    minutes = sa.func.coalesce(c.business_minutes, 0.0)
    late_open = sa.and_(c.status == OPEN, sa.or_(c.due_ms <= now, c.breached.is_(True)))
    bands = [count(touched, minutes >= low, *(() if high == math.inf else (minutes < high,))).label(f"band{i}")
             for i, (_, low, high) in enumerate(BANDS)]
    return _grouped(sa.select(_grp(key), count(c.breached.is_(True)).label("breaches"),
                      count(c.status != REASSIGNED).label("handoffs"), count(touched).label("touched"),
                      count(c.status == MET).label("met"), count(c.status == MISSED).label("missed"),
                      count(late_open).label("late_open"), count(c.status == OPEN).label("open"),
                      count(c.status == OPEN, ~late_open, c.risk_ms <= now).label("at_risk"),
                      count(c.status == CLOSED).label("closed"), *bands).where(*where), key)


def _figures(row: Any) -> Figures:
    f = Figures(handoffs=int(row.handoffs), touched=int(row.touched), met=int(row.met),
                late=int(row.missed) + int(row.late_open), breaches=int(row.breaches), open=int(row.open),
                at_risk=int(row.at_risk), closed=int(row.closed))
    f.bands = {name: int(getattr(row, f"band{i}")) for i, (name, _, _) in enumerate(BANDS)}
    return f


def _grp(key: Any | None) -> Any:
    return (sa.literal_column("''") if key is None else key).label("grp")


def _grouped(q: sa.Select[Any], key: Any | None, *more: Any) -> sa.Select[Any]:
    return q.group_by(*more) if key is None else q.group_by(key, *more)


def _steps_query(key: Any | None, where: list[Any]) -> sa.Select[Any]:
    c, s = schema.sla_clocks.c, schema.sla_steps.c
    q = (sa.select(_grp(key), s.kind, sa.func.count()).join(schema.sla_clocks, c.id == s.clock_id)
         .where(*where, s.status != SKIPPED))
    return _grouped(q, key, s.kind)


def _touched() -> Any:
    # Written so that no index on status is used: most clocks are touched, and fetching nearly every row
    # through an index (SQLite's choice without statistics) is several times slower than reading the table.
    return sa.func.coalesce(schema.sla_clocks.c.status, "").in_((MET, MISSED))


def _wanted(groups: Mapping[str, Figures], pcts: tuple[int, ...]) -> dict[tuple[str, int], list[int]]:
    """(group, rank) -> the percentiles found at that rank, for every group with touched clocks."""
    return {(grp, r): ps for grp, f in groups.items() if f.touched for r, ps in _ranks(f.touched, pcts).items()}


def _ranks(n: int, pcts: tuple[int, ...]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for p in pcts:
        out.setdefault(rank(n, p), []).append(p)
    return out


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


def _room_to_sort(conn: sa.Connection) -> None:
    """The percentiles sort every clock's minutes: give the sort memory, or it spills to disk (PostgreSQL's
    default 4 MB of work memory, SQLite's 2 MB page cache) and a million hand-offs take twice as long."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL work_mem = '64MB'"))  # this transaction only
    elif conn.dialect.name == "sqlite":
        # A bounded cache (64 MB), not an in-memory temp store, which would grow with the number of clocks.
        conn.exec_driver_sql("PRAGMA cache_size = -65536")
