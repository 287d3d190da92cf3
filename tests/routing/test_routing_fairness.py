"""Weighted round robin over many leads: each seller's share follows their weight, caps and windows hold."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from routing_helpers import NOW, lead, routing, seller

from crmbridge.routing import MemoryLedger, OwnerRouter, RoutingConfig, Seller

SELLERS = [seller("a", "Ann"), seller("b", "Bo"), seller("c", "Cy")]
WEIGHTED = """
window: {window}
sellers:
  a: {{weight: 1}}
  b: {{weight: 2}}
  c: {{weight: 3}}
rules:
  - {{name: rr, kind: round_robin}}
"""


def run(config: RoutingConfig, sellers: list[Seller], n: int, every: timedelta,
        ledger: MemoryLedger | None = None) -> Counter[str | None]:
    router, ledger = OwnerRouter(config), ledger or MemoryLedger()
    given: Counter[str | None] = Counter()
    for i in range(n):
        now = NOW + i * every
        result = router.assign(lead(person_id=i), sellers, ledger, now)
        ledger.record_assignment(result, now)
        given[result.owner_id] += 1
    return given


@pytest.mark.parametrize(("window", "every"), [("30d", timedelta(minutes=10)),  # all inside one window
                                               ("30d", timedelta(hours=3)),  # 125 days: the window rolls
                                               ("2d", timedelta(hours=1))])
def test_a_thousand_assignments_follow_the_weights_within_two_points(window: str, every: timedelta) -> None:
    given = run(routing(WEIGHTED.format(window=window)), SELLERS, 1000, every)
    assert sum(given.values()) == 1000
    for who, weight in (("a", 1), ("b", 2), ("c", 3)):
        assert abs(given[who] / 1000 - weight / 6) <= 0.02, given


def test_uneven_fractional_weights_hold_too() -> None:
    config = routing("""
sellers:
  a: {weight: 0.5}
  b: {weight: 1.5}
  c: {weight: 4}
rules:
  - {name: rr, kind: round_robin}
""")
    given = run(config, SELLERS, 1000, timedelta(minutes=5))
    for who, weight in (("a", 0.5), ("b", 1.5), ("c", 4)):
        assert abs(given[who] / 1000 - weight / 6) <= 0.02, given


def test_daily_caps_hold_every_day_and_the_rest_goes_to_claim() -> None:
    config = routing("""
sellers:
  a: {daily_cap: 3}
  b: {daily_cap: 5}
rules:
  - {name: rr, kind: round_robin, pool: [a, b]}
""")
    router, ledger = OwnerRouter(config), MemoryLedger()
    per_day: Counter[tuple[int, str | None]] = Counter()
    midnight = NOW.replace(hour=0)
    for i in range(240):  # ten days, one lead an hour
        now = midnight + timedelta(hours=i)
        result = router.assign(lead(person_id=i), SELLERS, ledger, now)
        ledger.record_assignment(result, now)
        per_day[(now.date().toordinal(), result.owner_id)] += 1
    days = {d for d, _ in per_day}
    assert all(per_day[(d, "a")] == 3 and per_day[(d, "b")] == 5 for d in days)
    assert all(per_day[(d, None)] == 16 for d in days)


def test_a_new_seller_catches_up_for_one_window_not_for_all_history() -> None:
    config = routing("""
window: 7d
rules:
  - {name: rr, kind: round_robin}
""")
    ledger = MemoryLedger()
    for day in range(1, 181):  # half a year of history: two a day each
        for who in ("a", "b", "a", "b"):
            ledger.record(who, NOW - timedelta(days=day, hours=-1))
    router, picks = OwnerRouter(config), []
    for i in range(30):
        now = NOW + timedelta(minutes=i)
        result = router.assign(lead(person_id=i), SELLERS, ledger, now)
        ledger.record_assignment(result, now)
        picks.append(result.owner_id)
    # Inside the 7-day window a and b had 14 each: c takes the next 14 and then all three share,
    # instead of c receiving the next 360 leads to match a and b's half year.
    assert picks[:14] == ["c"] * 14
    assert "".join(picks[14:]) == "abc" * 5 + "a"
