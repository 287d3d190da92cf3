"""HubSpot's object types, association types and built-in limits, as the sandbox serves them.

Every vendor constant the sandbox relies on lives here: object type ids and aliases, the default
properties HubSpot returns, association type ids, page sizes and batch limits.
"""

from __future__ import annotations

from dataclasses import dataclass

LIST_DEFAULT_LIMIT = 10
LIST_MAX_LIMIT = 100
BATCH_MAX_INPUTS = 100
BATCH_HISTORY_MAX_INPUTS = 50
SEARCH_MAX_LIMIT = 200
SEARCH_MAX_RESULTS = 10_000
SEARCH_MAX_BODY_CHARS = 3_000
SEARCH_MAX_GROUPS = 5
SEARCH_MAX_FILTERS_PER_GROUP = 6
SEARCH_MAX_FILTERS = 18
SEARCH_MAX_SORTS = 1
ASSOC_BATCH_MAX_INPUTS = 1_000
ASSOC_PAGE_MAX = 500
OWNERS_MAX_LIMIT = 500
EVENTS_MAX_LIMIT = 100
FORMS_MAX_LIMIT = 100

APP_HOST = "https://app.hubspot.com"


@dataclass(frozen=True, slots=True)
class ObjectType:
    name: str  # plural, as in the URL: contacts
    singular: str  # contact
    type_id: str  # 0-1
    label: str  # CONTACT, as in HubSpot's error messages
    id_base: int
    created_prop: str
    modified_prop: str
    defaults: tuple[str, ...]  # returned when a read names no properties
    unique: tuple[str, ...] = ()  # properties usable as idProperty (besides hs_object_id)
    searchable: tuple[str, ...] = ()  # what the free-text ``query`` of a search looks at
    mergeable: bool = False

    @property
    def always(self) -> tuple[str, str, str]:
        """Properties every read returns, asked for or not."""
        return (self.created_prop, "hs_object_id", self.modified_prop)


_ENGAGEMENT_DEFAULTS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")

OBJECT_TYPES: dict[str, ObjectType] = {
    t.name: t for t in (
        ObjectType("contacts", "contact", "0-1", "CONTACT", 1_000_000_000, "createdate", "lastmodifieddate",
                   ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
                   unique=("email",), searchable=("email", "firstname", "lastname", "phone", "company"),
                   mergeable=True),
        ObjectType("companies", "company", "0-2", "COMPANY", 2_000_000_000, "createdate", "hs_lastmodifieddate",
                   ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
                   searchable=("name", "domain", "website", "phone"), mergeable=True),
        ObjectType("deals", "deal", "0-3", "DEAL", 3_000_000_000, "createdate", "hs_lastmodifieddate",
                   ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
                    "hs_object_id", "pipeline"), searchable=("dealname",), mergeable=True),
        ObjectType("calls", "call", "0-48", "CALL", 4_000_000_000, "hs_createdate", "hs_lastmodifieddate",
                   _ENGAGEMENT_DEFAULTS, searchable=("hs_call_title", "hs_call_body")),
        ObjectType("emails", "email", "0-49", "EMAIL", 5_000_000_000, "hs_createdate", "hs_lastmodifieddate",
                   _ENGAGEMENT_DEFAULTS, searchable=("hs_email_subject", "hs_email_text")),
        ObjectType("meetings", "meeting", "0-47", "MEETING", 6_000_000_000, "hs_createdate", "hs_lastmodifieddate",
                   _ENGAGEMENT_DEFAULTS, searchable=("hs_meeting_title", "hs_meeting_body")),
        ObjectType("notes", "note", "0-46", "NOTE", 7_000_000_000, "hs_createdate", "hs_lastmodifieddate",
                   _ENGAGEMENT_DEFAULTS, searchable=("hs_note_body",)),
        ObjectType("tasks", "task", "0-27", "TASK", 8_000_000_000, "hs_createdate", "hs_lastmodifieddate",
                   _ENGAGEMENT_DEFAULTS, searchable=("hs_task_subject", "hs_task_body")),
        # Every portal has tickets and line items; the seeded world has none, so they start empty.
        ObjectType("tickets", "ticket", "0-5", "TICKET", 9_000_000_000, "createdate", "hs_lastmodifieddate",
                   ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline",
                    "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_priority", "subject"),
                   searchable=("subject", "content"), mergeable=True),
        ObjectType("line_items", "line_item", "0-8", "LINE_ITEM", 10_000_000_000, "createdate",
                   "hs_lastmodifieddate", ("amount", "createdate", "hs_lastmodifieddate", "hs_object_id", "name",
                                           "price", "quantity"), searchable=("name", "description")),
    )
}
ENGAGEMENT_TYPES = ("calls", "emails", "meetings", "notes", "tasks")

