"""A small sales world in a real store for SLA tests: two CRMs, two sellers, hand-offs made at given instants."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from crmbridge.model import Activity, ActivityKind, ActorKind, Deal, DealStatus, EntityType, Owner, Person
from crmbridge.notify.notifier import Notifier, RetryPolicy
from crmbridge.notify.webhooks import SlackWebhook
from crmbridge.sla.config import SlaConfig
from crmbridge.store import Store
from crmbridge.store.handoffs import WritebackLedger

SLA_YAML = """
version: 1
calendars:
  office: {timezone: UTC, hours: {mon-fri: "09:00-17:00"}}
teams:
  sales: {calendar: office, manager: boss@lumen.example}
owners:
  "u1": {team: sales}
  "u2": {team: sales}
touches:
  kinds: [call, email_sent, meeting]
  ignore_users: ["bot"]
policies:
  - name: first-touch
    measure: first_touch
    within: 60m
    ladder:
      remind: [75%]
      escalate: {at: 100%, to: manager}
      reassign: {after: 30m, max: 1}
"""

HANDOFF_STAGE = "7"


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def config(text: str = SLA_YAML) -> SlaConfig:
    return SlaConfig.from_text(text, name="sla.yaml")


def seed_world(store: Store, people: int = 1) -> None:
    """Sellers u1 and u2 in the sales CRM; each lead in both CRMs (one identity by e-mail)."""
    store.records.commit_page("pipedrive", "users", EntityType.OWNER, [
        Owner(source="pipedrive", source_id="u1", email="ann@lumen.example", first_name="Ann"),
        Owner(source="pipedrive", source_id="u2", email="bob@lumen.example", first_name="Bob"),
        Owner(source="pipedrive", source_id="bot", email="integration@lumen.example", first_name="Bot",
              active=False)])
    store.records.commit_page("hubspot", "contacts", EntityType.PERSON, [
        Person(source="hubspot", source_id=f"c{n}", email=f"lead{n}@acme.example", first_name=f"Lead{n}")
        for n in range(people)])
    store.records.commit_page("pipedrive", "persons", EntityType.PERSON, [
        Person(source="pipedrive", source_id=f"p{n}", email=f"lead{n}@acme.example", first_name=f"Lead{n}")
        for n in range(people)])
    store.provisioned.put("pipedrive", {"pipeline_id": "1", "stage_id": HANDOFF_STAGE, "field_keys": {}})


def hand_off(store: Store, n: int, at: datetime, owner: str = "u1") -> str:
    """Lead n handed to ``owner`` as deal d<n> in the sales CRM at ``at``."""
    person_id = store.identities.canonical_id(EntityType.PERSON, "pipedrive", f"p{n}")
    assert person_id is not None
    ledger = WritebackLedger(store, clock=lambda: ms(at))
    key = f"cb-test-{n}"
    ledger.open([{"key": key, "person_id": person_id, "company_id": None, "target": "pipedrive"}])
    email = {"u1": "ann@lumen.example", "u2": "bob@lumen.example"}[owner]
    ledger.complete(key, deal_id=f"d{n}", person_ref=f"p{n}", owner_id=owner, mode="assigned", rule="test",
                    reason="test", title=f"Lead{n} deal",
                    summary={"person": f"Lead{n}", "email": f"lead{n}@acme.example", "owner_email": email,
                             "owner_label": {"u1": "Ann", "u2": "Bob"}[owner], "score": 60,
                             "reasons": ["Contact request form (+50)"]})
    return key


def log_activity(store: Store, n: int, at: datetime, kind: ActivityKind = ActivityKind.CALL, owner: str = "u1",
                 actor: ActorKind | None = None, on_deal: bool = False, source_id: str | None = None) -> None:
    activity = Activity(source="pipedrive", source_id=source_id or f"a{n}-{ms(at)}-{kind}", kind=kind,
                        occurred_at=at, person_ids=[] if on_deal else [f"p{n}"], deal_ids=[f"d{n}"] if on_deal else [],
                        owner_id=owner, actor=actor)
    store.records.commit_page("pipedrive", "activities", EntityType.ACTIVITY, [activity])


def move_deal(store: Store, n: int, *, stage: str = HANDOFF_STAGE, status: DealStatus = DealStatus.OPEN,
              at: datetime | None = None, lost_reason: str | None = None) -> None:
    deal = Deal(source="pipedrive", source_id=f"d{n}", stage_id=stage, status=status, owner_id="u1",
                person_ids=[f"p{n}"], updated_at=at, closed_at=at if status != DealStatus.OPEN else None,
                extra={"lost_reason": lost_reason} if lost_reason else {})
    store.records.commit_page("pipedrive", "deals", EntityType.DEAL, [deal])


def slack_notifier(url: str) -> Notifier:
    return Notifier([SlackWebhook(url, timeout=5)], policy=RetryPolicy(attempts=1))


def texts(deliveries: list[tuple[dict[str, str], bytes]]) -> list[str]:
    """What each recorded Slack message says (its fallback text)."""
    return [str(orjson.loads(body).get("text", "")) for _, body in deliveries]


def clock_rows(store: Store) -> list[dict[str, Any]]:
    from crmbridge.sla.ledger import SlaLedger

    return SlaLedger(store).clocks(order="id")
