"""Sellers answering hand-offs in the sandbox's HubSpot, and target accounts heating up.

The decisions (profiles, delays, outcomes, working hours, the surge's schedule) come from
``crmbridge.sandbox.sellers``; this module finds the hand-off deals in HubSpot's terms and carries the
steps out through the portal as a user of the web app (``changeSource`` ``CRM_UI``): calls, e-mails and
meetings logged with ``hs_timestamp`` at the simulated instant and associated with the deal, its
contact and company; the deal moved to the next stage, closed won or lost (``closed_lost_reason``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from crmbridge.sandbox.sellers import (
    HANDOFF_STAGE,
    DealPlan,
    HandoffDeal,
    SellerLedger,
    SellerRequest,
    Step,
    SurgeRequest,
    plan_surge,
    work_until,
)
from crmbridge.sandbox.world import EMAIL_CLICK, EMAIL_OPEN, FORM_SUBMISSION, PAGE_VIEW
from crmbridge_hubspot.sandbox.clock import iso_ms
from crmbridge_hubspot.sandbox.portal import HubSpotPortal
from crmbridge_hubspot.sandbox.render import owner_id
from crmbridge_hubspot.sandbox.schema import OBJECT_TYPES
from crmbridge_hubspot.sandbox.store import Record

WEB_APP = "CRM_UI"  # HubSpot's changeSource for edits made in the app
MEETING_MINUTES = 30
SURGE_SECTIONS = ("product", "pricing")
MIN_ACCOUNT_PEOPLE = 3


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class HubSpotSalesDesk:
    """The hand-off deals of one portal and the seller's hands on them (a ``SalesDesk``)."""

    def __init__(self, portal: HubSpotPortal) -> None:
        self.portal = portal
        self.ledger = SellerLedger()
        self.surges: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.zones = {owner_id(o.index): o.timezone for o in portal.world.owners}

    def reset(self) -> None:
        self.ledger.reset()
        self.surges.clear()

    def work(self, request: SellerRequest) -> dict[str, Any]:
        with self.portal.lock:
            return work_until(self, self.ledger, request)

    # -- SalesDesk ---------------------------------------------------------------------------------

    def _stages(self) -> dict[str, dict[str, Any]]:
        """Hand-off stage id -> its pipeline, in every pipeline that has one (matched as write-back does)."""
        wanted = HANDOFF_STAGE.strip().lower()
        return {str(s["id"]): p for p in self.portal.pipelines for s in p["stages"]
                if str(s.get("label", "")).strip().lower() == wanted and not s.get("archived")}

    def handoff_deals(self) -> Sequence[HandoffDeal]:
        stages = self._stages()
        if not stages:
            return []
        store = self.portal.store("deals")
        col = store.catalog.column
        stage, closed, owner = col("dealstage"), col("hs_is_closed"), col("hubspot_owner_id")
        emails = {o.id: o.email for o in self.portal.owners}
        out = []
        for record in sorted(store.live_records(), key=lambda r: r.id):
            if record.get(stage) in stages and record.get(closed) != "true":
                who = record.get(owner)
                out.append(HandoffDeal(str(record.id), who, emails.get(who), self.zones.get(who),
                                       datetime.fromtimestamp(record.created_ms / 1000, UTC)))
        return out

    def carry_out(self, plan: DealPlan, step: Step) -> dict[str, Any] | None:
        deals = OBJECT_TYPES["deals"]
        deal = self.portal.store("deals").live(int(plan.deal))
        if deal is None:
            return None
        catalog = self.portal.store("deals").catalog
        if deal.get(catalog.column("hs_is_closed")) == "true":
            return None
        with self.portal.acting_as(WEB_APP):
            if step.action in ("touch", "meeting"):
                return self._log(plan, deal, step)
            pipeline = next((p for p in self.portal.pipelines if p["id"] == deal.get(catalog.column("pipeline"))),
                            None)
            if pipeline is None:
                return None
            target = self._target_stage(pipeline, str(deal.get(catalog.column("dealstage"))), step)
            if target is None:
                return {"skipped": "already out of the hand-off stage" if step.action == "accept"
                        else "the pipeline has no such closed stage"}
            values = {"dealstage": target}
            if step.action != "accept":
                values["closedate"] = iso_ms(_ms(step.at))
                values["closed_won_reason" if step.action == "won" else "closed_lost_reason"] = step.reason or ""
            self.portal.update_many(deals, [(deal, values)])
        return {"stage_id": target}

    def _target_stage(self, pipeline: dict[str, Any], current: str, step: Step) -> str | None:
        stages = sorted(pipeline["stages"], key=lambda s: (int(s.get("displayOrder") or 0), str(s["id"])))
        handoff = self._stages()
        if step.action == "accept":
            if current not in handoff:
                return None
            open_ones = [s for s in stages if s["metadata"].get("isClosed") != "true"]
            at = next(i for i, s in enumerate(open_ones) if s["id"] == current)
            later = open_ones[at + 1:] or [s for s in open_ones if s["id"] != current]
            return str(later[0]["id"]) if later else None
        won = step.action == "won"
        for s in stages:
            closed, is_won = self.portal.stage_closed(s["id"])
            if closed and is_won == won:
                return str(s["id"])
        return None

    def _log(self, plan: DealPlan, deal: Record, step: Step) -> dict[str, Any]:
        at = _ms(step.at)
        contacts = self.portal.associated("deals", deal.id, "contacts")
        companies = self.portal.associated("deals", deal.id, "companies")
        name = self._name(contacts[0]) if contacts else "the lead"
        owner = {"hubspot_owner_id": plan.owner, "hs_timestamp": iso_ms(at)}
        if step.action == "meeting":
            kind, props = "meetings", {"hs_meeting_title": f"Discovery meeting with {name}",
                                       "hs_meeting_start_time": iso_ms(at),
                                       "hs_meeting_end_time": iso_ms(at + MEETING_MINUTES * 60_000),
                                       "hs_meeting_outcome": "COMPLETED"}
        elif step.channel == "call":
            kind, props = "calls", {"hs_call_title": f"Call with {name}", "hs_call_direction": "OUTBOUND",
                                    "hs_call_status": "COMPLETED", "hs_call_duration": str(7 * 60_000)}
        else:
            kind, props = "emails", {"hs_email_subject": "Your request", "hs_email_direction": "EMAIL",
                                     "hs_email_status": "SENT"}
        links = [("deals", deal.id, False)] + [("contacts", c, False) for c in contacts[:1]] + \
            [("companies", c, False) for c in companies[:1]]
        made = self.portal.create(OBJECT_TYPES[kind], {**props, **owner}, links)
        self._mark_contacted(deal, contacts[:1], at)
        return {"object_type": kind, "activity_id": str(made.id)}

    def _name(self, contact_id: int) -> str:
        record = self.portal.store("contacts").live(contact_id)
        if record is None:
            return "the lead"
        col = self.portal.store("contacts").catalog.column
        return " ".join(str(v) for v in (record.get(col("firstname")), record.get(col("lastname"))) if v) or "the lead"

    def _mark_contacted(self, deal: Record, contacts: Sequence[int], at_ms: int) -> None:
        """HubSpot's "Last Contacted" on the deal and the contact, as it keeps it when a seller logs a touch."""
        stamp = {"notes_last_contacted": iso_ms(at_ms)}
        self.portal.update_many(OBJECT_TYPES["deals"], [(deal, stamp)], allow_read_only=True)
        people = [r for r in (self.portal.store("contacts").live(c) for c in contacts) if r is not None]
        if people:
            self.portal.update_many(OBJECT_TYPES["contacts"], [(r, stamp) for r in people], allow_read_only=True)

    # -- account surge ---------------------------------------------------------------------------------

    def surge(self, request: SurgeRequest) -> dict[str, Any]:
        """A few target accounts' people view product pages, open and click e-mails and download a
        buyer's guide over the days before ``until``, more and more towards it; a repeat does nothing."""
        if request.key in self.surges:
            return {**self.surges[request.key], "repeated": True}
        with self.portal.lock:
            people = self._accounts()
            events = plan_surge(people, request)
            done = self._engage(events)
        answer = {"until": request.until.strftime("%Y-%m-%dT%H:%M:%SZ"), "days": request.days,
                  "accounts": sorted({e.account for e in events}), "events": done}
        self.surges[request.key] = answer
        return {**answer, "repeated": False}

    def _accounts(self) -> dict[str, list[str]]:
        """Live companies with several live contacts that fit (not a competitor, university or free mail)."""
        world = self.portal.world
        contacts = self.portal.store("contacts")
        by_company: dict[int, list[str]] = {}
        for record in contacts.live_records():
            if record.source < 0:
                continue
            person = world.people[record.source]
            if person.company < 0:
                continue
            company = world.companies[person.company]
            if company.is_competitor or company.is_university or \
                    not person.email.lower().endswith("@" + company.domain):
                continue
            by_company.setdefault(person.company, []).append(str(record.id))
        companies = self.portal.store("companies")
        out = {}
        for index, people in by_company.items():
            record = companies.live(OBJECT_TYPES["companies"].id_base + index + 1)
            if record is not None and len(people) >= MIN_ACCOUNT_PEOPLE:
                out[str(record.id)] = people
        return out

    def _engage(self, events: Sequence[Any]) -> dict[str, int]:
        world, store = self.portal.world, self.portal.store("contacts")
        pages = [p.index for p in world.pages if p.section in SURGE_SECTIONS]
        guides = [f.index for f in world.forms if f.kind == "buyers_guide"]
        counts = {"page_view": 0, "email_open": 0, "email_click": 0, "guide_download": 0}
        latest: dict[tuple[int, str], int] = {}
        views: dict[int, int] = {}
        for i, e in enumerate(events):
            record = store.live(int(e.person))
            if record is None:
                continue
            at = _ms(e.at)
            if e.kind == "page_view":
                self.portal.events.append(record.source, PAGE_VIEW, at, pages[i % len(pages)])
                views[record.id] = views.get(record.id, 0) + 1
            elif e.kind == "guide_download":
                self.portal.events.append(record.source, FORM_SUBMISSION, at, guides[i % len(guides)])
            else:
                self.portal.events.append(record.source, EMAIL_OPEN if e.kind == "email_open" else EMAIL_CLICK, at,
                                          i % len(world.campaigns))
            counts[e.kind] += 1
            latest[(record.id, e.kind)] = max(at, latest.get((record.id, e.kind), 0))
        self._signals(latest, views, guides)
        return counts

    def _signals(self, latest: dict[tuple[int, str], int], views: dict[int, int], guides: Sequence[int]) -> None:
        """The contact properties HubSpot keeps from web and e-mail activity, by who changed them."""
        store = self.portal.store("contacts")
        col = store.catalog.column
        guide = self.portal.world.forms[guides[0]].name
        by_source: dict[str, list[tuple[Record, dict[str, Any]]]] = {"ANALYTICS": [], "EMAIL": [], "FORM": []}
        for rid in sorted({rid for rid, _ in latest}):
            record = store.live(rid)
            if record is None:
                continue
            if (rid, "page_view") in latest:
                total = int(float(record.get(col("hs_analytics_num_page_views")) or 0)) + views.get(rid, 0)
                by_source["ANALYTICS"].append((record, {
                    "hs_analytics_last_visit_timestamp": iso_ms(latest[(rid, "page_view")]),
                    "hs_analytics_num_page_views": str(total)}))
            mail = {name: iso_ms(latest[(rid, kind)]) for kind, name in
                    (("email_open", "hs_email_last_open_date"), ("email_click", "hs_email_last_click_date"))
                    if (rid, kind) in latest}
            if mail:
                by_source["EMAIL"].append((record, mail))
            if (rid, "guide_download") in latest:
                count = int(float(record.get(col("num_conversion_events")) or 0)) + 1
                by_source["FORM"].append((record, {
                    "recent_conversion_event_name": guide, "num_conversion_events": str(count),
                    "recent_conversion_date": iso_ms(latest[(rid, "guide_download")])}))
        for source, updates in by_source.items():
            if updates:
                with self.portal.acting_as(source):
                    self.portal.update_many(OBJECT_TYPES["contacts"], updates, allow_read_only=True)
