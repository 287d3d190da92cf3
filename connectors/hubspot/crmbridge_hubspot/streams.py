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
    CrmObjectStream("deals", EntityType.DEAL, ("contacts", "companies")),
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
