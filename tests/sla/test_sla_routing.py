"""An owner off today in the SLA calendars (a public holiday of their region, their time off) is skipped at
assignment, and the skip says why; on a normal working day they are picked as usual."""

from __future__ import annotations

from datetime import UTC, datetime

from crmbridge.routing import Lead, MemoryLedger, OwnerRouter, RoutingConfig, Seller, SkipCause
from crmbridge.sla.config import SlaConfig

SLA = """
version: 1
default_calendar: berlin
calendars:
  berlin: {timezone: Europe/Berlin, hours: {mon-fri: "09:00-17:00"}, holidays: {country: DE, subdivision: BE}}
  ny: {timezone: America/New_York, hours: {mon-fri: "09:00-17:00"}, holidays: {country: US}}
owners:
  "1": {calendar: berlin}
  "2": {calendar: ny, time_off: [{from: 2026-03-09, to: 2026-03-13, note: ski week}]}
"""
ROUND_ROBIN = RoutingConfig.from_text("rules:\n  - {name: rr, kind: round_robin, availability: available_today}\n"
                                      "fallback: {mode: claim}\n")


def assign(now: datetime) -> tuple[str | None, list[tuple[SkipCause, str | None, str]]]:
    router = OwnerRouter(ROUND_ROBIN, days_off=SlaConfig.from_text(SLA).day_off)
    sellers = [Seller("1", "Ann", "ann@lumen.example", timezone="Europe/Berlin"),
               Seller("2", "Bo", "bo@lumen.example", timezone="America/New_York")]
    result = router.assign(Lead(person_id=1), sellers, MemoryLedger(), now)
    return result.owner_id, [(s.cause, s.seller_id, s.detail) for s in result.skipped]


def test_an_owner_on_a_public_holiday_of_their_region_is_skipped() -> None:
    # Women's Day (8 March) is a public holiday in Berlin only; in 2027 it is a Monday
    owner, skipped = assign(datetime(2027, 3, 8, 12, 0, tzinfo=UTC))
    assert owner == "2"
    assert skipped == [(SkipCause.OUT_OF_OFFICE, "1", "Ann is off today (public holiday: Women's Day)")]


def test_an_owner_on_time_off_is_skipped_and_back_afterwards() -> None:
    owner, skipped = assign(datetime(2026, 3, 10, 15, 0, tzinfo=UTC))
    assert owner == "1"
    assert (SkipCause.OUT_OF_OFFICE, "2", "Bo is off today (time off (ski week))") in skipped
    owner, _ = assign(datetime(2026, 3, 16, 15, 0, tzinfo=UTC))
    assert owner in ("1", "2")


def test_without_an_sla_calendar_routing_is_unchanged() -> None:
    router = OwnerRouter(ROUND_ROBIN)
    result = router.assign(Lead(person_id=1), [Seller("1", "Ann")], MemoryLedger(), datetime(2027, 3, 8, 12,
                                                                                             tzinfo=UTC))
    assert result.owner_id == "1" and not result.skipped
