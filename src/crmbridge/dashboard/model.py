"""What the sales manager's board shows: a snapshot of SLA clocks, owner figures, the funnel and surges.

The SLA engine fills a ``Snapshot`` through a ``SnapshotSource``; everything here is pure (no clock, no
store), so the colour rule, the status wording and the JSON shape are tested without a server.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

Status = Literal["on_track", "at_risk", "breached", "paused", "met"]
Colour = Literal["green", "amber", "red", "grey", "blue"]

STATUSES: tuple[Status, ...] = ("breached", "at_risk", "on_track", "paused", "met")
AT_RISK_PCT = 75.0  # share of the SLA used from which a clock shows amber

_COLOURS: dict[str, Colour] = {
    "on_track": "green",
    "at_risk": "amber",
    "breached": "red",
    "paused": "grey",
    "met": "blue",
}


@dataclass(frozen=True, slots=True)
class HandoffRow:
    """One open (or just settled) SLA clock on a hand-off."""

    key: str
    person: str
    email: str | None
    company: str | None
    owner: str
    team: str | None
    source: str | None
    policy: str
    started_at: datetime
    due_at: datetime
    business_minutes_left: float  # negative once breached: the business time over
    used_pct: float
    status: Status
    reminders: int = 0
    reassignments: int = 0
    deal_url: str | None = None


@dataclass(frozen=True, slots=True)
class OwnerFigures:
    owner: str
    open: int
    at_risk: int
    breached: int
    handoffs: int
    p50_minutes: float | None
    within_sla_pct: float | None


@dataclass(frozen=True, slots=True)
class Funnel:
    leads: int
    mqls: int
    sqls: int
    handoffs: int
    touched: int
    meetings: int
    won: int
    lost: int


@dataclass(frozen=True, slots=True)
class SurgeRow:
    """An account whose buying interest rose: its score before and now, and the people behind it."""

    company: str
    owner: str | None
    score_before: float
    score_now: float
    people: list[str]
    at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    generated_at: datetime
    rows: list[HandoffRow]
    owners: list[OwnerFigures]
    funnel: Funnel
    surges: list[SurgeRow]


class SnapshotSource(Protocol):
    """Where the board's figures come from; ``snapshot`` may block (it is called off the event loop)."""

    def snapshot(self) -> Snapshot: ...


def status_of(used_pct: float, *, paused: bool = False, met: bool = False) -> Status:
    """The product's colour rule as a status: under 75 % of the SLA used is on track, 75 % up to and
    including 100 % (the due moment itself) is at risk, past 100 % is breached.

    A settled clock is met; a clock paused outside working hours is paused unless it has already
    breached, since a breach stays red overnight."""
    if met:
        return "met"
    if used_pct > 100.0:
        return "breached"
    if paused:
        return "paused"
    if used_pct >= AT_RISK_PCT:
        return "at_risk"
    return "on_track"


def colour(status: Status | str) -> Colour:
    """The cell colour of a status; never shown without ``status_text`` beside it."""
    return _COLOURS.get(status, "grey")


def duration_text(minutes: float) -> str:
    """Whole business minutes as a person reads them: ``12 min``, ``2 h``, ``1 h 5 min``."""
    whole = max(0, int(minutes))
    hours, rest = divmod(whole, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" if not rest else f"{hours} h {rest} min"


def status_text(row: HandoffRow) -> str:
    """The words that go with the colour: what a colour-blind reader, or a screen reader, gets."""
    left = row.business_minutes_left
    if row.status == "at_risk":
        # Rounded down: the board never promises a minute the seller does not have.
        return f"at risk — {duration_text(math.floor(max(left, 0.0)))} left"
    if row.status == "breached":
        over = math.ceil(max(-left, 0.0))
        return f"breached — {duration_text(over)} over" if over else "breached"
    if row.status == "paused":
        return "paused — outside working hours"
    if row.status == "met":
        return "met"
    return "on track"


def board_order(rows: Iterable[HandoffRow]) -> list[HandoffRow]:
    """Most urgent first: breached, at risk, on track, paused, met; then by due time."""
    rank = {s: i for i, s in enumerate(STATUSES)}
    return sorted(rows, key=lambda r: (rank.get(r.status, len(rank)), r.due_at, r.key))


def counts_by_status(rows: Iterable[HandoffRow]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with a ``Z``; a naive time is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _record(obj: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def row_json(row: HandoffRow) -> dict[str, Any]:
    return {**_record(row), "colour": colour(row.status), "status_text": status_text(row)}


def as_json(snapshot: Snapshot) -> dict[str, Any]:
    """The whole snapshot as JSON-able dicts; the API's two routes each answer a part of it."""
    return {
        "generated_at": iso_utc(snapshot.generated_at),
        "counts": counts_by_status(snapshot.rows),
        "owners": [_record(o) for o in snapshot.owners],
        "funnel": _record(snapshot.funnel),
        "surges": [_record(s) for s in snapshot.surges],
        "handoffs": [row_json(r) for r in snapshot.rows],
    }
