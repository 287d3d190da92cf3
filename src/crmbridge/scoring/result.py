"""What a score is made of: the total, the stage it proposes, and the reasons and gaps that explain it.

``PersonScore.fingerprint`` covers exactly the values written back to the CRM, so a re-score that
changes none of them can be recognised and skipped.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, overload

from crmbridge.model import LifecycleStage


class Reason(NamedTuple):
    """One rule that fired: its contribution after decay and cap, and what it would give undecayed."""

    rule: str
    description: str
    category: str  # company, person, negative, engagement, qualifying
    points: float
    raw_points: float
    decay: float  # decayed / raw points; 1.0 when nothing faded
    occurrences: int = 1
    capped: bool = False
    expired: int = 0  # occurrences too old to count

    def to_dict(self) -> dict[str, Any]:
        # Spelled out rather than ``_asdict`` and an update: a full re-score writes a dozen per person.
        rule, description, category, points, raw_points, decay, occurrences, capped, expired = self
        return {"rule": rule, "description": description, "category": category, "points": round(points, 2),
                "raw_points": round(raw_points, 2), "decay": round(decay, 4), "occurrences": occurrences,
                "capped": capped, "expired": expired}


class Gap(NamedTuple):
    """Something missing before the next stage: ``have`` of ``need`` on a measure, or a plain note."""

    stage: LifecycleStage
    measure: str  # fit, engagement, total, requirement, disqualified, hand_raise
    have: float | None = None
    need: float | None = None
    note: str = ""

    @property
    def text(self) -> str:
        if self.have is None or self.need is None:
            return self.note
        more = self.need - self.have
        return f"{self.measure} {_num(self.have)} of {_num(self.need)} ({_num(more)} more)"

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage.value, "measure": self.measure,
                "have": None if self.have is None else round(self.have, 2),
                "need": self.need, "text": self.text}


class Reasons(Sequence[Reason]):
    """The rules behind a score, in model order: a read-only sequence of ``Reason``.

    Engagement reasons are built on first use, since a re-score that only writes values never reads
    them; the numbers they are built from are fixed when the score is made.
    """

    __slots__ = ("_args", "_build", "_items")

    def __init__(self, items: tuple[Reason, ...] = (),
                 build: Callable[..., tuple[Reason, ...]] | None = None, args: tuple[Any, ...] = ()) -> None:
        self._items = items  # built reasons, or the leading ones that need no building
        self._build = build  # called once as build(items, *args) on first use
        self._args = args

    def _all(self) -> tuple[Reason, ...]:
        if self._build is not None:
            self._items, self._build = self._build(self._items, *self._args), None
        return self._items

    @overload
    def __getitem__(self, index: int) -> Reason: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Reason, ...]: ...

    def __getitem__(self, index: int | slice) -> Reason | tuple[Reason, ...]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[Reason]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self._all()) == tuple(other)

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"Reasons({list(self._all())!r})"

    def by_rule(self) -> dict[str, Reason]:
        return {r.rule: r for r in self._all()}


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


_WRITTEN = ("score", "fit_score", "engagement_score", "stage", "disqualified")
_FINGERPRINT_TEXT = "|".join(["%r"] * len(_WRITTEN))  # the text fingerprint() hashes for these values


def write_value(points: float) -> int:
    """Scores are written as whole numbers, rounded half up, so tiny decay steps cause no write."""
    return math.floor(points + 0.5)


def fingerprint(*values: Any) -> str:
    """A short stable hash of written values: equal values, equal fingerprint, on any host or run.

    Values are plain ints, strings, booleans or None, which ``%r`` spells the same everywhere.
    """
    text = "|".join(["%r"] * len(values)) % values
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class PersonScore(NamedTuple):
    """A person's score as of a moment. ``stage`` is what the model proposes, before lifecycle policy.

    Immutable; a named tuple because the engine builds one per person on every re-score.
    """

    email: str | None
    as_of: datetime
    total: float
    fit: float
    engagement: float
    qualifying: float
    stage: LifecycleStage
    disqualified: str | None
    disqualified_by: str | None
    hand_raise: bool
    responded: bool
    persona: str | None
    reasons: Reasons
    missing: tuple[Gap, ...]
    last_engaged_at: datetime | None

    @property
    def score(self) -> int:
        """The whole-number score written back to the CRM."""
        return write_value(self.total)

    def writeback(self) -> dict[str, Any]:
        """The values a write-back plan compares with what the CRM holds; ``fingerprint`` hashes these."""
        return dict(zip(_WRITTEN, self._written(), strict=True))

    @property
    def fingerprint(self) -> str:
        """Changes exactly when a written value changes: store it, and skip the write while it is equal.

        Computed on demand, as only write-back needs it; a re-score computes one per person.
        """
        text = _FINGERPRINT_TEXT % self._written()
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def _written(self) -> tuple[int, int, int, str, str | None]:
        _, _, total, fit, engagement, _, stage, disqualified = self[:8]
        return (write_value(total), write_value(fit), write_value(engagement), stage._value_, disqualified)

    def to_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "as_of": self.as_of.isoformat(),
            "total": round(self.total, 2),
            "score": self.score,
            "fit": round(self.fit, 2),
            "engagement": round(self.engagement, 2),
            "qualifying": round(self.qualifying, 2),
            "stage": self.stage.value,
            "disqualified": self.disqualified,
            "disqualified_by": self.disqualified_by,
            "hand_raise": self.hand_raise,
            "responded": self.responded,
            "persona": self.persona,
            "reasons": [r.to_dict() for r in self.reasons],
            "missing": [g.to_dict() for g in self.missing],
            "last_engaged_at": self.last_engaged_at.isoformat() if self.last_engaged_at else None,
            "fingerprint": self.fingerprint,
        }
