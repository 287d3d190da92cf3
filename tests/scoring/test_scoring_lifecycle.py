"""Lifecycle policy: scoring moves records forward, never out of stages sales or finance own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from scoring_helpers import EXAMPLES

from crmbridge.model import LifecycleStage as S
from crmbridge.scoring import LifecyclePolicy, ScoringModel, apply_lifecycle_policy
from crmbridge.scoring.lifecycle import lifecycle_note, reachable_stages, stage_name

REJECTED = datetime(2025, 2, 1, tzinfo=UTC)
RECYCLING = LifecyclePolicy(recycle_rejected=True, recycle_to=S.LEAD)


@pytest.mark.parametrize("owned", [S.OPPORTUNITY, S.CUSTOMER, S.EVANGELIST])
@pytest.mark.parametrize("proposed", [S.LEAD, S.MQL, S.SQL])
def test_opportunities_customers_and_evangelists_are_never_moved(owned: S, proposed: S) -> None:
    assert apply_lifecycle_policy(owned, proposed) is owned
    assert apply_lifecycle_policy(owned, proposed, LifecyclePolicy(allow_downgrade=True), disqualified=True,
                                  rejected_at=REJECTED) is owned


def test_a_new_record_takes_the_proposed_stage() -> None:
    assert apply_lifecycle_policy(None, S.MQL) is S.MQL


def test_stages_only_move_forward_by_default() -> None:
    assert apply_lifecycle_policy(S.LEAD, S.SQL) is S.SQL
    assert apply_lifecycle_policy(S.SQL, S.MQL) is S.SQL


def test_a_model_may_let_stages_follow_the_score_down() -> None:
    assert apply_lifecycle_policy(S.SQL, S.MQL, LifecyclePolicy(allow_downgrade=True)) is S.MQL


def test_a_manual_other_is_left_alone() -> None:
    assert apply_lifecycle_policy(S.OTHER, S.SQL) is S.OTHER


def test_a_disqualified_person_is_demoted_unless_the_model_says_otherwise() -> None:
    assert apply_lifecycle_policy(S.SQL, S.LEAD, disqualified=True) is S.LEAD
    keep = LifecyclePolicy(demote_disqualified=False)
    assert apply_lifecycle_policy(S.SQL, S.LEAD, keep, disqualified=True) is S.SQL


def test_a_rejected_sql_is_recycled_until_the_person_engages_again() -> None:
    assert apply_lifecycle_policy(S.SQL, S.SQL, RECYCLING, rejected_at=REJECTED) is S.LEAD
    before = REJECTED - timedelta(days=3)
    assert apply_lifecycle_policy(S.LEAD, S.SQL, RECYCLING, rejected_at=REJECTED, last_engaged_at=before) is S.LEAD
    after = REJECTED + timedelta(days=3)
    assert apply_lifecycle_policy(S.LEAD, S.SQL, RECYCLING, rejected_at=REJECTED, last_engaged_at=after) is S.SQL


def test_without_recycling_a_rejected_sql_stays_put() -> None:
    assert apply_lifecycle_policy(S.SQL, S.SQL, rejected_at=REJECTED) is S.SQL


def test_the_default_model_recycles_rejected_sqls() -> None:
    policy = ScoringModel.load(EXAMPLES / "default.yaml").lifecycle_policy
    assert policy == LifecyclePolicy(allow_downgrade=False, demote_disqualified=True, recycle_rejected=True,
                                     recycle_to=S.LEAD)


STAGES = [None, *S]
POLICIES = [LifecyclePolicy(), LifecyclePolicy(allow_downgrade=True), RECYCLING,
            LifecyclePolicy(recycle_rejected=True, recycle_to=S.MQL, demote_disqualified=False)]


@pytest.mark.parametrize("policy", POLICIES)
def test_the_note_explains_exactly_when_the_policy_changed_the_proposal(policy: LifecyclePolicy) -> None:
    for current in STAGES:
        for proposed in (S.SUBSCRIBER, S.LEAD, S.MQL, S.SQL, S.OTHER):
            for disqualified in (False, True):
                for rejected, engaged in ((None, None), (REJECTED, None), (REJECTED, REJECTED + timedelta(days=1))):
                    facts = {"disqualified": disqualified, "rejected_at": rejected, "last_engaged_at": engaged}
                    stage = apply_lifecycle_policy(current, proposed, policy, **facts)  # type: ignore[arg-type]
                    note = lifecycle_note(current, proposed, policy, **facts)  # type: ignore[arg-type]
                    assert (note is None) == (stage is proposed), (current, proposed, facts)
                    if note is not None:
                        assert note.startswith(("held at ", "recycled to ")) and stage_name(stage) in note


def test_the_note_names_the_rule() -> None:
    assert lifecycle_note(S.CUSTOMER, S.SQL) == \
        "held at customer: scoring never moves opportunity, customer or evangelist (proposed: SQL)"
    assert lifecycle_note(S.SQL, S.MQL) == \
        "held at SQL: stages only move forward (lifecycle.allow_downgrade: false; proposed: MQL)"
    assert lifecycle_note(S.SQL, S.SQL, RECYCLING, rejected_at=REJECTED) == (
        "recycled to lead: sales rejected this SQL and there was no engagement since "
        "(lifecycle.recycle_rejected; proposed: SQL)")


def test_reachable_stages_are_what_the_policy_can_give() -> None:
    proposable = {S.LEAD, S.MQL, S.SQL}
    assert reachable_stages(S.CUSTOMER, proposable) == {S.CUSTOMER}
    assert reachable_stages(None, proposable) == proposable
    assert reachable_stages(S.SQL, proposable) == {S.SQL}
    assert reachable_stages(S.SQL, proposable, disqualified_stage=S.LEAD) == {S.SQL, S.LEAD}
    assert reachable_stages(S.SQL, proposable, RECYCLING, rejected_at=REJECTED) == {S.SQL, S.LEAD}
