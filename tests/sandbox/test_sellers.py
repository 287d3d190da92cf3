"""Sandbox sellers, vendor-free: profiles, seeded delays and outcomes, working hours, requests, surges."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmbridge.sandbox.sellers import (
    PROFILES,
    DealPlan,
    HandoffDeal,
    SellerLedger,
    SellerRequest,
    Step,
    SurgeRequest,
    WorkingHours,
    default_profile,
    plan_deal,
    plan_surge,
    work_until,
)

ZONES = ("Europe/Berlin", "America/New_York", "Asia/Singapore", "America/Sao_Paulo", "UTC")
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC))
seeds = st.integers(min_value=0, max_value=2**32)
deal_ids = st.integers(min_value=1, max_value=10**10).map(str)
zones = st.sampled_from(ZONES).map(WorkingHours.in_zone)


@settings(max_examples=150, deadline=None)
@given(seeds, deal_ids, st.sampled_from(list(PROFILES)), instants, zones)
def test_the_same_seed_and_deal_always_draw_the_same_plan(seed: int, deal: str, profile: str, handoff: datetime,
                                                          hours: WorkingHours) -> None:
    assert plan_deal(deal, "1", handoff, profile, hours, seed) == plan_deal(deal, "1", handoff, profile, hours, seed)


@settings(max_examples=200, deadline=None)
@given(seeds, deal_ids, st.sampled_from(["fast", "slow"]), instants, zones)
def test_fast_and_slow_sellers_first_touch_within_their_range(seed: int, deal: str, profile: str, handoff: datetime,
                                                              hours: WorkingHours) -> None:
    plan = plan_deal(deal, "1", handoff, profile, hours, seed)
    low, high = PROFILES[profile].first_touch or (0, 0)
    touch = plan.steps[0]
    assert touch.action == "touch" and touch.channel in ("call", "email")
    assert timedelta(minutes=low) < touch.at - handoff <= timedelta(minutes=high)
    assert touch.at.second == 0 and touch.at.microsecond == 0, "a whole minute, which every CRM can keep"


@settings(max_examples=200, deadline=None)
@given(seeds, deal_ids, instants, zones)
def test_outside_hours_sellers_never_act_outside_their_working_hours(seed: int, deal: str, handoff: datetime,
                                                                    hours: WorkingHours) -> None:
    plan = plan_deal(deal, "1", handoff, "outside_hours", hours, seed)
    assert plan.steps and plan.steps[0].at > handoff
    for step in plan.steps:
        assert hours.is_open(step.at), step
        local = step.at.astimezone(hours.zone)
        assert local.weekday() < 5 and 9 <= local.hour < 17


@settings(max_examples=100, deadline=None)
@given(seeds, deal_ids, instants, zones)
def test_a_seller_who_never_answers_does_nothing(seed: int, deal: str, handoff: datetime,
                                                 hours: WorkingHours) -> None:
    assert plan_deal(deal, "1", handoff, "never", hours, seed).steps == ()


@settings(max_examples=200, deadline=None)
@given(seeds, deal_ids, st.sampled_from(["fast", "slow", "outside_hours"]), instants, zones)
def test_after_the_first_touch_a_deal_is_accepted_or_rejected_and_ends_at_most_once(
        seed: int, deal: str, profile: str, handoff: datetime, hours: WorkingHours) -> None:
    steps = plan_deal(deal, "1", handoff, profile, hours, seed).steps
    actions = [s.action for s in steps]
    assert actions[0] == "touch" and [s.at for s in steps] == sorted(s.at for s in steps)
    assert ("rejected" in actions) != ("accept" in actions)
    assert sum(a in ("won", "lost", "rejected") for a in actions) <= 1
    for step in steps:
        if step.action in ("won", "lost", "rejected"):
            assert step.reason
        if step.action != "touch":
            assert hours.is_open(step.at), "follow-ups happen during the seller's day"


@settings(max_examples=100, deadline=None)
@given(instants, zones, st.integers(min_value=0, max_value=5000))
def test_working_time_added_lands_inside_hours_and_never_before_the_start(at: datetime, hours: WorkingHours,
                                                                         minutes: int) -> None:
    later = hours.add(at, minutes)
    assert hours.is_open(later) and later >= at


def test_a_friday_evening_hand_off_is_answered_on_monday_morning_in_the_sellers_zone() -> None:
    berlin = WorkingHours.in_zone("Europe/Berlin")
    friday_evening = datetime(2026, 3, 6, 18, 30, tzinfo=UTC)  # 19:30 in Berlin
    touch = plan_deal("42", "1", friday_evening, "outside_hours", berlin, 7).steps[0]
    local = touch.at.astimezone(berlin.zone)
    assert local.date().isoformat() == "2026-03-09" and 9 <= local.hour < 11


def test_profiles_are_drawn_from_the_seed_unless_named() -> None:
    drawn = {owner: default_profile(owner, 7) for owner in map(str, range(40))}
    assert drawn == {owner: default_profile(owner, 7) for owner in map(str, range(40))}
    assert set(drawn.values()) == set(PROFILES), "a team of forty has every kind of seller"
    request = SellerRequest.parse({"until": "2026-03-02T09:00:00Z", "profiles": {"Anna@Lumen.example": "never",
                                                                                 "51": "fast"}}, 7)
    assert request.profile_of("99", "anna@lumen.example") == "never"
    assert request.profile_of("51", None) == "fast"
    assert request.seed == 7 and request.until == datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.mark.parametrize(("body", "message"), [
    ({}, "sellers.until is required"),
    ({"until": "yesterday"}, "not an ISO 8601 instant"),
    ({"until": "2026-03-02T09:00:00"}, "must carry a time zone"),
    ({"until": 1767225600000}, "must be an ISO 8601 instant"),
    ({"until": "2026-03-02T09:00:00Z", "seed": "7"}, "sellers.seed must be a whole number"),
    ({"until": "2026-03-02T09:00:00Z", "seed": True}, "sellers.seed must be a whole number"),
    ({"until": "2026-03-02T09:00:00Z", "profiles": {"51": "speedy"}}, "unknown profile 'speedy' for '51'"),
    ({"until": "2026-03-02T09:00:00Z", "profiles": ["fast"]}, "sellers.profiles must be an object"),
    ({"until": "2026-03-02T09:00:00Z", "when": 1}, "unknown key(s) when"),
    ("2026-03-02T09:00:00Z", "sellers must be a JSON object"),
])
def test_a_bad_seller_request_says_what_is_wrong(body: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        SellerRequest.parse(body, 7)


@pytest.mark.parametrize(("body", "message"), [
    ({"accounts": 3}, "surge.until is required"),
    ({"accounts": 0, "until": "2026-03-02T09:00:00Z"}, "surge.accounts must be a whole number from 1"),
    ({"days": "five", "until": "2026-03-02T09:00:00Z"}, "surge.days must be a whole number"),
])
def test_a_bad_surge_request_says_what_is_wrong(body: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        SurgeRequest.parse(body, 7)


class FakeDesk:
    """A desk whose deals are a list and whose hands only write down what they were told to do."""

    def __init__(self, deals: Sequence[HandoffDeal]) -> None:
        self.deals = list(deals)
        self.done: list[tuple[str, Step]] = []
        self.gone: set[str] = set()

    def handoff_deals(self) -> Sequence[HandoffDeal]:
        return self.deals

    def carry_out(self, plan: DealPlan, step: Step) -> dict[str, Any] | None:
        if plan.deal in self.gone:
            return None
        self.done.append((plan.deal, step))
        return {"made": len(self.done)}


HANDOFF = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def _deals(n: int, owner: str = "51") -> list[HandoffDeal]:
    return [HandoffDeal(str(i), owner, None, "Europe/Berlin", HANDOFF) for i in range(1, n + 1)]


def test_working_until_an_instant_does_each_step_once_and_a_later_instant_the_next_ones() -> None:
    desk, ledger = FakeDesk(_deals(5)), SellerLedger()
    early = SellerRequest(HANDOFF + timedelta(minutes=30), 7, {"51": "fast"})
    first = work_until(desk, ledger, early)
    assert first["summary"]["touches"] == 5 and len(desk.done) == 5
    assert work_until(desk, ledger, early)["deals"] == [] and len(desk.done) == 5, "nothing twice"
    later = work_until(desk, ledger, SellerRequest(HANDOFF + timedelta(days=60), 7, {"51": "fast"}))
    assert later["summary"]["touches"] == 0 and later["summary"]["accepted"] + later["summary"]["rejected"] == 5
    assert ledger.snapshot()["touches"] == 5 and ledger.snapshot()["planned"] == 5


def test_the_same_seed_does_the_same_things_in_two_sandboxes() -> None:
    runs = []
    for _ in range(2):
        desk = FakeDesk(_deals(8))
        work_until(desk, SellerLedger(), SellerRequest(HANDOFF + timedelta(days=45), 3, {}))
        runs.append(desk.done)
    assert runs[0] == runs[1] and runs[0]


def test_a_deal_closed_by_someone_else_is_left_alone() -> None:
    desk, ledger = FakeDesk(_deals(1)), SellerLedger()
    desk.gone.add("1")
    answer = work_until(desk, ledger, SellerRequest(HANDOFF + timedelta(days=45), 7, {"51": "fast"}))
    assert answer["deals"][0]["actions"][0]["skipped"] and ledger.snapshot()["abandoned"] == 1
    assert work_until(desk, ledger, SellerRequest(HANDOFF + timedelta(days=90), 7, {}))["deals"] == []


def test_a_lead_reassigned_before_anyone_answered_is_answered_by_the_new_owner() -> None:
    desk, ledger = FakeDesk(_deals(1, owner="60")), SellerLedger()
    silent = SellerRequest(HANDOFF + timedelta(hours=2), 7, {"60": "never", "61": "fast"})
    assert work_until(desk, ledger, silent)["deals"] == []
    desk.deals = _deals(1, owner="61")
    answer = work_until(desk, ledger, SellerRequest(HANDOFF + timedelta(hours=3), 7, silent.profiles))
    [deal] = answer["deals"]
    assert deal["owner_id"] == "61" and deal["actions"][0]["action"] == "touch"
    assert deal["handoff_at"] == "2026-03-02T12:00:00Z", "the new owner's clock starts when the sellers last looked"


def test_a_surge_heats_up_the_chosen_accounts_more_and_more_towards_the_end() -> None:
    accounts = {f"c{i}": [f"c{i}-p{j}" for j in range(4)] for i in range(10)}
    until = datetime(2026, 3, 2, 12, tzinfo=UTC)
    request = SurgeRequest(3, 5, until, 7)
    events = plan_surge(accounts, request)
    assert events == plan_surge(accounts, request)
    assert len({e.account for e in events}) == 3
    assert all(until - timedelta(days=5) < e.at <= until for e in events)
    per_day = [sum(1 for e in events if until - timedelta(days=d + 1) < e.at <= until - timedelta(days=d))
               for d in range(5)]
    assert per_day[0] > per_day[-1], f"the last day is busier than the first: {per_day}"
    for account in {e.account for e in events}:
        assert any(e.kind == "guide_download" and e.account == account for e in events)
