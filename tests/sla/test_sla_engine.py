"""The SLA engine on a real store (SQLite and PostgreSQL), time moved by hand: clocks start at hand-off in
business time, stop at the first real touch, and the ladder's steps each go out once."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from sla_helpers import (
    clock_rows,
    config,
    hand_off,
    log_activity,
    move_deal,
    ms,
    seed_world,
    slack_notifier,
    texts,
    utc,
)

from crmbridge.model import ActivityKind, ActorKind, DealStatus
from crmbridge.routing import OwnerRouter
from crmbridge.sandbox.recorder import RecordingReceiver
from crmbridge.sla.engine import SlaEngine
from crmbridge.sla.ledger import SlaLedger
from crmbridge.sla.reassign import RoutingReassigner
from crmbridge.store import Store

FRIDAY_EVENING = utc(2026, 3, 6, 16, 30)  # 30 business minutes before the weekend


def engine(store: Store, **kwargs: object) -> SlaEngine:
    return SlaEngine(store, config(), **kwargs)  # type: ignore[arg-type]


def test_a_friday_evening_hand_off_is_due_on_monday_morning_and_met_by_a_monday_call(store: Store) -> None:
    seed_world(store)
    hand_off(store, 0, FRIDAY_EVENING)
    sla = engine(store)
    assert sla.tick(ms(utc(2026, 3, 6, 16, 31))).started == 1
    [clock] = clock_rows(store)
    assert clock["due_ms"] == ms(utc(2026, 3, 9, 9, 30))  # 30 min on Friday, 30 on Monday
    assert clock["risk_ms"] == ms(utc(2026, 3, 9, 9, 15))  # 75 %
    assert clock["next_ms"] == clock["risk_ms"]
    log_activity(store, 0, utc(2026, 3, 9, 9, 10))
    assert sla.tick(ms(utc(2026, 3, 9, 9, 11))).settled == 1
    [clock] = clock_rows(store)
    assert (clock["status"], clock["settled_by"], clock["business_minutes"]) == ("met", "call", 40.0)
    assert clock["wall_minutes"] == pytest.approx(64 * 60 + 40)  # speed to lead in wall-clock time
    assert not clock["breached"]


def test_reminder_escalation_and_reassignment_each_go_out_once(store: Store) -> None:
    seed_world(store)
    hand_off(store, 0, utc(2026, 3, 9, 10, 0))  # Monday 10:00: due 11:00
    with RecordingReceiver() as hook:
        sla = engine(store, notifier=slack_notifier(hook.url), reassigner=RoutingReassigner(store, OwnerRouter()))
        for minute in range(0, 100, 5):  # a tick every 5 minutes until 11:40, some of them twice
            now = ms(utc(2026, 3, 9, 10, 0)) + minute * 60_000
            sla.tick(now)
            sla.tick(now)
        said = texts(hook.deliveries)
    assert len(said) == 3, said
    assert said[0].startswith("Reminder: first touch due soon for Lead0")
    assert said[1].startswith("SLA breached: nobody has reached Lead0 yet")
    assert said[2].startswith("Lead reassigned to Bob")
    old, new = clock_rows(store)
    assert (old["status"], old["breached"], old["owner_id"]) == ("reassigned", True, "u1")
    assert (new["status"], new["owner_id"], new["reassignments"]) == ("open", "u2", 1)
    assert new["started_ms"] == ms(utc(2026, 3, 9, 11, 30))  # 30 business minutes after the breach
    steps = SlaLedger(store).steps()
    assert [(s["kind"], s["status"]) for s in steps] == [("remind", "sent"), ("escalate", "sent"),
                                                         ("reassign", "sent")]
    assert steps[1]["recipient"] == "boss@lumen.example"


def test_the_reassignment_cap_holds_and_escalation_repeats_for_the_new_owner(store: Store) -> None:
    seed_world(store)
    hand_off(store, 0, utc(2026, 3, 9, 10, 0))
    sla = engine(store, reassigner=RoutingReassigner(store, OwnerRouter()))
    for minute in range(0, 8 * 60, 10):
        sla.tick(ms(utc(2026, 3, 9, 10, 0)) + minute * 60_000)
    rows = clock_rows(store)
    assert [r["owner_id"] for r in rows] == ["u1", "u2"]  # max 1 reassignment
    kinds = [(s["clock_id"], s["kind"]) for s in SlaLedger(store).steps()]
    assert kinds == [(rows[0]["id"], "remind"), (rows[0]["id"], "escalate"), (rows[0]["id"], "reassign"),
                     (rows[1]["id"], "remind"), (rows[1]["id"], "escalate")]


@pytest.mark.parametrize("what", ["automation", "integration user", "the lead's own e-mail", "a note"])
def test_activities_that_are_not_a_sales_touch_never_stop_the_clock(store: Store, what: str) -> None:
    seed_world(store)
    hand_off(store, 0, utc(2026, 3, 9, 10, 0))
    at = utc(2026, 3, 9, 10, 5)
    if what == "automation":
        log_activity(store, 0, at, actor=ActorKind.PERSON)
    elif what == "integration user":
        log_activity(store, 0, at, owner="bot")
    elif what == "the lead's own e-mail":
        log_activity(store, 0, at, kind=ActivityKind.EMAIL_REPLY)
    else:
        log_activity(store, 0, at, kind=ActivityKind.NOTE)
    sla = engine(store)
    sla.tick(ms(utc(2026, 3, 9, 10, 10)))
    assert clock_rows(store)[0]["status"] == "open"


def test_a_touch_before_the_hand_off_does_not_count_and_one_on_the_deal_does(store: Store) -> None:
    seed_world(store)
    log_activity(store, 0, utc(2026, 3, 9, 9, 0))
    hand_off(store, 0, utc(2026, 3, 9, 10, 0))
    sla = engine(store)
    sla.tick(ms(utc(2026, 3, 9, 10, 1)))
    assert clock_rows(store)[0]["status"] == "open"
    log_activity(store, 0, utc(2026, 3, 9, 11, 20), kind=ActivityKind.EMAIL_SENT, on_deal=True)
    sla.tick(ms(utc(2026, 3, 9, 11, 21)))
    [clock] = clock_rows(store)
    assert (clock["status"], clock["settled_by"], clock["business_minutes"]) == ("missed", "email_sent", 80.0)


def test_a_stage_change_out_of_sales_ready_is_acceptance(store: Store) -> None:
    seed_world(store)
    hand_off(store, 0, utc(2026, 3, 9, 10, 0))
    sla = engine(store)
    sla.tick(ms(utc(2026, 3, 9, 10, 1)))
    move_deal(store, 0, stage="8", at=utc(2026, 3, 9, 10, 20))
    sla.tick(ms(utc(2026, 3, 9, 10, 21)))
    [clock] = clock_rows(store)
    assert (clock["status"], clock["settled_by"], clock["business_minutes"]) == ("met", "accepted", 20.0)
    assert [o["kind"] for o in SlaLedger(store).outcomes()] == ["accepted"]


def test_a_lead_rejected_in_the_hand_off_stage_is_an_outcome_with_its_reason(store: Store) -> None:
    seed_world(store)
    hand_off(store, 0, utc(2026, 3, 9, 10, 0))
    sla = engine(store)
    sla.tick(ms(utc(2026, 3, 9, 10, 1)))
    move_deal(store, 0, status=DealStatus.LOST, at=utc(2026, 3, 9, 10, 30), lost_reason="not a fit")
    sla.tick(ms(utc(2026, 3, 9, 10, 31)))
    [clock] = clock_rows(store)
    assert (clock["status"], clock["settled_by"]) == ("closed", "rejected")
    [outcome] = SlaLedger(store).outcomes()
    assert (outcome["kind"], outcome["reason"], outcome["at_ms"]) == ("rejected", "not a fit",
                                                                      ms(utc(2026, 3, 9, 10, 30)))


def test_a_tick_costs_the_due_clocks_only(store: Store) -> None:
    seed_world(store, people=30)
    start = utc(2026, 3, 9, 10, 0)
    for n in range(30):
        hand_off(store, n, datetime.fromtimestamp(ms(start) / 1000 + n * 60, start.tzinfo))
    sla = engine(store)
    sla.tick(ms(utc(2026, 3, 9, 10, 30)))
    due = SlaLedger(store).claim_due(ms(utc(2026, 3, 9, 10, 50)), 100, 1000)
    # reminders at 75 % (45 min): hand-offs made at 10:00..10:05 are due by 10:50
    assert len(due) == 6


def test_an_activity_dated_in_the_future_is_a_plan_not_a_touch(store: Store) -> None:
    seed_world(store)
    hand_off(store, 0, utc(2026, 3, 9, 10, 0))
    log_activity(store, 0, utc(2026, 3, 10, 9, 30))  # a call scheduled for tomorrow
    sla = engine(store)
    sla.tick(ms(utc(2026, 3, 9, 10, 5)))
    assert clock_rows(store)[0]["status"] == "open"


def test_a_reused_deal_in_a_stage_of_its_own_is_not_acceptance(store: Store) -> None:
    seed_world(store)
    key = hand_off(store, 0, utc(2026, 3, 9, 10, 0))
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE handoffs SET reused = :t WHERE key = :k"), {"t": True, "k": key})
    sla = engine(store)
    sla.tick(ms(utc(2026, 3, 9, 10, 1)))
    move_deal(store, 0, stage="8", at=utc(2026, 3, 9, 10, 20))  # it was in stage 8 before the hand-off
    sla.tick(ms(utc(2026, 3, 9, 10, 21)))
    assert clock_rows(store)[0]["status"] == "open"
