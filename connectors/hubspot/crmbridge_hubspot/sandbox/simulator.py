"""Visitors acting now (``POST /_sandbox/simulate``): hand-raisers who submit "Contact us", and browsers.

A hand-raiser is someone the default scoring model (``examples/scoring/default.yaml``) should hand to
sales: a decision maker (executive, VP or head of a function: the model's SQLs need its ICP fit, and
size, region and role together reach it) at a sweet-spot company (50-1,000 employees) in a served
region, not a competitor, a university or too small to serve, reached on their business address,
reachable by e-mail, not yet sales' business (SQL, opportunity, customer) and not a recent hand-raiser. Each
submission is appended to the events API and moves the contact's conversion properties through the
portal, so the subscribed ``contact.propertyChange`` webhooks go out as they would in HubSpot.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from crmbridge.sandbox.world import DAY_MS, EMAIL_OPEN, FORM_SUBMISSION, PAGE_VIEW, Person
from crmbridge_hubspot.sandbox.clock import iso_ms
from crmbridge_hubspot.sandbox.portal import HubSpotPortal
from crmbridge_hubspot.sandbox.schema import OBJECT_TYPES
from crmbridge_hubspot.sandbox.store import Record

CONTACT_FORM = "Contact us"
MAX_PEOPLE = 10_000
# Stages scoring never touches again (sales owns them) or that mean "not a lead".
NOT_LEADS = frozenset({"salesqualifiedlead", "opportunity", "customer", "evangelist", "other"})
# The default model's competitor list, besides the world's own competitors.
MODEL_COMPETITORS = frozenset({"rival-crm.example", "leadscore-pro.example"})
SERVED_REGIONS = frozenset({"EMEA", "NA"})
SWEET_SPOT = (50, 1000)
HAND_RAISES = frozenset({"contact", "demo"})  # the forms the model's contact_request rule counts
HAND_RAISE_DAYS = 90  # ... for this long
BROWSED_SECTIONS = ("product", "pricing")
DECISION_SENIORITY = frozenset({"executive", "vp"})


def _decides(person: Person) -> bool:
    """A decision maker as the default model's personas see one: its fit points complete the ICP fit."""
    return person.seniority in DECISION_SENIORITY or "head of" in (person.title or "").lower()


def _count(value: Any) -> int:
    try:
        return int(float(value)) if value not in (None, "") else 0
    except ValueError:
        return 0


