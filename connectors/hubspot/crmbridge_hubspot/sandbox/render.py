"""Render the vendor-neutral world in HubSpot's vocabulary: ids, property names and enumeration values.

Canonical values become HubSpot's (``software`` -> ``COMPUTER_SOFTWARE``, ``DE`` -> ``Germany``,
``mql`` -> ``marketingqualifiedlead``), numbers and booleans become strings, instants ISO text with
milliseconds and date-only values ``YYYY-MM-DD``. A world entity's index fixes its HubSpot id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from crmbridge.model import ActivityKind, LifecycleStage
from crmbridge.sandbox.world import COUNTRIES, COUNTRY_NAMES, Company, SalesActivity, World
from crmbridge_hubspot.sandbox.clock import iso_ms
from crmbridge_hubspot.sandbox.schema import ENGAGEMENT_TYPES, OBJECT_TYPES
from crmbridge_hubspot.sandbox.store import Record

OWNER_ID_BASE = 70_000_000
USER_ID_BASE = 9_000_000
TEAM_ID_BASE = 400_000
PIPELINE_ID_BASE = 800_000_000

INDUSTRY = {
    "software": "COMPUTER_SOFTWARE", "it_services": "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "financial_services": "FINANCIAL_SERVICES", "banking": "BANKING", "insurance": "INSURANCE",
    "healthcare": "HOSPITAL_HEALTH_CARE", "retail": "RETAIL", "manufacturing": "MACHINERY",
    "education": "HIGHER_EDUCATION", "marketing": "MARKETING_AND_ADVERTISING",
    "logistics": "LOGISTICS_AND_SUPPLY_CHAIN", "telecom": "TELECOMMUNICATIONS",
    "government": "GOVERNMENT_ADMINISTRATION", "nonprofit": "NON_PROFIT_ORGANIZATION_MANAGEMENT",
    "other": None,  # HubSpot has no "other" industry: such companies simply have none
}
LIFECYCLE = {
    LifecycleStage.SUBSCRIBER: "subscriber", LifecycleStage.LEAD: "lead", LifecycleStage.MQL: "marketingqualifiedlead",
    LifecycleStage.SQL: "salesqualifiedlead", LifecycleStage.OPPORTUNITY: "opportunity",
    LifecycleStage.CUSTOMER: "customer", LifecycleStage.EVANGELIST: "evangelist", LifecycleStage.OTHER: "other",
}
SENIORITY = {"executive": "executive", "vp": "vp", "director": "director", "manager": "manager", "senior": "senior",
             "entry": "employee", "intern": "intern", "student": "student"}
ROLE = {"sales": "sales", "marketing": "marketing", "it": "information_technology", "engineering": "engineering",
        "finance": "finance", "operations": "operations", "hr": "human_resources", "executive": "management",
        "education": "education", "other": "other"}
DEFAULT_PIPELINE_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
                           "decisionmakerboughtin", "contractsent", "closedwon", "closedlost")
ENGAGEMENT_TYPE = {
    ActivityKind.CALL: "calls", ActivityKind.EMAIL_SENT: "emails", ActivityKind.EMAIL_REPLY: "emails",
    ActivityKind.MEETING: "meetings", ActivityKind.NOTE: "notes", ActivityKind.TASK: "tasks",
}


def record_id(type_name: str, index: int) -> int:
    return OBJECT_TYPES[type_name].id_base + index + 1


def owner_id(index: int) -> str | None:
    return str(OWNER_ID_BASE + index + 1) if index >= 0 else None


def pipeline_id(index: int) -> str:
    return "default" if index == 0 else str(PIPELINE_ID_BASE + index)


def stage_id(pipeline: int, stage: int) -> str:
    if pipeline == 0 and stage < len(DEFAULT_PIPELINE_STAGES):
        return DEFAULT_PIPELINE_STAGES[stage]
    return str(PIPELINE_ID_BASE + pipeline * 100 + stage + 1)


def _bool(value: bool) -> str:
    return "true" if value else "false"


_STATES = {(c.code, city): state for c in COUNTRIES for city, state in c.cities}


def render_contacts(world: World) -> list[Record]:
    """Values are tuples in ``SEEDED_COLUMNS["contacts"]`` order (the catalog's first columns)."""
    states = _STATES
    companies = world.companies
    out = []
    base = OBJECT_TYPES["contacts"].id_base + 1
    company_base = OBJECT_TYPES["companies"].id_base + 1
    for p in world.people:
        company: Company | None = companies[p.company] if p.company >= 0 else None
        rid = base + p.index
        domain = p.email.rpartition("@")[2]
        on_company_domain = company is not None and domain == company.domain
        status = p.lead_status.upper() if p.lead_status else None
        values = (
            p.email, p.first_name, p.last_name, p.title, SENIORITY[p.seniority], ROLE[p.department], p.phone,
            COUNTRY_NAMES[p.country], p.city, states.get((p.country, p.city)), company.name if company else None,
            f"https://www.{company.domain}" if on_company_domain and company else None, LIFECYCLE[p.lifecycle],
            status, owner_id(p.owner), iso_ms(p.created_ms), iso_ms(p.updated_ms), str(rid), _bool(p.unsubscribed),
            "BAD_MAILBOX" if p.bounced else None, str(company_base + company.index) if company else None, domain,
            p.bant_budget, p.bant_authority, p.bant_need, p.bant_timeline, p.project_status,
        )
        out.append(Record(rid, values, p.created_ms, p.updated_ms, p.index))
    return out


def render_companies(world: World) -> list[Record]:
    base = OBJECT_TYPES["companies"].id_base + 1
    out = []
    for c in world.companies:
        rid = base + c.index
        values = (
            c.name, c.domain, f"https://www.{c.domain}", INDUSTRY[c.industry], str(c.employees), str(c.annual_revenue),
            COUNTRY_NAMES[c.country], c.city, c.state, owner_id(c.owner), LIFECYCLE[c.lifecycle],
            iso_ms(c.created_ms), iso_ms(c.updated_ms), str(rid), c.tier, _bool(c.tier is not None),
            ";".join(c.technologies) or None, c.renewal_date.isoformat() if c.renewal_date else None,
        )
        out.append(Record(rid, values, c.created_ms, c.updated_ms, c.index))
    return out


def render_deals(world: World) -> list[Record]:
    out = []
    for d in world.deals:
        rid = record_id("deals", d.index)
        stage = world.pipelines[d.pipeline].stages[d.stage]
        values = (
            d.name, str(d.amount), d.currency, stage_id(d.pipeline, d.stage), pipeline_id(d.pipeline),
            f"{d.close_date.isoformat()}T00:00:00.000Z", iso_ms(d.created_ms), iso_ms(d.updated_ms),
            owner_id(d.owner), str(rid), _bool(stage.won), _bool(stage.closed),
        )
        out.append(Record(rid, values, d.created_ms, d.updated_ms, d.index))
    return out


def _engagement_values(a: SalesActivity, rid: int) -> tuple[Any, ...]:
    """A tuple in ``SEEDED_COLUMNS[<type>]`` order: the common columns, then the type's own."""
    common = (iso_ms(a.at_ms), owner_id(a.owner), iso_ms(a.created_ms), iso_ms(a.updated_ms), str(rid))
    kind = a.kind
    if kind is ActivityKind.CALL:
        return (*common, a.subject, a.body, (a.direction or "outbound").upper(), (a.status or "").upper(),
                str(a.duration_ms))
    if kind in (ActivityKind.EMAIL_SENT, ActivityKind.EMAIL_REPLY):
        direction = "INCOMING_EMAIL" if kind is ActivityKind.EMAIL_REPLY else \
            "FORWARDED_EMAIL" if a.index % 20 == 0 else "EMAIL"
        return (*common, a.subject, a.body, direction, (a.status or "sent").upper())
    if kind is ActivityKind.MEETING:
        return (*common, a.subject, a.body, iso_ms(a.at_ms), iso_ms(a.at_ms + a.duration_ms),
                (a.outcome or "").upper(), "MEETINGS_PUBLIC" if a.booked_by_lead else "CRM_UI")
    if kind is ActivityKind.NOTE:
        return (*common, a.body)
    return (*common, a.subject, a.body or None, (a.status or "not_started").upper(),
            (a.task_type or "todo").upper(), (a.priority or "none").upper(),
            iso_ms(a.completed_ms) if a.completed_ms else None)


def render_engagements(world: World) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {name: [] for name in ENGAGEMENT_TYPES}
    for a in world.activities:
        type_name = ENGAGEMENT_TYPE[a.kind]
        rid = record_id(type_name, a.index)
        out[type_name].append(Record(rid, _engagement_values(a, rid), a.created_ms, a.updated_ms, a.index))
    return out


def render_associations(world: World) -> Iterator[tuple[str, int, str, int, bool]]:
    """(from type, from id, to type, to id, primary) for every seeded link."""
    for p in world.people:
        if p.company >= 0:
            yield "contacts", record_id("contacts", p.index), "companies", record_id("companies", p.company), True
    for d in world.deals:
        deal = record_id("deals", d.index)
        yield "deals", deal, "companies", record_id("companies", d.company), True
        for p in d.people:
            yield "deals", deal, "contacts", record_id("contacts", p), False
    for a in world.activities:
        type_name = ENGAGEMENT_TYPE[a.kind]
        rid = record_id(type_name, a.index)
        if a.person >= 0:
            yield type_name, rid, "contacts", record_id("contacts", a.person), False
        if a.company >= 0:
            yield type_name, rid, "companies", record_id("companies", a.company), False
        if a.deal >= 0:
            yield type_name, rid, "deals", record_id("deals", a.deal), False


# -- owners, pipelines, forms ------------------------------------------------------------------------


@dataclass(slots=True)
class OwnerView:
    id: str
    body: dict[str, Any]
    archived: bool
    email: str


def render_owners(world: World) -> list[OwnerView]:
    out = []
    for o in world.owners:
        team = world.teams[o.team]
        body = {
            "id": owner_id(o.index), "email": o.email, "firstName": o.first_name, "lastName": o.last_name,
            "userId": USER_ID_BASE + o.index + 1, "userIdIncludingInactive": USER_ID_BASE + o.index + 1,
            "createdAt": iso_ms(o.created_ms), "updatedAt": iso_ms(o.created_ms + 86_400_000),
            "archived": not o.active, "teams": [{"id": str(TEAM_ID_BASE + team.index + 1), "name": team.name,
                                                 "primary": True}],
            "type": "PERSON",
        }
        out.append(OwnerView(str(body["id"]), body, not o.active, o.email))
    return out


def render_pipelines(world: World, epoch_iso: str) -> list[dict[str, Any]]:
    out = []
    for p in world.pipelines:
        stages = []
        for i, s in enumerate(p.stages):
            stages.append({
                "label": s.label, "displayOrder": i,
                "metadata": {"isClosed": _bool(s.closed), "probability": str(s.probability)},
                "id": stage_id(p.index, i), "createdAt": epoch_iso, "updatedAt": epoch_iso,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT", "archived": False,
            })
        out.append({"label": p.label, "displayOrder": p.index, "id": pipeline_id(p.index), "stages": stages,
                    "createdAt": epoch_iso, "updatedAt": epoch_iso, "archived": False})
    return out


def render_forms(world: World, owner_user_id: int) -> list[dict[str, Any]]:
    """Forms in the marketing v3 shape; field definitions are left empty (see docs/sandbox.md)."""
    out = []
    for f in world.forms:
        stamp = iso_ms(f.created_ms)
        out.append({
            "id": f.guid, "name": f.name, "createdAt": stamp, "updatedAt": stamp, "archived": False,
            "fieldGroups": [{"groupType": "default_group", "richTextType": "text", "fields": []}],
            "configuration": {
                "language": "en", "cloneable": True, "postSubmitAction": {"type": "thank_you", "value": ""},
                "editable": True, "archivable": True, "recaptchaEnabled": False, "notifyContactOwner": False,
                "notifyRecipients": [str(owner_user_id)], "createNewContactForNewEmail": False,
                "prePopulateKnownValues": True, "allowLinkToResetKnownValues": False, "embedType": "V3",
            },
            "displayOptions": {
                "renderRawHtml": False, "theme": "default_style", "submitButtonText": "Submit",
                "style": {
                    "fontFamily": "arial, helvetica, sans-serif", "backgroundWidth": "100%",
                    "labelTextColor": "#33475b", "labelTextSize": "11px", "helpTextColor": "#7C98B6",
                    "helpTextSize": "11px", "legalConsentTextColor": "#33475b", "legalConsentTextSize": "14px",
                    "submitColor": "#ff7a59", "submitAlignment": "left", "submitFontColor": "#ffffff",
                    "submitSize": "12px",
                },
                "cssClass": None,
            },
            "legalConsentOptions": {"type": "none"},
            "formType": "hubspot",
        })
    return out
