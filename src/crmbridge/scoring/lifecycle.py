"""Lifecycle policy: turn the stage a score proposes into the stage a record should get.

Scoring never moves a record out of a stage sales or finance own (opportunity, customer, evangelist),
never touches a manual "other", and by default only moves forward, as marketing CRMs do. Recycling sends an
SQL that sales rejected back to nurture until the person engages again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crmbridge.model import LifecycleStage


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """What a model's ``lifecycle`` section allows; the default is forward-only, no recycling."""

    allow_downgrade: bool = False
    demote_disqualified: bool = True
    recycle_rejected: bool = False
    recycle_to: LifecycleStage = LifecycleStage.LEAD


DEFAULT_POLICY = LifecyclePolicy()


def apply_lifecycle_policy(
    current: LifecycleStage | None,
    proposed: LifecycleStage,
    policy: LifecyclePolicy | None = None,
    *,
    disqualified: bool = False,
    rejected_at: datetime | None = None,
    last_engaged_at: datetime | None = None,
) -> LifecycleStage:
    """The stage to write, given the record's ``current`` stage and the one its score ``proposed``.

    ``rejected_at`` is when sales rejected the person as an SQL (if they did); ``last_engaged_at`` is the
    person's latest scored engagement (``PersonScore.last_engaged_at``). Both only matter for recycling.
    """
    policy = policy or DEFAULT_POLICY
    if current is None:
        return proposed
    if current.is_protected or current is LifecycleStage.OTHER:
        return current
    if policy.recycle_rejected and rejected_at is not None and not _engaged_since(last_engaged_at, rejected_at):
        # Sales said no: hold the person in nurture, below SQL, until they show new interest.
        cap = policy.recycle_to
        return proposed if proposed.rank < cap.rank else cap
    if disqualified and policy.demote_disqualified:
        return proposed
    if policy.allow_downgrade or proposed.rank >= current.rank:
        return proposed
    return current


def _engaged_since(last_engaged_at: datetime | None, rejected_at: datetime) -> bool:
    return last_engaged_at is not None and last_engaged_at > rejected_at
