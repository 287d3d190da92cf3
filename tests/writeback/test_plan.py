"""The write-back planner: only changed values, HubSpot's lifecycle rules, never a downgrade of sales' stages."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crmbridge.model import LifecycleStage
from crmbridge.writeback.config import WRITABLE
from crmbridge.writeback.plan import (
    WritePlan,
    desired_values,
    lifecycle_change,
    plan_person,
    reasons_text,
)

REASONS = [
    {"rule": "contact_request", "description": "Contact request form", "points": 50.0},
    {"rule": "email_open", "description": "E-mail opened", "points": 0.0},
    {"rule": "student", "description": "Student", "points": -30.0},
    {"rule": "buyers_guide", "description": "Buyer's guide download", "points": 25.0},
    {"rule": "size", "description": "Company size in the sweet spot", "points": 10.0},
]


def score_row(total: float = 55.4, fit: float = 10.2, engagement: float = 45.2, stage: str = "sql",
              scored_ms: int = 1_763_900_000_000) -> dict[str, Any]:
    return {"person_id": 1, "email": "a@b.example", "total": total, "fit": fit, "engagement": engagement,
            "stage": stage, "scored_ms": scored_ms, "data": {"score": round(total), "reasons": REASONS}}


def test_reasons_name_the_biggest_positive_rules_first_and_skip_zero_points() -> None:
    assert reasons_text(REASONS) == ("Contact request form (+50); Buyer's guide download (+25); "
                                     "Company size in the sweet spot (+10)")
    assert reasons_text(REASONS, limit=5).endswith("Student (-30)")
    assert "E-mail opened" not in reasons_text(REASONS, limit=5)


def test_desired_values_are_whole_numbers_and_utc_instants() -> None:
    values = desired_values(score_row(), {"done_ms": 1_763_900_100_000, "owner_label": "Dana (round-robin)"},
                            WRITABLE)
    assert values["score"] == 55 and values["fit_score"] == 10 and values["engagement_score"] == 45
    assert values["scored_at"] == "2025-11-23T12:13:20Z"
    assert values["handoff_at"] == "2025-11-23T12:15:00Z"
    assert values["lifecycle_stage"] == "sql"
    assert values["handoff_owner"] == "Dana (round-robin)"


def test_only_the_configured_fields_are_written() -> None:
    assert set(desired_values(score_row(), None, ["score", "lifecycle_stage"])) == {"score", "lifecycle_stage"}


def test_a_person_whose_values_did_not_change_plans_no_write() -> None:
    desired = desired_values(score_row(), None, WRITABLE)
    assert plan_person("hubspot", "7", 1, None, desired, dict(desired), LifecycleStage.SQL, forward_only=True) is None


def test_only_changed_fields_are_planned() -> None:
    desired = desired_values(score_row(engagement=52.0), None, WRITABLE)
    held = {**desired, "engagement_score": 45}
    change = plan_person("hubspot", "7", 1, None, desired, held, LifecycleStage.SQL, forward_only=True)
    assert change is not None and dict(change.changes) == {"engagement_score": (45, 52)}


def test_customers_opportunities_and_evangelists_are_never_touched() -> None:
    for protected in (LifecycleStage.OPPORTUNITY, LifecycleStage.CUSTOMER, LifecycleStage.EVANGELIST):
        assert lifecycle_change(None, protected, "sql", forward_only=True) == (None, False)
        assert lifecycle_change("mql", protected, "sql", forward_only=False) == (None, False)


def test_a_backward_move_on_hubspot_is_cleared_first() -> None:
    assert lifecycle_change("sql", LifecycleStage.SQL, "mql", forward_only=True) == ("mql", True)
    assert lifecycle_change("sql", LifecycleStage.SQL, "mql", forward_only=False) == ("mql", False)
    assert lifecycle_change("lead", LifecycleStage.LEAD, "sql", forward_only=True) == ("sql", False)


def test_stages_scoring_does_not_own_are_not_written() -> None:
    assert lifecycle_change(None, None, "customer", forward_only=True) == (None, False)
    assert lifecycle_change(None, None, "not-a-stage", forward_only=True) == (None, False)


def test_the_plan_costs_one_batch_call_per_hundred_people_plus_the_clears() -> None:
    plan = WritePlan(batch_sizes={"hubspot": 100, "pipedrive": 1})
    desired = desired_values(score_row(), None, WRITABLE)
    for i in range(250):
        change = plan_person("hubspot", str(i), i, None, desired, {}, None, forward_only=True)
        assert change is not None
        plan.changes.append(change)
    for i in range(3):
        change = plan_person("pipedrive", str(i), i, None, desired, {}, None, forward_only=False)
        assert change is not None
        plan.changes.append(change)
    assert plan.calls() == {"hubspot": 3, "pipedrive": 3}


stages = st.sampled_from([s.value for s in LifecycleStage])
crm_stages = st.one_of(st.none(), st.sampled_from(list(LifecycleStage)))


@given(held=st.one_of(st.none(), stages), crm=crm_stages, desired=stages, forward_only=st.booleans())
def test_a_protected_stage_is_never_downgraded(held, crm, desired, forward_only) -> None:
    stage, _ = lifecycle_change(held, crm, desired, forward_only=forward_only)
    if crm is not None and crm.is_protected:
        assert stage is None
    if stage is not None:
        assert LifecycleStage(stage) in (LifecycleStage.LEAD, LifecycleStage.MQL, LifecycleStage.SQL)


@given(total=st.floats(0, 200), fit=st.floats(0, 100), engagement=st.floats(0, 100),
       stage=st.sampled_from(["lead", "mql", "sql"]))
def test_planning_against_what_was_just_written_always_plans_nothing(total, fit, engagement, stage) -> None:
    desired = desired_values(score_row(total, fit, engagement, stage), None, WRITABLE)
    first = plan_person("hubspot", "1", 1, None, desired, {}, None, forward_only=True)
    assert first is not None
    held = first.values
    assert plan_person("hubspot", "1", 1, None, desired, held, LifecycleStage(stage), forward_only=True) is None


def test_a_stage_sales_set_by_hand_is_never_lowered_by_the_model() -> None:
    # We last wrote lead; a seller then moved the person to SQL in the CRM; the model now says MQL.
    for forward_only in (True, False):
        assert lifecycle_change("lead", LifecycleStage.SQL, "mql", forward_only=forward_only) == (None, False)
        assert lifecycle_change("lead", LifecycleStage.SQL, "lead", forward_only=forward_only) == (None, False)
        assert lifecycle_change("lead", LifecycleStage.SQL, "sql", forward_only=forward_only) == (None, False)
        # A stage found in the CRM before write-back ever wrote one is the CRM's, too.
        assert lifecycle_change(None, LifecycleStage.SQL, "mql", forward_only=forward_only) == (None, False)
        # Moving past the CRM's stage is a forward move and stays allowed.
        assert lifecycle_change("lead", LifecycleStage.MQL, "sql", forward_only=forward_only) == ("sql", False)


def test_a_crm_stage_older_than_our_last_write_does_not_hide_what_we_wrote() -> None:
    # We wrote SQL after the last sync read lead; recycling to MQL is a backward move from our SQL.
    assert lifecycle_change("sql", LifecycleStage.LEAD, "mql", forward_only=True) == ("mql", True)
    assert lifecycle_change("sql", LifecycleStage.LEAD, "sql", forward_only=True) == (None, False)


@given(held=st.one_of(st.none(), st.sampled_from(["lead", "mql", "sql"])),
       crm=st.sampled_from([LifecycleStage.SUBSCRIBER, LifecycleStage.LEAD, LifecycleStage.MQL, LifecycleStage.SQL]),
       desired=stages, forward_only=st.booleans())
def test_write_back_never_writes_below_a_crm_stage_it_did_not_write(held, crm, desired, forward_only) -> None:
    stage, _ = lifecycle_change(held, crm, desired, forward_only=forward_only)
    ours = LifecycleStage(held) if held else None
    if stage is not None and (ours is None or crm.rank > ours.rank):
        assert LifecycleStage(stage).rank > crm.rank
