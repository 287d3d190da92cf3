"""Lifecycle policy: turn the stage a score proposes into the stage a record should get.

Scoring never moves a record out of a stage sales or finance own (opportunity, customer, evangelist),
never touches a manual "other", and by default only moves forward, as marketing CRMs do. Recycling sends an
SQL that sales rejected back to nurture until the person engages again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

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


def lifecycle_note(
    current: LifecycleStage | None,
    proposed: LifecycleStage,
    policy: LifecyclePolicy | None = None,
    *,
    disqualified: bool = False,
    rejected_at: datetime | None = None,
    last_engaged_at: datetime | None = None,
) -> str | None:
    """Why the policy gave a stage other than the proposed one, in words; None when it kept the proposal.

    Only explanations call this (a re-score calls ``apply_lifecycle_policy`` alone); a test holds both to
    the same stage for every combination.
    """
    policy = policy or DEFAULT_POLICY
    stage = apply_lifecycle_policy(current, proposed, policy, disqualified=disqualified, rejected_at=rejected_at,
                                   last_engaged_at=last_engaged_at)
    if stage is proposed or current is None:
        return None
    held, wanted = stage_name(stage), stage_name(proposed)
    if current.is_protected:
        return f"held at {held}: scoring never moves opportunity, customer or evangelist (proposed: {wanted})"
    if current is LifecycleStage.OTHER:
        return f"held at {held}: scoring never touches a manual 'other' (proposed: {wanted})"
    if policy.recycle_rejected and rejected_at is not None and not _engaged_since(last_engaged_at, rejected_at):
        return (f"recycled to {held}: sales rejected this SQL and there was no engagement since "
                f"(lifecycle.recycle_rejected; proposed: {wanted})")
    return f"held at {held}: stages only move forward (lifecycle.allow_downgrade: false; proposed: {wanted})"


def reachable_stages(current: LifecycleStage | None, proposable: Iterable[LifecycleStage],
                     policy: LifecyclePolicy | None = None, *, disqualified_stage: LifecycleStage | None = None,
                     rejected_at: datetime | None = None) -> frozenset[LifecycleStage]:
    """Every stage the policy can give a record at ``current``, whatever the score proposes among
    ``proposable``; ``disqualified_stage`` is what a disqualified person is proposed (None: nobody is).

    Found by asking ``apply_lifecycle_policy`` itself, so it can never disagree with it.
    """
    engaged: tuple[datetime | None, ...] = (None,)
    if rejected_at is not None:
        engaged = (None, rejected_at + timedelta(seconds=1))
    found = set()
    for proposed in proposable:
        for disqualified in (False, True) if proposed is disqualified_stage else (False,):
            for last in engaged:
                found.add(apply_lifecycle_policy(current, proposed, policy, disqualified=disqualified,
                                                 rejected_at=rejected_at, last_engaged_at=last))
    return frozenset(found)


def stage_name(stage: LifecycleStage) -> str:
    """How explanations write a stage: MQL and SQL as acronyms, the others as words."""
    return stage.value.upper() if stage in (LifecycleStage.MQL, LifecycleStage.SQL) else stage.value


def _engaged_since(last_engaged_at: datetime | None, rejected_at: datetime) -> bool:
    return last_engaged_at is not None and last_engaged_at > rejected_at
