"""Render the vendor-neutral world as the seller's Pipedrive account: the sales side's view of it.

Pipedrive holds an overlapping subset of the world: the people a seller has worked (in a deal or with
a sales activity), their organizations, plus a few people only sales knows (met at events, never in
marketing's CRM). E-mails and websites are typed by hand here, so they differ from the marketing
rendering in case, whitespace and ``www.``; the exact overlap is kept so tests can check identity
resolution. Everything is in API v2's shapes: RFC 3339 times, custom fields under 40-hex keys with
option ids, and Pipedrive's own vocabulary (activity types, won/lost deal statuses, open stages only).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from crmbridge.model import ActivityKind, LifecycleStage
from crmbridge.sandbox.world import COUNTRY_NAMES, TECHNOLOGIES, TITLES, World

USER_ID_BASE = 12_000_000
DAY_MS = 86_400_000
_EPOCH_DATE = date(1970, 1, 1)

SENIORITY = {"executive": "Executive", "vp": "VP", "director": "Director", "manager": "Manager",
             "senior": "Senior", "entry": "Entry level", "intern": "Intern", "student": "Student"}
DEPARTMENT = {"sales": "Sales", "marketing": "Marketing", "it": "IT", "engineering": "Engineering",
              "finance": "Finance", "operations": "Operations", "hr": "HR", "executive": "Management",
              "education": "Education", "other": "Other"}
BANT_BUDGET = {"approved": "Approved", "planned": "Planned", "none": "No budget"}
BANT_AUTHORITY = {"decision_maker": "Decision maker", "influencer": "Influencer", "none": "No authority"}
BANT_NEED = {"confirmed": "Confirmed", "exploring": "Exploring", "none": "No need"}
BANT_TIMELINE = {"this_quarter": "This quarter", "this_year": "This year", "later": "Later",
                 "none": "No timeline"}
PROJECT_STATUS = {"current": "Current project", "researching": "Researching", "not_relevant": "Not relevant"}
LIFECYCLE = {LifecycleStage.SUBSCRIBER: "Subscriber", LifecycleStage.LEAD: "Lead", LifecycleStage.MQL: "MQL",
             LifecycleStage.SQL: "SQL", LifecycleStage.OPPORTUNITY: "Opportunity",
             LifecycleStage.CUSTOMER: "Customer"}
INDUSTRY = {"software": "Software", "it_services": "IT services", "financial_services": "Financial services",
            "banking": "Banking", "insurance": "Insurance", "healthcare": "Healthcare", "retail": "Retail",
            "manufacturing": "Manufacturing", "education": "Education", "marketing": "Marketing & advertising",
            "logistics": "Logistics", "telecom": "Telecommunications", "government": "Government",
            "nonprofit": "Non-profit", "other": "Other"}
TIER = {"tier_1": "Tier 1", "tier_2": "Tier 2", "tier_3": "Tier 3"}
TECHNOLOGY = {t: {"aws": "AWS", "gcp": "GCP", "sap": "SAP", "zoho-crm": "Zoho CRM", "dynamics-365": "Dynamics 365",
                  "wordpress": "WordPress"}.get(t, "-".join(w.capitalize() for w in t.split("-")))
              for t in TECHNOLOGIES}
LEAD_SOURCES = ("Inbound", "Outbound", "Referral", "Event", "Partner")
LOST_REASONS = ("Price", "No budget", "Went with a competitor", "No decision", "Timing")

# (object, label, field type, options): the account's custom fields.
CUSTOM_FIELDS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("person", "Seniority", "enum", tuple(SENIORITY.values())),
    ("person", "Department", "enum", tuple(DEPARTMENT.values())),
    ("person", "Lifecycle stage", "enum", tuple(LIFECYCLE.values())),
    ("person", "BANT budget", "enum", tuple(BANT_BUDGET.values())),
    ("person", "BANT authority", "enum", tuple(BANT_AUTHORITY.values())),
    ("person", "BANT need", "enum", tuple(BANT_NEED.values())),
    ("person", "BANT timeline", "enum", tuple(BANT_TIMELINE.values())),
    ("person", "Project status", "enum", tuple(PROJECT_STATUS.values())),
    ("organization", "Website", "varchar", ()),
    ("organization", "Industry", "enum", tuple(INDUSTRY.values())),
    ("organization", "Employees", "double", ()),
    ("organization", "Annual revenue", "monetary", ()),
    ("organization", "Tier", "enum", tuple(TIER.values())),
    ("organization", "Technologies", "set", tuple(TECHNOLOGY.values())),
    ("organization", "Renewal date", "date", ()),
    ("deal", "Lead source", "enum", LEAD_SOURCES),
)
# Built-in fields the v1 ``*Fields`` endpoints list beside the custom ones: (key, label, type).
STANDARD_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "person": (("name", "Name", "varchar"), ("first_name", "First name", "varchar"),
               ("last_name", "Last name", "varchar"), ("email", "Email", "varchar"), ("phone", "Phone", "phone"),
               ("org_id", "Organization", "org"), ("owner_id", "Owner", "user"),
               ("job_title", "Job title", "varchar"), ("add_time", "Person created", "date"),
               ("update_time", "Update time", "date")),
    "organization": (("name", "Name", "varchar"), ("owner_id", "Owner", "user"), ("address", "Address", "address"),
                     ("add_time", "Organization created", "date"), ("update_time", "Update time", "date")),
    "deal": (("title", "Title", "varchar"), ("value", "Value", "monetary"), ("status", "Status", "status"),
             ("pipeline_id", "Pipeline", "double"), ("stage_id", "Stage", "stage"),
             ("person_id", "Contact person", "people"), ("org_id", "Organization", "org"),
             ("user_id", "Owner", "user"), ("expected_close_date", "Expected close date", "date"),
             ("add_time", "Deal created", "date"), ("update_time", "Update time", "date")),
}
FIELD_ENDPOINTS = {"person": "personFields", "organization": "organizationFields", "deal": "dealFields"}


@cache
def _day(days: int) -> str:
    return (_EPOCH_DATE + timedelta(days=days)).isoformat() + "T"


def iso(ms: int | float) -> str:
    """RFC 3339 in UTC with second precision (strftime is too slow for 100,000s of records)."""
    days, rest = divmod(int(ms // 1000), 86_400)
    hours, rest = divmod(rest, 3600)
    return f"{_day(days)}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}Z"


def field_key(seed: int, obj: str, label: str) -> str:
    """A custom field's 40-hex key: random-looking, as Pipedrive's are, but fixed by the seed."""
    return hashlib.sha1(f"pipedrive-field:{seed}:{obj}:{label}".encode()).hexdigest()


def _mix(index: int, salt: int) -> int:
    return ((index + 1) * 2_654_435_761 + salt * 40_503) % 1_000_003


def messy_email(email: str, index: int) -> str:
    """The address as a seller typed it: case and stray whitespace vary, the address does not."""
    local, _, domain = email.partition("@")
    variant = _mix(index, 1) % 8
    if variant == 0:
        return f"{local}@{domain.upper()}"
    if variant == 1:
        return f"{local.title()}@{domain}"
    if variant == 2:
        return f" {email} "
    if variant == 3:
        return email.upper()
    return email


def messy_website(domain: str, index: int) -> str:
    variant = _mix(index, 2) % 6
    return (f"https://www.{domain}", f"www.{domain}", f"http://{domain.upper()}/", domain,
            f"https://www.{domain}/about", f"WWW.{domain.capitalize()}")[variant]


@dataclass
class FieldCatalogs:
    """The v1 ``*Fields`` data of the account, and lookups from labels to keys and option ids."""

    seed: int
    fields: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # object -> v1 field items
    keys: dict[tuple[str, str], str] = field(default_factory=dict)  # (object, label) -> key
    options: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)  # (object, label) -> label -> id

    @classmethod
    def build(cls, seed: int, created: str) -> FieldCatalogs:
        out = cls(seed)
        next_id, next_option = 1, 100
        for obj, standard in STANDARD_FIELDS.items():
            out.fields[obj] = []
            for key, label, kind in standard:
                out.fields[obj].append(_field_item(next_id, key, label, kind, None, created, editable=False))
                next_id += 1
        for obj, label, kind, option_labels in CUSTOM_FIELDS:
            key = field_key(seed, obj, label)
            options = None
            if option_labels:
                options = [{"id": next_option + i, "label": o} for i, o in enumerate(option_labels)]
                out.options[(obj, label)] = {o["label"]: o["id"] for o in options}
                next_option += len(option_labels)
            out.keys[(obj, label)] = key
            out.fields[obj].append(_field_item(next_id, key, label, kind, options, created, editable=True))
            next_id += 1
        return out

    def add(self, obj: str, label: str, kind: str, option_labels: list[str], created: str) -> dict[str, Any]:
        """A field added through ``POST /v1/*Fields``."""
        next_id = 1 + max(f["id"] for items in self.fields.values() for f in items)
        next_option = 1 + max([o for opts in self.options.values() for o in opts.values()] or [99])
        key = field_key(self.seed, obj, label + f"#{next_id}")
        options = [{"id": next_option + i, "label": o} for i, o in enumerate(option_labels)] or None
        if options:
            self.options[(obj, label)] = {o["label"]: o["id"] for o in options}
        self.keys[(obj, label)] = key
        item = _field_item(next_id, key, label, kind, options, created, editable=True)
        self.fields[obj].append(item)
        return item

    def key(self, obj: str, label: str) -> str:
        return self.keys[(obj, label)]

    def option(self, obj: str, label: str, value: str | None) -> int | None:
        return None if value is None else self.options[(obj, label)][value]


def _field_item(fid: int, key: str, label: str, kind: str, options: list[dict[str, Any]] | None, created: str,
                *, editable: bool) -> dict[str, Any]:
    return {"id": fid, "key": key, "name": label, "order_nr": fid, "field_type": kind, "add_time": created,
            "update_time": created, "last_updated_by_user_id": USER_ID_BASE + 1,
            "created_by_user_id": USER_ID_BASE + 1, "active_flag": True, "edit_flag": editable,
            "index_visible_flag": True, "details_visible_flag": True, "add_visible_flag": True,
            "important_flag": False, "bulk_edit_allowed": True, "searchable_flag": kind in ("varchar", "phone"),
            "filtering_allowed": True, "sortable_flag": True, "mandatory_flag": False, "options": options,
            "options_deleted": [], "is_subfield": False}


@dataclass
class Rendering:
    """The account as first seeded: records per object type, and which of them the world shares."""

    users: list[dict[str, Any]]
    pipelines: list[dict[str, Any]]
    stages: list[dict[str, Any]]
    organizations: list[dict[str, Any]]
    persons: list[dict[str, Any]]
    deals: list[dict[str, Any]]
    activities: list[dict[str, Any]]
    leads: list[dict[str, Any]]
    catalogs: FieldCatalogs
    person_world: dict[int, int]  # Pipedrive person id -> world person index (the overlap)
    organization_world: dict[int, int]  # Pipedrive organization id -> world company index
    pipedrive_only_persons: list[int]


class _Renderer:
    def __init__(self, world: World) -> None:
        self.world = world
        self.seed = world.seed
        self.anchor_ms = world.anchor_ms
        self.epoch = iso(self.anchor_ms - 1500 * DAY_MS)
        self.catalogs = FieldCatalogs.build(self.seed, self.epoch)
        self.active_users = [o.index for o in world.owners if o.active]

    def user_id(self, owner_index: int, fallback: int) -> int:
        if owner_index < 0:
            owner_index = self.active_users[_mix(fallback, 3) % len(self.active_users)]
        return USER_ID_BASE + owner_index + 1

    def run(self) -> Rendering:
        w = self.world
        acts = [a for a in w.activities if a.kind in _ACTIVITY_KINDS]
        people_in = sorted({p for d in w.deals for p in d.people} | {a.person for a in acts if a.person >= 0})
        companies_in = sorted({d.company for d in w.deals} | {a.company for a in acts if a.company >= 0}
                              | {w.people[p].company for p in people_in if w.people[p].company >= 0})
        org_ids = {c: i + 1 for i, c in enumerate(companies_in)}
        person_ids = {p: i + 1 for i, p in enumerate(people_in)}
        pipelines, stages, stage_ids = self.pipelines()
        organizations = [self.organization(w.companies[c], org_ids[c]) for c in companies_in]
        persons = [self.person(w.people[p], person_ids[p], org_ids.get(w.people[p].company)) for p in people_in]
        only = self.pipedrive_only(len(persons), organizations)
        persons.extend(only)
        deals = [self.deal(d, i + 1, person_ids, org_ids, stage_ids) for i, d in enumerate(w.deals)]
        deal_ids = {d.index: i + 1 for i, d in enumerate(w.deals)}
        activities = [self.activity(a, i + 1, person_ids, org_ids, deal_ids) for i, a in enumerate(acts)]
        leads = self.leads(people_in, person_ids, org_ids, {p for d in w.deals for p in d.people})
        return Rendering(self.users(), pipelines, stages, organizations, persons, deals, activities, leads,
                         self.catalogs, {v: k for k, v in person_ids.items()}, {v: k for k, v in org_ids.items()},
                         [p["id"] for p in only])

    # -- users and pipelines -------------------------------------------------------------------

    def users(self) -> list[dict[str, Any]]:
        out = []
        for o in self.world.owners:
            offset = datetime.fromtimestamp(self.anchor_ms / 1000, UTC).astimezone(_zone(o.timezone)).strftime("%z")
            out.append({
                "id": USER_ID_BASE + o.index + 1, "name": f"{o.first_name} {o.last_name}", "default_currency": "EUR",
                "locale": "en_US", "lang": 1, "email": o.email, "phone": None, "activated": o.active,
                "last_login": iso(self.anchor_ms - (o.index + 1) * 3_600_000).replace("T", " ").rstrip("Z"),
                "created": iso(o.created_ms).replace("T", " ").rstrip("Z"), "modified": None,
                "has_created_company": o.index == 0,
                "access": [{"app": "sales", "admin": o.index == 0, "permission_set_id": "sales-default"}],
                "active_flag": o.active, "timezone_name": o.timezone, "timezone_offset": f"{offset[:3]}:{offset[3:]}",
                "role_id": 1, "icon_url": None, "is_you": o.index == 0, "is_deleted": False,
            })
        return out

    def pipelines(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[tuple[int, int], int]]:
        """Pipedrive stages are all open (a deal is won or lost by its status): closed ones are left out."""
        pipelines, stages, stage_ids = [], [], {}
        for p in self.world.pipelines:
            pipelines.append({"id": p.index + 1, "name": p.label, "order_nr": p.index, "is_selected": p.index == 0,
                              "is_deleted": False, "is_deal_probability_enabled": True, "add_time": self.epoch,
                              "update_time": self.epoch})
            order = 0
            for si, s in enumerate(p.stages):
                if s.closed:
                    continue
                sid = len(stages) + 1
                stage_ids[(p.index, si)] = sid
                stages.append({"id": sid, "order_nr": order, "name": s.label, "is_deleted": False,
                               "deal_probability": round(s.probability * 100), "pipeline_id": p.index + 1,
                               "is_deal_rot_enabled": False, "days_to_rotten": None, "add_time": self.epoch,
                               "update_time": self.epoch})
                order += 1
        return pipelines, stages, stage_ids

    # -- organizations and persons ---------------------------------------------------------------

    def organization(self, c: Any, oid: int) -> dict[str, Any]:
        cat = self.catalogs
        currency = "EUR" if c.region == "EMEA" and c.country != "GB" else "GBP" if c.country == "GB" else "USD"
        country = COUNTRY_NAMES[c.country]
        custom = {
            cat.key("organization", "Website"): messy_website(c.domain, c.index),
            cat.key("organization", "Industry"): cat.option("organization", "Industry", INDUSTRY[c.industry]),
            cat.key("organization", "Employees"): c.employees,
            cat.key("organization", "Annual revenue"): {"value": c.annual_revenue, "currency": currency},
            cat.key("organization", "Tier"): cat.option("organization", "Tier", TIER.get(c.tier or "")),
            cat.key("organization", "Technologies"): [cat.option("organization", "Technologies", TECHNOLOGY[t])
                                                      for t in c.technologies] or None,
            cat.key("organization", "Renewal date"): c.renewal_date.isoformat() if c.renewal_date else None,
        }
        return {"id": oid, "name": c.name, "owner_id": self.user_id(c.owner, c.index), "add_time": iso(c.created_ms),
                "update_time": iso(c.updated_ms), "is_deleted": False, "visible_to": 3,
                "address": {"value": f"{c.city}, {country}", "country": country, "admin_area_level_1": c.state,
                            "admin_area_level_2": None, "locality": c.city, "sublocality": None, "route": None,
                            "street_number": None, "postal_code": None},
                "label_ids": [], "custom_fields": custom}

    def person(self, p: Any, pid: int, org_id: int | None) -> dict[str, Any]:
        cat = self.catalogs

        def pick(label: str, table: dict[str, str], value: str | None) -> int | None:
            return cat.option("person", label, table.get(value or ""))

        custom = {
            cat.key("person", "Seniority"): pick("Seniority", SENIORITY, p.seniority),
            cat.key("person", "Department"): pick("Department", DEPARTMENT, p.department),
            cat.key("person", "Lifecycle stage"): cat.option("person", "Lifecycle stage", LIFECYCLE.get(p.lifecycle)),
            cat.key("person", "BANT budget"): pick("BANT budget", BANT_BUDGET, p.bant_budget),
            cat.key("person", "BANT authority"): pick("BANT authority", BANT_AUTHORITY, p.bant_authority),
            cat.key("person", "BANT need"): pick("BANT need", BANT_NEED, p.bant_need),
            cat.key("person", "BANT timeline"): pick("BANT timeline", BANT_TIMELINE, p.bant_timeline),
            cat.key("person", "Project status"): pick("Project status", PROJECT_STATUS, p.project_status),
        }
        company = self.world.companies[p.company] if p.company >= 0 else None
        owner = p.owner if p.owner >= 0 else (company.owner if company is not None else -1)
        country = COUNTRY_NAMES[p.country]
        return {
            "id": pid, "name": f"{p.first_name} {p.last_name}", "first_name": p.first_name, "last_name": p.last_name,
            "owner_id": self.user_id(owner, p.index), "org_id": org_id, "add_time": iso(p.created_ms),
            "update_time": iso(p.updated_ms),
            "emails": [{"value": messy_email(p.email, p.index), "primary": True, "label": "work"}],
            "phones": [{"value": p.phone, "primary": True, "label": "work"}] if p.phone else [],
            "is_deleted": False, "visible_to": 3, "label_ids": [], "picture_id": None,
            "postal_address": {"value": f"{p.city}, {country}", "country": country, "admin_area_level_1": None,
                               "admin_area_level_2": None, "locality": p.city, "sublocality": None, "route": None,
                               "street_number": None, "postal_code": None},
            "notes": None, "im": [], "birthday": None, "job_title": p.title, "custom_fields": custom,
        }

    def pipedrive_only(self, first_id: int, organizations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """People only sales knows: business cards from events, referrals; never in marketing's CRM."""
        rng = random.Random(f"pipedrive-only:{self.seed}:{self.world.size}")
        count = max(1, first_id // 20)
        firsts = ("Alex", "Jordan", "Taylor", "Morgan", "Casey", "Robin", "Kim", "Sasha", "Nikola", "Andrea")
        lasts = ("Novak", "Berg", "Lindholm", "Moreau", "Costa", "Keller", "Hansen", "Ivanova", "Rossi", "Duarte")
        title_pool = [t for t in TITLES if t[1] in ("executive", "vp", "director", "manager")]
        out = []
        for i in range(count):
            org = organizations[rng.randrange(len(organizations))] if organizations else None
            first, last = rng.choice(firsts), rng.choice(lasts)
            website = org["custom_fields"][self.catalogs.key("organization", "Website")] if org else ""
            domain = website.lower().split("//")[-1].removeprefix("www.").split("/")[0] if org else "gmail.com"
            title, seniority, department, _ = rng.choice(title_pool)
            created = self.anchor_ms - rng.randint(2, 400) * DAY_MS
            p = _Stub(first, last, f"{first.lower()}.{last.lower()}{i}@{domain}", title, seniority, department)
            record = {
                "id": first_id + i + 1, "name": f"{first} {last}", "first_name": first, "last_name": last,
                "owner_id": org["owner_id"] if org else self.user_id(-1, i), "org_id": org["id"] if org else None,
                "add_time": iso(created), "update_time": iso(created + rng.randint(0, DAY_MS)),
                "emails": [{"value": messy_email(p.email, i), "primary": True, "label": "work"}], "phones": [],
                "is_deleted": False, "visible_to": 3, "label_ids": [], "picture_id": None,
                "postal_address": None, "notes": "Met at an industry event.", "im": [], "birthday": None,
                "job_title": title, "custom_fields": {
                    self.catalogs.key("person", "Seniority"): self.catalogs.option("person", "Seniority",
                                                                                  SENIORITY[seniority]),
                    self.catalogs.key("person", "Department"): self.catalogs.option("person", "Department",
                                                                                   DEPARTMENT[department]),
                },
            }
            out.append(record)
        return out

    # -- deals, activities, leads ---------------------------------------------------------------

    def deal(self, d: Any, did: int, person_ids: dict[int, int], org_ids: dict[int, int],
             stage_ids: dict[tuple[int, int], int]) -> dict[str, Any]:
        pipeline = self.world.pipelines[d.pipeline]
        stage = pipeline.stages[d.stage]
        status = "won" if stage.won else "lost" if stage.closed else "open"
        open_index = d.stage if not stage.closed else max(i for i, s in enumerate(pipeline.stages) if not s.closed)
        closed_at = iso(int(datetime(d.close_date.year, d.close_date.month, d.close_date.day, 15,
                                     tzinfo=UTC).timestamp() * 1000)) if stage.closed else None
        person = person_ids.get(d.people[0]) if d.people else None
        cat = self.catalogs
        return {
            "id": did, "title": d.name, "owner_id": self.user_id(d.owner, d.index), "person_id": person,
            "org_id": org_ids.get(d.company), "pipeline_id": pipeline.index + 1,
            "stage_id": stage_ids[(pipeline.index, open_index)], "value": float(d.amount), "currency": d.currency,
            "add_time": iso(d.created_ms), "update_time": iso(d.updated_ms), "stage_change_time": iso(d.updated_ms),
            "is_deleted": False, "is_archived": False, "status": status, "probability": None,
            "lost_reason": LOST_REASONS[_mix(d.index, 4) % len(LOST_REASONS)] if status == "lost" else None,
            "visible_to": 3, "close_time": closed_at, "won_time": closed_at if status == "won" else None,
            "lost_time": closed_at if status == "lost" else None,
            "expected_close_date": d.close_date.isoformat(), "label_ids": [], "origin": "API", "origin_id": None,
            "channel": None, "channel_id": None, "arr": None, "mrr": None, "acv": None,
            "custom_fields": {cat.key("deal", "Lead source"): cat.option(
                "deal", "Lead source", LEAD_SOURCES[_mix(d.index, 5) % len(LEAD_SOURCES)])},
        }

    def activity(self, a: Any, aid: int, person_ids: dict[int, int], org_ids: dict[int, int],
                 deal_ids: dict[int, int]) -> dict[str, Any]:
        kind, done, done_ms = _type_and_done(a)
        at = iso(a.at_ms)
        minutes = a.duration_ms // 60_000
        person = person_ids.get(a.person)
        return {
            "id": aid, "subject": a.subject, "type": kind, "owner_id": self.user_id(a.owner, a.index),
            "creator_user_id": self.user_id(a.owner, a.index), "is_deleted": False,
            "add_time": iso(a.created_ms), "update_time": iso(max(a.updated_ms, a.created_ms)),
            "deal_id": deal_ids.get(a.deal), "lead_id": None, "person_id": person, "org_id": org_ids.get(a.company),
            "project_id": None, "due_date": at[:10], "due_time": at[11:16],
            "duration": f"{minutes // 60:02d}:{minutes % 60:02d}" if minutes else "",
            "busy": kind in ("meeting", "lunch"),
            "done": done, "marked_as_done_time": iso(done_ms) if done_ms else None, "location": None,
            "participants": [{"person_id": person, "primary": True}] if person else [], "attendees": None,
            "conference_meeting_client": None, "conference_meeting_url": None, "conference_meeting_id": None,
            "public_description": "", "priority": None, "note": a.body or None,
        }

    def leads(self, people_in: list[int], person_ids: dict[int, int], org_ids: dict[int, int],
              in_deals: set[int]) -> list[dict[str, Any]]:
        """Sales-qualified people without a deal yet sit in Pipedrive's Leads inbox."""
        out = []
        for p in people_in:
            person = self.world.people[p]
            if person.lifecycle is not LifecycleStage.SQL or p in in_deals:
                continue
            company = self.world.companies[person.company] if person.company >= 0 else None
            created = iso(person.updated_ms)
            out.append({
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pipedrive-lead:{self.seed}:{p}")),
                "title": f"{person.first_name} {person.last_name}" + (f" - {company.name}" if company else ""),
                "owner_id": self.user_id(person.owner, p), "creator_id": self.user_id(person.owner, p),
                "label_ids": [], "person_id": person_ids[p], "organization_id": org_ids.get(person.company),
                "source_name": "Web forms", "origin": "WebForms", "origin_id": None, "channel": None,
                "channel_id": None, "is_archived": False, "was_seen": bool(_mix(p, 6) % 2), "value": None,
                "expected_close_date": None, "next_activity_id": None, "add_time": created, "update_time": created,
                "visible_to": "3", "cc_email": f"lumen+{p}@pipedrivemail.com",
            })
        return out


@dataclass(frozen=True)
class _Stub:
    first_name: str
    last_name: str
    email: str
    title: str
    seniority: str
    department: str


_ACTIVITY_KINDS = {ActivityKind.CALL, ActivityKind.EMAIL_SENT, ActivityKind.MEETING, ActivityKind.TASK}


def _type_and_done(a: Any) -> tuple[str, bool, int | None]:
    """Pipedrive's activity type, done flag and marked-as-done instant for one world sales activity."""
    if a.kind is ActivityKind.CALL:
        return "call", True, a.at_ms + a.duration_ms
    if a.kind is ActivityKind.EMAIL_SENT:
        return "email", True, a.at_ms
    if a.kind is ActivityKind.MEETING:
        kind = "lunch" if _mix(a.index, 7) % 12 == 0 else "meeting"
        done = a.outcome in ("completed", "no_show")
        return kind, done, (a.at_ms + a.duration_ms) if done else None
    kind = "deadline" if a.priority == "high" else "task"
    done = a.status == "completed"
    return kind, done, a.completed_ms if done else None


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def render(world: World) -> Rendering:
    return _Renderer(world).run()