class Simulator:
    """Acts on the portal's world contacts; deterministic for a given seed and state."""

    def __init__(self, portal: HubSpotPortal) -> None:
        self.portal = portal
        self.raised: set[int] = set()  # contacts that already asked to be contacted
        self._runs = 0

    def reset(self) -> None:
        self.raised.clear()
        self._runs = 0

    def run(self, sales_ready: int = 0, activities: int = 0, seed: int | None = None) -> dict[str, Any]:
        for name, value in (("sales_ready", sales_ready), ("activities", activities)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PEOPLE:
                raise ValueError(f"{name} must be a whole number from 0 to {MAX_PEOPLE}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be a whole number")
        self._runs += 1
        rng = random.Random(f"simulate:{self.portal.world.seed}:{seed if seed is not None else self._runs}")
        with self.portal.lock:
            raised = self._raise_hands(rng, sales_ready)
            done = self._browse(rng, activities)
        return {"sales_ready": [{"id": str(r.id), "email": self._email(r)} for r in raised], "activities": done}

    # -- hand-raisers ------------------------------------------------------------------------------------

    def _email(self, record: Record) -> str:
        return str(record.get(self.portal.store("contacts").catalog.column("email")) or "")

    def candidates(self) -> list[Record]:
        """Live world contacts who fit the ICP and would be sales-ready once they raise their hand."""
        store = self.portal.store("contacts")
        col = store.catalog.column
        email, stage, optout, bounce = col("email"), col("lifecyclestage"), col("hs_email_optout"), \
            col("hs_email_hard_bounce_reason_enum")
        people = self.portal.world.people
        since = self.portal.wall_ms() - HAND_RAISE_DAYS * DAY_MS
        out = []
        for record in sorted(store.live_records(), key=lambda r: r.id):
            if record.source < 0 or record.id in self.raised or record.get(stage) in NOT_LEADS:
                continue
            if record.get(optout) == "true" or record.get(bounce):
                continue
            if self._fits(people[record.source], str(record.get(email) or "")) and \
                    not self._raised_lately(record.source, since):
                out.append(record)
        return out

    def _raised_lately(self, person: int, since_ms: int) -> bool:
        """A contact or demo request the scoring model still counts: that person is sales-ready already."""
        b, forms = self.portal.world.behaviours, self.portal.world.forms
        return any(b.kind[i] == FORM_SUBMISSION and b.at_ms[i] >= since_ms and forms[b.ref[i]].kind in HAND_RAISES
                   for i in b.of(person))

    def _fits(self, person: Person, email: str) -> bool:
        if person.company < 0 or person.department == "education" or not _decides(person):
            return False
        company = self.portal.world.companies[person.company]
        if company.is_university or company.is_competitor or company.domain in MODEL_COMPETITORS:
            return False
        business = email.rpartition("@")[2].lower() == company.domain
        return business and SWEET_SPOT[0] <= company.employees <= SWEET_SPOT[1] and company.region in SERVED_REGIONS

    def _raise_hands(self, rng: random.Random, n: int) -> list[Record]:
        if n == 0:
            return []
        pool = self.candidates()
        chosen = sorted(rng.sample(pool, min(n, len(pool))), key=lambda r: r.id)
        if not chosen:
            return []
        form = next(f for f in self.portal.world.forms if f.name == CONTACT_FORM)
        catalog = self.portal.store("contacts").catalog
        now = self.portal.wall_ms()
        updates = []
        for record in chosen:
            self.portal.events.append(record.source, FORM_SUBMISSION, now, form.index)
            count = _count(record.get(catalog.column("num_conversion_events"))) + 1
            values = {"recent_conversion_event_name": CONTACT_FORM, "recent_conversion_date": iso_ms(now),
                      "num_conversion_events": str(count)}
            if not record.get(catalog.column("first_conversion_event_name")):
                values["first_conversion_event_name"] = CONTACT_FORM
            updates.append((record, values))
            self.raised.add(record.id)
        with self.portal.acting_as("FORM"):
            self.portal.update_many(OBJECT_TYPES["contacts"], updates, allow_read_only=True)
        return chosen

    # -- browsers ------------------------------------------------------------------------------------------

    def _browse(self, rng: random.Random, n: int) -> int:
        if n == 0:
            return 0
        store = self.portal.store("contacts")
        pool = sorted((r for r in store.live_records() if r.source >= 0), key=lambda r: r.id)
        visitors = rng.sample(pool, min(n, len(pool)))
        world, catalog = self.portal.world, store.catalog
        pages = [p.index for p in world.pages if p.section in BROWSED_SECTIONS]
        now = self.portal.wall_ms()
        views: list[tuple[Record, dict[str, Any]]] = []
        opens: list[tuple[Record, dict[str, Any]]] = []
        for record in visitors:
            if rng.random() < 0.5:
                self.portal.events.append(record.source, PAGE_VIEW, now, rng.choice(pages))
                count = _count(record.get(catalog.column("hs_analytics_num_page_views"))) + 1
                views.append((record, {"hs_analytics_last_visit_timestamp": iso_ms(now),
                                       "hs_analytics_num_page_views": str(count)}))
            else:
                self.portal.events.append(record.source, EMAIL_OPEN, now, rng.randrange(len(world.campaigns)))
                opens.append((record, {"hs_email_last_open_date": iso_ms(now)}))
        self._write("ANALYTICS", views)
        self._write("EMAIL", opens)
        return len(visitors)

    def _write(self, source: str, updates: Sequence[tuple[Record, dict[str, Any]]]) -> None:
        if updates:
            with self.portal.acting_as(source):
                self.portal.update_many(OBJECT_TYPES["contacts"], updates, allow_read_only=True)