_ALIASES: dict[str, str] = {}
for _t in OBJECT_TYPES.values():
    for _alias in (_t.name, _t.singular, _t.type_id, _t.label.lower()):
        _ALIASES[_alias] = _t.name


def object_type(name: str) -> ObjectType | None:
    """HubSpot accepts plural names, singular names and object type ids (``0-1``) in paths."""
    key = _ALIASES.get(name.lower())
    return OBJECT_TYPES[key] if key else None


# HubSpot-defined association type ids, (from, to) -> (unlabeled/default type id, primary type id or None).
# The v3 inline type names are ``<from>_to_<to>``; the unlabeled one gets ``_unlabeled`` when a primary exists.
_PAIR_TYPES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1), ("companies", "contacts"): (280, 2),
    ("deals", "contacts"): (3, None), ("contacts", "deals"): (4, None),
    ("deals", "companies"): (341, 5), ("companies", "deals"): (342, 6),
    ("calls", "contacts"): (194, None), ("contacts", "calls"): (193, None),
    ("calls", "companies"): (182, None), ("companies", "calls"): (181, None),
    ("calls", "deals"): (206, None), ("deals", "calls"): (205, None),
    ("emails", "contacts"): (198, None), ("contacts", "emails"): (197, None),
    ("emails", "companies"): (186, None), ("companies", "emails"): (185, None),
    ("emails", "deals"): (210, None), ("deals", "emails"): (209, None),
    ("meetings", "contacts"): (200, None), ("contacts", "meetings"): (199, None),
    ("meetings", "companies"): (188, None), ("companies", "meetings"): (187, None),
    ("meetings", "deals"): (212, None), ("deals", "meetings"): (211, None),
    ("notes", "contacts"): (202, None), ("contacts", "notes"): (201, None),
    ("notes", "companies"): (190, None), ("companies", "notes"): (189, None),
    ("notes", "deals"): (214, None), ("deals", "notes"): (213, None),
    ("tasks", "contacts"): (204, None), ("contacts", "tasks"): (203, None),
    ("tasks", "companies"): (192, None), ("companies", "tasks"): (191, None),
    ("tasks", "deals"): (216, None), ("deals", "tasks"): (215, None),
    ("contacts", "tickets"): (15, None), ("tickets", "contacts"): (16, None),
    ("companies", "tickets"): (340, 25), ("tickets", "companies"): (339, 26),
    ("deals", "tickets"): (27, None), ("tickets", "deals"): (28, None),
    ("deals", "line_items"): (19, None), ("line_items", "deals"): (20, None),
    ("calls", "tickets"): (220, None), ("tickets", "calls"): (219, None),
    ("emails", "tickets"): (224, None), ("tickets", "emails"): (223, None),
    ("meetings", "tickets"): (226, None), ("tickets", "meetings"): (225, None),
    ("notes", "tickets"): (228, None), ("tickets", "notes"): (227, None),
    ("tasks", "tickets"): (230, None), ("tickets", "tasks"): (229, None),
}


@dataclass(frozen=True, slots=True)
class AssociationKind:
    from_type: str
    to_type: str
    default_id: int
    primary_id: int | None
    v3_name: str  # contact_to_company
    v3_unlabeled: str  # contact_to_company_unlabeled when the pair has a primary, else the same name


def association_kind(from_type: str, to_type: str) -> AssociationKind | None:
    ids = _PAIR_TYPES.get((from_type, to_type))
    if ids is None:
        return None
    name = f"{OBJECT_TYPES[from_type].singular}_to_{OBJECT_TYPES[to_type].singular}"
    unlabeled = name + "_unlabeled" if ids[1] is not None else name
    return AssociationKind(from_type, to_type, ids[0], ids[1], name, unlabeled)


ASSOCIATION_KINDS: dict[tuple[str, str], AssociationKind] = {
    pair: kind for pair in _PAIR_TYPES if (kind := association_kind(*pair)) is not None
}

# Rate-limit tiers (SPEC §7): burst per rolling 10 seconds and daily quota.
TIERS: dict[str, tuple[int, int]] = {
    "free": (100, 250_000), "starter": (100, 250_000), "professional": (190, 625_000),
    "enterprise": (190, 1_000_000), "addon": (250, 1_000_000), "oauth": (110, 250_000),
}
BURST_WINDOW_SECONDS = 10.0
SEARCH_PER_SECOND = 5
DAY_SECONDS = 86_400.0
