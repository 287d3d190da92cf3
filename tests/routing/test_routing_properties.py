"""Routing invariants over generated sellers, calendars, ledgers and leads."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from routing_helpers import NOW

from crmbridge.routing import Assignment, Lead, MemoryLedger, OwnerRouter, RoutingConfig, Seller

IDS = [f"u{i}" for i in range(8)]
ZONES = [None, "UTC", "America/New_York", "Asia/Tokyo", "Europe/Berlin", "Pacific/Kiritimati"]
TODAY = NOW.date()

settings_strategy = st.fixed_dictionaries({}, optional={
    "weight": st.sampled_from([0.5, 1, 2, 3]),
    "daily_cap": st.integers(1, 3),
    "timezone": st.sampled_from([z for z in ZONES if z]),
    "out_of_office": st.lists(
        st.tuples(st.integers(-3, 9), st.integers(0, 3)).map(
            lambda t: {"from": TODAY + timedelta(days=t[0]), "to": TODAY + timedelta(days=t[0] + t[1])}),
        max_size=2),
    "working_hours": st.tuples(st.integers(0, 12), st.integers(1, 12), st.sets(st.sampled_from(
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1)).map(
        lambda t: {"from": f"{t[0]:02d}:00", "to": f"{t[0] + t[1]:02d}:00", "days": sorted(t[2])}),
    "teams": st.lists(st.sampled_from(["emea", "na"]), unique=True),
})


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=6, unique=True))
    sellers = [Seller(id=i, name=f"Seller {i}", email=f"{i}@lumen.example", active=draw(st.booleans()),
                      timezone=draw(st.sampled_from(ZONES)), teams=tuple(draw(st.lists(st.sampled_from(["EMEA"])))))
               for i in ids]
    per_seller = {i: draw(settings_strategy) for i in ids if draw(st.booleans())}
    history = [(draw(st.sampled_from(ids)), draw(st.integers(0, 72 * 60))) for _ in range(draw(st.integers(0, 25)))]
    now = NOW + timedelta(minutes=draw(st.integers(0, 7 * 24 * 60)))
    lead = Lead(person_id=1, company_name="Acme", company_domain="acme.example",
                country=draw(st.sampled_from([None, "DE", "US", "JP"])),
                employees=draw(st.one_of(st.none(), st.integers(1, 20_000))),
                company_owner_id=draw(st.one_of(st.none(), st.sampled_from([*ids, "ghost"]))))
    return {"sellers": sellers, "settings": per_seller, "history": history, "now": now, "lead": lead,
            "seed": draw(st.integers(0, 2**16))}


def config_for(per_seller: dict[str, Any], *, account_owner: str, fallback: dict[str, Any]) -> RoutingConfig:
    return RoutingConfig.from_dict({
        "size_bands": {"enterprise": {"min": 1000}},
        "teams": {"emea": {}, "na": {}},
        "sellers": per_seller,
        "rules": [
            {"name": "owner", "kind": "account_owner", "availability": account_owner},
            {"name": "dach-enterprise", "kind": "segment", "when": {"country": ["DE"], "size_band": "enterprise"},
             "team": "emea"},
            {"name": "japan", "kind": "territory", "when": {"country": "JP"}, "pool": IDS[:3],
             "availability": "available_now"},
            {"name": "us", "kind": "claim", "when": {"country": "US"}, "team": "na"},
            {"name": "rr", "kind": "round_robin", "window": "2d"},
        ],
        "fallback": fallback,
    })


def ledger_for(history: list[tuple[str, int]], now: datetime) -> MemoryLedger:
    ledger = MemoryLedger()
    for who, minutes_ago in history:
        ledger.record(who, now - timedelta(minutes=minutes_ago))
    return ledger


def today_in_zone(seller: Seller, per_seller: dict[str, Any], now: datetime) -> tuple[date, datetime]:
    name = per_seller.get(seller.id, {}).get("timezone") or seller.timezone or "UTC"
    zone = ZoneInfo(name)
    local = now.astimezone(zone)
    return local.date(), datetime.combine(local.date(), time(0), tzinfo=zone)


def check_structure(result: Assignment, sellers: list[Seller]) -> None:
    ids = {s.id for s in sellers}
    active = {s.id for s in sellers if s.active}
    if result.mode == "claim":
        assert result.owner_id is None
        assert set(result.candidates) <= active
    else:
        assert result.owner_id in ids
        assert result.owner_id in active
    assert result.reason


AVAILABLE = dict(account_owner="available_today", fallback={"mode": "claim"})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_an_inactive_capped_or_out_of_office_seller_is_never_chosen(case: dict[str, Any]) -> None:
    sellers, per_seller, now = case["sellers"], case["settings"], case["now"]
    ledger = ledger_for(case["history"], now)
    result = OwnerRouter(config_for(per_seller, **AVAILABLE)).assign(case["lead"], sellers, ledger, now)
    check_structure(result, sellers)
    if result.owner_id is None:
        return
    chosen = next(s for s in sellers if s.id == result.owner_id)
    local_day, midnight = today_in_zone(chosen, per_seller, now)
    mine = per_seller.get(chosen.id, {})
    assert chosen.active
    assert ledger.count(chosen.id, midnight) < mine.get("daily_cap", 10**9)
    assert not any(off["from"] <= local_day <= off["to"] for off in mine.get("out_of_office", []))


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_with_an_owner_fallback_the_chosen_owner_is_always_an_active_seller_given(case: dict[str, Any]) -> None:
    sellers, now = case["sellers"], case["now"]
    config = config_for(case["settings"], account_owner="active", fallback={"mode": "owner", "owner": "u0"})
    result = OwnerRouter(config).assign(case["lead"], sellers, ledger_for(case["history"], now), now)
    check_structure(result, sellers)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_the_same_inputs_give_the_same_assignment_whatever_the_order_of_sellers(case: dict[str, Any]) -> None:
    sellers, now = case["sellers"], case["now"]
    router = OwnerRouter(config_for(case["settings"], **AVAILABLE))
    first = router.assign(case["lead"], sellers, ledger_for(case["history"], now), now)
    again = router.assign(case["lead"], sellers, ledger_for(case["history"], now), now)
    shuffled = list(sellers)
    random.Random(case["seed"]).shuffle(shuffled)
    reordered = router.assign(case["lead"], shuffled, ledger_for(case["history"], now), now)
    assert first == again == reordered
