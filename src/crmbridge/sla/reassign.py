"""Reassignment by the routing rules: the next owner of a hand-off whose SLA ran out.

The rule chain decides as it did at hand-off, with the owners who already had the lead left out and
the account-owner rule set aside (the account's owner is who let it lapse, or is not the one to ask);
availability rules apply, so a seller who is off today or over their cap is passed over.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from crmbridge.model import Company, EntityType, Owner, Person
from crmbridge.routing import Lead, OwnerRouter, Seller
from crmbridge.sla.engine import NewOwner
from crmbridge.store.handoffs import WritebackLedger
from crmbridge.store.store import Store
from crmbridge.writeback.handoff import StoreLedger


class RoutingReassigner:
    def __init__(self, store: Store, router: OwnerRouter) -> None:
        self.store, self.router = store, router
        self.counts = StoreLedger(WritebackLedger(store))
        self._sellers: dict[str, list[Seller]] = {}

    def sellers(self, target: str) -> list[Seller]:
        if target not in self._sellers:
            self._sellers[target] = [Seller.from_owner(o) for o in self.store.records.iter(EntityType.OWNER, target)
                                     if isinstance(o, Owner)]
        return self._sellers[target]

    def __call__(self, clock: Mapping[str, Any], exclude: set[str], now: datetime) -> NewOwner | None:
        sellers = [s for s in self.sellers(clock["target"]) if s.id not in exclude]
        if not sellers:
            return None
        assignment = self.router.assign(self._lead(clock), sellers, self.counts, now)
        if assignment.owner_id is None or assignment.owner_id in exclude:
            return None
        seller = next((s for s in sellers if s.id == assignment.owner_id), None)
        self.counts.record(assignment.owner_id, now)
        return NewOwner(assignment.owner_id, seller.label if seller else assignment.owner_id,
                        seller.email if seller else None, f"{assignment.rule}: {assignment.reason}")

    def _lead(self, clock: Mapping[str, Any]) -> Lead:
        person_id = int(clock["person_id"])
        people = self.store.identities.members(EntityType.PERSON, [person_id]).get(person_id) or []
        person = next((p for p in people if isinstance(p, Person)), None)
        company = None
        if clock.get("company_id") is not None:
            company_id = int(clock["company_id"])
            members = self.store.identities.members(EntityType.COMPANY, [company_id]).get(company_id)
            company = next((c for c in members or [] if isinstance(c, Company)), None)
        return Lead(person_id=person_id, email=person.email if person else None,
                    name=person.full_name if person else None, title=person.title if person else None,
                    country=(company.country if company else None) or (person.country if person else None),
                    region=(company.region if company else None) or (person.region if person else None),
                    company_name=company.name if company else None,
                    company_domain=company.domain if company else None,
                    industry=company.industry if company else None,
                    employees=company.employees if company else None,
                    annual_revenue=company.annual_revenue if company else None)
