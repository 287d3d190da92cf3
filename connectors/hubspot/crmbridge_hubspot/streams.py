"""Every HubSpot object crmbridge reads, declared in a few lines each; vendor constants live here."""

from __future__ import annotations

from dataclasses import dataclass

from crmbridge.model import EntityType

LIST_PAGE = 100  # the CRM v3 list endpoints' maximum
SEARCH_PAGE = 200  # the search endpoints' maximum
OWNERS_PAGE = 500
EVENTS_PAGE = 100
FORMS_PAGE = 50
ASSOCIATIONS_BATCH = 1000  # associations v4 batch read's maximum inputs


@dataclass(frozen=True, slots=True)
class CrmObjectStream:
    """A CRM object type: listed with inline associations, searched by last-modified time."""

    name: str
    entity: EntityType
    associations: tuple[str, ...] = ()
    modified: str = "hs_lastmodifieddate"
    always: tuple[str, ...] = ()  # properties requested whatever the mapping names

    @property
    def object_type(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class SpecialStream:
    """Owners, pipelines and web events: each has its own endpoint and paging."""

    name: str
    entity: EntityType
    page_size: int


ENGAGEMENT_LINKS = ("contacts", "companies", "deals")

CRM_STREAMS: tuple[CrmObjectStream, ...] = (
    CrmObjectStream("companies", EntityType.COMPANY, always=("hs_merged_object_ids",)),
    CrmObjectStream("contacts", EntityType.PERSON, ("companies",), modified="lastmodifieddate",
                    always=("hs_merged_object_ids",)),
    CrmObjectStream("deals", EntityType.DEAL, ("contacts", "companies"), always=("hs_merged_object_ids",)),
    CrmObjectStream("calls", EntityType.ACTIVITY, ENGAGEMENT_LINKS),
    CrmObjectStream("emails", EntityType.ACTIVITY, ENGAGEMENT_LINKS),
    CrmObjectStream("meetings", EntityType.ACTIVITY, ENGAGEMENT_LINKS),
    CrmObjectStream("notes", EntityType.ACTIVITY, ENGAGEMENT_LINKS),
    CrmObjectStream("tasks", EntityType.ACTIVITY, ENGAGEMENT_LINKS),
)

OWNERS = SpecialStream("owners", EntityType.OWNER, OWNERS_PAGE)
PIPELINES = SpecialStream("pipelines", EntityType.PIPELINE, 100)
WEB_EVENTS = SpecialStream("web_events", EntityType.ACTIVITY, EVENTS_PAGE)

# Reading order: what others refer to comes first, so a partial store is still coherent.
ALL_STREAMS: tuple[CrmObjectStream | SpecialStream, ...] = (OWNERS, PIPELINES, *CRM_STREAMS, WEB_EVENTS)
BY_NAME = {s.name: s for s in ALL_STREAMS}

# -- webhooks ------------------------------------------------------------------------------------------

FETCH_BATCH = 100  # batch read's maximum inputs

# The objects HubSpot's webhooks API reports on that crmbridge reads, by subscription prefix.
WEBHOOK_OBJECTS = {"contact": "contacts", "company": "companies", "deal": "deals"}
# Events every watched object is subscribed to; property changes are subscribed one property at a time.
WEBHOOK_EVENTS = ("creation", "deletion", "merge", "associationChange")
# The properties whose change crmbridge must hear about: what the mapping reads, plus the activity
# signals HubSpot keeps on a contact (a form submission, a visit, an e-mail opened or clicked), which
# say that the events API has news. Never the ``crmbridge_*`` properties write-back itself writes,
# nor last-modified stamps (every change moves them).
WEBHOOK_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contact": (
        "email", "firstname", "lastname", "jobtitle", "hs_seniority", "hs_role", "phone", "country", "city",
        "hubspot_owner_id", "lifecyclestage", "hs_lead_status", "hs_email_optout", "hs_email_hard_bounce_reason_enum",
        "bant_budget", "bant_authority", "bant_need", "bant_timeline", "project_status",
        "recent_conversion_date", "num_conversion_events", "hs_analytics_last_visit_timestamp",
        "hs_email_last_open_date", "hs_email_last_click_date",
    ),
    "company": (
        "name", "domain", "website", "industry", "numberofemployees", "annualrevenue", "country", "city",
        "tech_stack", "hs_ideal_customer_profile", "hs_is_target_account", "renewal_date", "hubspot_owner_id",
        "lifecyclestage",
    ),
    # notes_last_contacted moves when a seller logs a call, e-mail or meeting on the deal: the only webhook
    # that announces a first touch (engagements have no subscriptions of their own).
    "deal": ("dealname", "amount", "deal_currency_code", "pipeline", "dealstage", "hubspot_owner_id", "closedate",
             "closed_lost_reason", "notes_last_contacted"),
}
# A change on these streams implies news elsewhere that no webhook announces: a form submission changes
# the contact, not its web events; a seller's touch changes the deal, not the engagements it was logged as.
# Keyed by the changed property that implies them (None: any event on the stream), so that a deal's other
# changes (crmbridge's own SLA fields among them) cost no search.
FOLLOWUPS: dict[str, dict[str | None, tuple[str, ...]]] = {
    "contacts": {None: ("web_events",)},
    "deals": {"notes_last_contacted": ("calls", "emails", "meetings")},
}
