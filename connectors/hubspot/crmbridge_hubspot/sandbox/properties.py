"""Property definitions per object type, as the properties API serves them, and value validation.

Records store their values in a list aligned to the object type's columns, so the catalog also assigns
each property its column. Writes go through ``PropertyCatalog.clean``, which answers the way HubSpot
does: unknown properties, read-only values, options that do not exist, malformed numbers and dates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from crmbridge_hubspot.sandbox.clock import iso_ms, parse_date, parse_instant
from crmbridge_hubspot.sandbox.schema import OBJECT_TYPES

CATALOG_EPOCH = "2020-06-30T15:57:37.277Z"  # when HubSpot-defined properties say they were created

LIFECYCLE_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                    "customer", "evangelist", "other")
LIFECYCLE_RANK = {stage: rank for rank, stage in enumerate(LIFECYCLE_STAGES[:-1])}


@dataclass(slots=True)
class PropertyDef:
    name: str
    label: str
    type: str  # string, number, date, datetime, enumeration, bool
    field_type: str  # text, textarea, number, date, select, radio, checkbox, booleancheckbox, phonenumber, ...
    group: str
    options: tuple[tuple[str, str], ...] = ()  # (value, label)
    description: str = ""
    hubspot_defined: bool = True
    read_only: bool = False
    hidden: bool = False
    unique: bool = False
    external_options: bool = False  # options come from elsewhere (owners, pipelines)
    display_order: int = -1
    created_at: str = CATALOG_EPOCH
    updated_at: str = CATALOG_EPOCH
    form_field: bool = True
    column: int = -1
    option_values: frozenset[str] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        self.option_values = frozenset(v for v, _ in self.options)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "updatedAt": self.updated_at, "createdAt": self.created_at, "name": self.name, "label": self.label,
            "type": self.type, "fieldType": self.field_type, "description": self.description,
            "groupName": self.group,
            "options": [{"label": label, "value": value, "description": "", "displayOrder": i, "hidden": False}
                        for i, (value, label) in enumerate(self.options)],
            "displayOrder": self.display_order, "calculated": False, "externalOptions": self.external_options,
            "hasUniqueValue": self.unique, "hidden": self.hidden,
            "modificationMetadata": {"archivable": not self.hubspot_defined,
                                     "readOnlyDefinition": self.hubspot_defined,
                                     "readOnlyValue": self.read_only},
            "formField": self.form_field and not self.read_only, "dataSensitivity": "non_sensitive",
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        else:
            body["archived"] = False
        return body


@dataclass(slots=True)
class PropertyGroup:
    name: str
    label: str
    display_order: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "displayOrder": self.display_order, "archived": False}


@dataclass(frozen=True, slots=True)
class PropertyProblem:
    """One invalid value, in the shape HubSpot lists inside its VALIDATION_ERROR message."""

    name: str
    error: str  # PROPERTY_DOESNT_EXIST, READ_ONLY_VALUE, INVALID_OPTION, INVALID_INTEGER, ...
    message: str


def _opts(*pairs: str) -> tuple[tuple[str, str], ...]:
    """``_opts("a", "A", "b", "B")`` -> ((a, A), (b, B))."""
    return tuple(zip(pairs[::2], pairs[1::2], strict=True))


BOOL_OPTIONS = _opts("true", "Yes", "false", "No")
INDUSTRY_OPTIONS = _opts(
    "ACCOUNTING", "Accounting", "AUTOMOTIVE", "Automotive", "BANKING", "Banking",
    "COMPUTER_SOFTWARE", "Computer Software", "CONSUMER_SERVICES", "Consumer Services", "E_LEARNING", "E-Learning",
    "FINANCIAL_SERVICES", "Financial Services", "GOVERNMENT_ADMINISTRATION", "Government Administration",
    "HIGHER_EDUCATION", "Higher Education", "HOSPITAL_HEALTH_CARE", "Hospital & Health Care",
    "INFORMATION_TECHNOLOGY_AND_SERVICES", "Information Technology and Services", "INSURANCE", "Insurance",
    "INTERNET", "Internet", "LOGISTICS_AND_SUPPLY_CHAIN", "Logistics and Supply Chain", "MACHINERY", "Machinery",
    "MANAGEMENT_CONSULTING", "Management Consulting", "MARKETING_AND_ADVERTISING", "Marketing and Advertising",
    "NON_PROFIT_ORGANIZATION_MANAGEMENT", "Non-Profit Organization Management", "PHARMACEUTICALS",
    "Pharmaceuticals", "REAL_ESTATE", "Real Estate", "RETAIL", "Retail", "TELECOMMUNICATIONS", "Telecommunications",
)
LIFECYCLE_OPTIONS = _opts(
    "subscriber", "Subscriber", "lead", "Lead", "marketingqualifiedlead", "Marketing Qualified Lead",
    "salesqualifiedlead", "Sales Qualified Lead", "opportunity", "Opportunity", "customer", "Customer",
    "evangelist", "Evangelist", "other", "Other",
)
LEAD_STATUS_OPTIONS = _opts(
    "NEW", "New", "OPEN", "Open", "IN_PROGRESS", "In Progress", "OPEN_DEAL", "Open Deal",
    "UNQUALIFIED", "Unqualified", "ATTEMPTED_TO_CONTACT", "Attempted to Contact", "CONNECTED", "Connected",
    "BAD_TIMING", "Bad Timing",
)
SENIORITY_OPTIONS = _opts(
    "owner", "Owner", "partner", "Partner", "executive", "Executive", "vp", "VP", "director", "Director",
    "manager", "Manager", "senior", "Senior", "employee", "Employee", "intern", "Intern", "student", "Student",
)
ROLE_OPTIONS = _opts(
    "management", "Management", "sales", "Sales", "marketing", "Marketing", "information_technology",
    "Information Technology", "engineering", "Engineering", "finance", "Finance", "operations", "Operations",
    "human_resources", "Human Resources", "education", "Education", "customer_service", "Customer Service",
    "legal", "Legal", "other", "Other",
)
BOUNCE_OPTIONS = _opts(
    "BAD_MAILBOX", "Bad mailbox", "CONTENT", "Content", "DOMAIN", "Domain", "MAILBOX_FULL", "Mailbox full",
    "POLICY", "Policy", "SPAM", "Spam", "TIMEOUT", "Timeout", "UNKNOWN_USER", "Unknown user", "OTHER", "Other",
)
CURRENCY_OPTIONS = _opts("USD", "US Dollar", "EUR", "Euro", "GBP", "British Pound", "CHF", "Swiss Franc",
                         "AUD", "Australian Dollar", "CAD", "Canadian Dollar")
TECH_LABELS = {
    "salesforce": "Salesforce", "hubspot": "HubSpot", "pipedrive": "Pipedrive", "marketo": "Marketo",
    "pardot": "Pardot", "google-analytics": "Google Analytics", "aws": "AWS", "azure": "Microsoft Azure",
    "gcp": "Google Cloud", "snowflake": "Snowflake", "slack": "Slack", "microsoft-teams": "Microsoft Teams",
    "zendesk": "Zendesk", "shopify": "Shopify", "sap": "SAP", "oracle": "Oracle", "wordpress": "WordPress",
    "segment": "Segment", "stripe": "Stripe", "intercom": "Intercom", "zoom": "Zoom", "jira": "Jira",
    "tableau": "Tableau", "looker": "Looker",
}


def _p(name: str, label: str, type_: str = "string", field_type: str = "text", group: str = "", **kw: Any
       ) -> PropertyDef:
    return PropertyDef(name, label, type_, field_type, group, **kw)


def _enum(name: str, label: str, options: tuple[tuple[str, str], ...], group: str, field_type: str = "select",
          **kw: Any) -> PropertyDef:
    return PropertyDef(name, label, "enumeration", field_type, group, options=options, **kw)


def _bool(name: str, label: str, group: str, **kw: Any) -> PropertyDef:
    return PropertyDef(name, label, "bool", "booleancheckbox", group, options=BOOL_OPTIONS, **kw)


def _dt(name: str, label: str, group: str, **kw: Any) -> PropertyDef:
    return PropertyDef(name, label, "datetime", "date", group, **kw)


def _num(name: str, label: str, group: str, **kw: Any) -> PropertyDef:
    return PropertyDef(name, label, "number", "number", group, **kw)


def _owner(group: str) -> PropertyDef:
    return _enum("hubspot_owner_id", "Owner", (), group, external_options=True,
                 description="The owner of the object.")


def _system(type_name: str, group: str) -> list[PropertyDef]:
    otype = OBJECT_TYPES[type_name]
    return [
        _dt(otype.created_prop, "Create Date", group, read_only=True),
        _dt(otype.modified_prop, "Last Modified Date", group, read_only=True),
        _num("hs_object_id", "Record ID", group, read_only=True),
    ]


BANT_GROUP = "lead_qualification"


def _bant() -> list[PropertyDef]:
    custom = {"hubspot_defined": False, "created_at": "2024-03-04T09:12:44.120Z",
              "updated_at": "2024-03-04T09:12:44.120Z"}
    return [
        _enum("bant_budget", "Budget", _opts("approved", "Budget approved", "planned", "Budget planned",
                                             "none", "No budget"), BANT_GROUP, "radio", **custom),
        _enum("bant_authority", "Authority", _opts("decision_maker", "Decision maker", "influencer", "Influencer",
                                                   "none", "No authority"), BANT_GROUP, "radio", **custom),
        _enum("bant_need", "Need", _opts("confirmed", "Need confirmed", "exploring", "Exploring the need",
                                         "none", "No need"), BANT_GROUP, "radio", **custom),
        _enum("bant_timeline", "Timeline", _opts("this_quarter", "This quarter", "this_year", "This year",
                                                 "later", "Later", "none", "No timeline"), BANT_GROUP, "radio",
              **custom),
        _enum("project_status", "Project status", _opts("current", "This is current for us", "researching",
                                                        "We are researching it", "not_relevant",
                                                        "Not relevant for us"), BANT_GROUP, "radio", **custom),
    ]


def _contacts() -> list[PropertyDef]:
    g = "contactinformation"
    return [
        _p("email", "Email", group=g, unique=True, description="A contact's email address"),
        _p("firstname", "First Name", group=g), _p("lastname", "Last Name", group=g),
        _p("jobtitle", "Job Title", group=g),
        _enum("hs_seniority", "Seniority", SENIORITY_OPTIONS, g),
        _enum("hs_role", "Job role", ROLE_OPTIONS, g),
        _p("phone", "Phone Number", field_type="phonenumber", group=g),
        _p("country", "Country/Region", group=g), _p("city", "City", group=g),
        _p("state", "State/Region", group=g),
        _p("company", "Company Name", group=g), _p("website", "Website URL", group=g),
        _enum("lifecyclestage", "Lifecycle Stage", LIFECYCLE_OPTIONS, g, "radio"),
        _enum("hs_lead_status", "Lead Status", LEAD_STATUS_OPTIONS, "sales_properties", "radio"),
        _owner("sales_properties"),
        *_system("contacts", g),
        _p("hs_merged_object_ids", "Merged Contact IDs", group=g, read_only=True, hidden=True),
        _bool("hs_email_optout", "Unsubscribed from all email", "emailinformation", read_only=True),
        _enum("hs_email_hard_bounce_reason_enum", "Email hard bounce reason", BOUNCE_OPTIONS, "emailinformation",
              read_only=True),
        _num("associatedcompanyid", "Primary Associated Company ID", g, hidden=True),
        _p("hs_email_domain", "Email Domain", group=g, read_only=True),
        *_bant(),
        *_activity_signals(),
        _last_contacted("sales_properties"),
    ]


def _activity_signals() -> list[PropertyDef]:
    """What HubSpot itself keeps up to date on a contact when it converts, visits or reads e-mail."""
    conversion, analytics, email = "conversioninformation", "analyticsinformation", "emailinformation"
    return [
        _p("recent_conversion_event_name", "Recent Conversion", group=conversion, read_only=True),
        _dt("recent_conversion_date", "Recent Conversion Date", conversion, read_only=True),
        _p("first_conversion_event_name", "First Conversion", group=conversion, read_only=True),
        _num("num_conversion_events", "Number of Form Submissions", conversion, read_only=True),
        _dt("hs_analytics_last_visit_timestamp", "Time of Last Session", analytics, read_only=True),
        _num("hs_analytics_num_page_views", "Number of Pageviews", analytics, read_only=True),
        _dt("hs_email_last_open_date", "Last marketing email open date", email, read_only=True),
        _dt("hs_email_last_click_date", "Last marketing email click date", email, read_only=True),
    ]


def _companies() -> list[PropertyDef]:
    g = "companyinformation"
    return [
        _p("name", "Company name", group=g), _p("domain", "Company Domain Name", group=g),
        _p("website", "Website URL", group=g),
        _enum("industry", "Industry", INDUSTRY_OPTIONS, g),
        _num("numberofemployees", "Number of Employees", g), _num("annualrevenue", "Annual Revenue", g),
        _p("country", "Country/Region", group=g), _p("city", "City", group=g), _p("state", "State/Region", group=g),
        _owner(g),
        _enum("lifecyclestage", "Lifecycle Stage", LIFECYCLE_OPTIONS, g, "radio"),
        *_system("companies", g),
        _p("hs_merged_object_ids", "Merged Company IDs", group=g, read_only=True, hidden=True),
        _enum("hs_ideal_customer_profile", "Ideal Customer Profile Tier",
              _opts("tier_1", "Tier 1", "tier_2", "Tier 2", "tier_3", "Tier 3"), "target_accounts", "radio"),
        _bool("hs_is_target_account", "Target Account", "target_accounts"),
        _enum("tech_stack", "Technologies", tuple(TECH_LABELS.items()), "company_profile", "checkbox",
              hubspot_defined=False, created_at="2024-03-04T09:15:02.511Z", updated_at="2024-03-04T09:15:02.511Z"),
        _p("renewal_date", "Renewal date", "date", "date", "company_profile", hubspot_defined=False,
           created_at="2024-03-04T09:15:02.511Z", updated_at="2024-03-04T09:15:02.511Z"),
    ]


def _deals() -> list[PropertyDef]:
    g = "dealinformation"
    return [
        _p("dealname", "Deal Name", group=g), _num("amount", "Amount", g),
        _enum("deal_currency_code", "Currency", CURRENCY_OPTIONS, g),
        _enum("dealstage", "Deal Stage", (), "deal_activity", "radio", external_options=True),
        _enum("pipeline", "Pipeline", (), "deal_activity", external_options=True),
        _dt("closedate", "Close Date", g),
        *_system("deals", g),
        _owner(g),
        _bool("hs_is_closed_won", "Is Closed Won", g, read_only=True),
        _bool("hs_is_closed", "Is Deal Closed?", g, read_only=True),
        _p("closed_lost_reason", "Closed Lost Reason", "string", "textarea", g),
        _p("closed_won_reason", "Closed Won Reason", "string", "textarea", g),
        _last_contacted("deal_activity"),
        _p("hs_merged_object_ids", "Merged Deal IDs", group=g, read_only=True, hidden=True),
    ]


def _last_contacted(group: str) -> PropertyDef:
    """Kept up to date by HubSpot when a seller logs a call, sales e-mail or meeting on the record."""
    return _dt("notes_last_contacted", "Last Contacted", group, read_only=True)


def _engagement(type_name: str, group: str, own: list[PropertyDef]) -> list[PropertyDef]:
    return [_dt("hs_timestamp", "Activity date", group), *own, _owner(group), *_system(type_name, group)]


def _calls() -> list[PropertyDef]:
    g = "call"
    return _engagement("calls", g, [
        _p("hs_call_title", "Call Title", group=g), _p("hs_call_body", "Call notes", "string", "textarea", g),
        _enum("hs_call_direction", "Call direction", _opts("INBOUND", "Inbound", "OUTBOUND", "Outbound"), g),
        _enum("hs_call_status", "Call status", _opts(
            "BUSY", "Busy", "CALLING_CRM_USER", "Calling CRM user", "CANCELED", "Canceled", "COMPLETED", "Completed",
            "CONNECTING", "Connecting", "FAILED", "Failed", "IN_PROGRESS", "In progress", "NO_ANSWER", "No answer",
            "QUEUED", "Queued", "RINGING", "Ringing"), g),
        _num("hs_call_duration", "Call duration (ms)", g),
    ])


def _emails() -> list[PropertyDef]:
    g = "email"
    return _engagement("emails", g, [
        _p("hs_email_subject", "Email subject", group=g), _p("hs_email_text", "Email body", "string", "textarea", g),
        _enum("hs_email_direction", "Email direction", _opts(
            "EMAIL", "Email sent from CRM", "INCOMING_EMAIL", "Incoming email", "FORWARDED_EMAIL", "Forwarded email"),
            g),
        _enum("hs_email_status", "Email send status", _opts(
            "BOUNCED", "Bounced", "FAILED", "Failed", "SCHEDULED", "Scheduled", "SENDING", "Sending", "SENT", "Sent"),
            g),
    ])


def _meetings() -> list[PropertyDef]:
    g = "meeting"
    return _engagement("meetings", g, [
        _p("hs_meeting_title", "Meeting name", group=g),
        _p("hs_meeting_body", "Meeting description", "string", "textarea", g),
        _dt("hs_meeting_start_time", "Start time", g), _dt("hs_meeting_end_time", "End time", g),
        _enum("hs_meeting_outcome", "Meeting outcome", _opts(
            "SCHEDULED", "Scheduled", "COMPLETED", "Completed", "RESCHEDULED", "Rescheduled", "NO_SHOW", "No show",
            "CANCELED", "Canceled"), g),
        _enum("hs_meeting_source", "Meeting source", _opts(
            "CRM_UI", "CRM UI", "MEETINGS_PUBLIC", "Meetings public link", "INTEGRATION", "Integration",
            "BIDIRECTIONAL_API", "Calendar sync"), g, read_only=True),
    ])


def _notes() -> list[PropertyDef]:
    g = "note"
    return _engagement("notes", g, [_p("hs_note_body", "Note body", "string", "textarea", g)])


def _tasks() -> list[PropertyDef]:
    g = "task"
    return _engagement("tasks", g, [
        _p("hs_task_subject", "Task title", group=g), _p("hs_task_body", "Task notes", "string", "textarea", g),
        _enum("hs_task_status", "Task status", _opts(
            "NOT_STARTED", "Not started", "IN_PROGRESS", "In progress", "WAITING", "Waiting", "COMPLETED",
            "Completed", "DEFERRED", "Deferred"), g),
        _enum("hs_task_type", "Task type", _opts("CALL", "Call", "EMAIL", "Email", "TODO", "To-do"), g),
        _enum("hs_task_priority", "Priority", _opts("LOW", "Low", "MEDIUM", "Medium", "HIGH", "High",
                                                    "NONE", "None"), g),
        _dt("hs_task_completion_date", "Completed at", g),
    ])


def _tickets() -> list[PropertyDef]:
    g = "ticketinformation"
    return [
        _p("subject", "Ticket name", group=g), _p("content", "Ticket description", "string", "textarea", g),
        _enum("hs_pipeline", "Pipeline", (), g, external_options=True),
        _enum("hs_pipeline_stage", "Ticket status", (), g, external_options=True),
        _enum("hs_ticket_priority", "Priority", _opts("LOW", "Low", "MEDIUM", "Medium", "HIGH", "High",
                                                      "URGENT", "Urgent"), g),
        _enum("hs_ticket_category", "Category", _opts(
            "PRODUCT_ISSUE", "Product issue", "BILLING_ISSUE", "Billing issue", "FEATURE_REQUEST",
            "Feature request", "GENERAL_INQUIRY", "General inquiry"), g, "checkbox"),
        _dt("closed_date", "Close date", g),
        _owner(g), *_system("tickets", g),
        _p("hs_merged_object_ids", "Merged Ticket IDs", group=g, read_only=True, hidden=True),
    ]


def _line_items() -> list[PropertyDef]:
    g = "lineiteminformation"
    return [
        _p("name", "Name", group=g), _p("description", "Description", "string", "textarea", g),
        _num("price", "Unit price", g), _num("quantity", "Quantity", g), _num("amount", "Net price", g),
        _p("hs_product_id", "Product ID", group=g), _p("hs_sku", "SKU", group=g),
        _p("hs_recurring_billing_period", "Term", group=g, description="ISO 8601 period, e.g. P12M"),
        *_system("line_items", g),
    ]


_BUILTIN: dict[str, Callable[[], list[PropertyDef]]] = {
    "contacts": _contacts, "companies": _companies, "deals": _deals, "calls": _calls, "emails": _emails,
    "meetings": _meetings, "notes": _notes, "tasks": _tasks, "tickets": _tickets, "line_items": _line_items,
}
_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "contacts": (("contactinformation", "Contact information"), ("emailinformation", "Email information"),
                 ("sales_properties", "Sales properties"), (BANT_GROUP, "Lead qualification"),
                 ("conversioninformation", "Conversion information"),
                 ("analyticsinformation", "Web analytics history")),
    "companies": (("companyinformation", "Company information"), ("target_accounts", "Target accounts"),
                  ("company_profile", "Company profile")),
    "deals": (("dealinformation", "Deal information"), ("deal_activity", "Deal activity")),
    "calls": (("call", "Call information"),), "emails": (("email", "Email information"),),
    "meetings": (("meeting", "Meeting information"),), "notes": (("note", "Note information"),),
    "tasks": (("task", "Task information"),), "tickets": (("ticketinformation", "Ticket information"),),
    "line_items": (("lineiteminformation", "Line item information"),),
}

_ENGAGEMENT_COMMON = ("hs_timestamp", "hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate", "hs_object_id")
# The columns a rendered seed record fills, in column order: the renderer builds each record as one tuple
# in this order, and every later property (optional, or created through the API) gets a column after them.
SEEDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "contacts": (
        "email", "firstname", "lastname", "jobtitle", "hs_seniority", "hs_role", "phone", "country", "city", "state",
        "company", "website", "lifecyclestage", "hs_lead_status", "hubspot_owner_id", "createdate",
        "lastmodifieddate", "hs_object_id", "hs_email_optout", "hs_email_hard_bounce_reason_enum",
        "associatedcompanyid", "hs_email_domain", "bant_budget", "bant_authority", "bant_need", "bant_timeline",
        "project_status",
    ),
    "companies": (
        "name", "domain", "website", "industry", "numberofemployees", "annualrevenue", "country", "city", "state",
        "hubspot_owner_id", "lifecyclestage", "createdate", "hs_lastmodifieddate", "hs_object_id",
        "hs_ideal_customer_profile", "hs_is_target_account", "tech_stack", "renewal_date",
    ),
    "deals": (
        "dealname", "amount", "deal_currency_code", "dealstage", "pipeline", "closedate", "createdate",
        "hs_lastmodifieddate", "hubspot_owner_id", "hs_object_id", "hs_is_closed_won", "hs_is_closed",
    ),
    "calls": (*_ENGAGEMENT_COMMON, "hs_call_title", "hs_call_body", "hs_call_direction", "hs_call_status",
              "hs_call_duration"),
    "emails": (*_ENGAGEMENT_COMMON, "hs_email_subject", "hs_email_text", "hs_email_direction", "hs_email_status"),
    "meetings": (*_ENGAGEMENT_COMMON, "hs_meeting_title", "hs_meeting_body", "hs_meeting_start_time",
                 "hs_meeting_end_time", "hs_meeting_outcome", "hs_meeting_source"),
    "notes": (*_ENGAGEMENT_COMMON, "hs_note_body"),
    "tasks": (*_ENGAGEMENT_COMMON, "hs_task_subject", "hs_task_body", "hs_task_status", "hs_task_type",
              "hs_task_priority", "hs_task_completion_date"),
}

READ_ONLY_SYSTEM = frozenset({"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate",
                              "hs_createdate", "hs_merged_object_ids", "hs_is_closed", "hs_is_closed_won",
                              "hs_email_domain"})


class PropertyCatalog:
    """The properties of one object type: definitions in display order, and each one's column."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        self.defs: dict[str, PropertyDef] = {}
        self.groups: dict[str, PropertyGroup] = {
            name: PropertyGroup(name, label, i) for i, (name, label) in enumerate(_GROUPS[type_name])
        }
        builtin = {p.name: p for p in _BUILTIN[type_name]()}
        for name in SEEDED_COLUMNS.get(type_name, ()):  # types the world seeds nothing of have no order
            self.add(builtin.pop(name))
        for prop in builtin.values():
            self.add(prop)
        self.external: dict[str, Callable[[], frozenset[str]]] = {}

    @property
    def names(self) -> list[str]:
        return list(self.defs)

    def column(self, name: str) -> int:
        prop = self.defs.get(name)
        return prop.column if prop else -1

    def add(self, prop: PropertyDef) -> PropertyDef:
        prop.column = len(self.defs)
        self.defs[prop.name] = prop
        return prop

    def update(self, name: str, changes: Mapping[str, Any], now_iso: str) -> PropertyDef:
        prop = self.defs[name]
        updated = replace(prop, updated_at=now_iso, **changes)
        updated.column = prop.column
        self.defs[name] = updated
        return updated

    # -- value validation ------------------------------------------------------------------------

    def clean(self, values: Mapping[str, Any], *, allow_read_only: bool = False
              ) -> tuple[dict[int, str | None], list[PropertyProblem]]:
        """Validate incoming values; return them by column, normalised the way HubSpot stores them."""
        out: dict[int, str | None] = {}
        problems: list[PropertyProblem] = []
        for name, raw in values.items():
            prop = self.defs.get(name)
            if prop is None:
                problems.append(PropertyProblem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
                continue
            if (prop.read_only or name in READ_ONLY_SYSTEM) and not allow_read_only:
                problems.append(PropertyProblem(name, "READ_ONLY_VALUE",
                                                f"{name} is a read only property; its value cannot be set."))
                continue
            value, problem = self._normalise(prop, raw)
            if problem:
                problems.append(problem)
            else:
                out[prop.column] = value
        return out, problems

    def _normalise(self, prop: PropertyDef, raw: Any) -> tuple[str | None, PropertyProblem | None]:
        if raw is None:
            return None, None
        text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
        if text == "":
            return None, None
        kind = prop.type
        if kind == "number":
            try:
                number = float(text)
            except ValueError:
                return None, PropertyProblem(prop.name, "INVALID_DOUBLE", f"{text} was not a valid number.")
            return (str(int(number)) if number.is_integer() and "e" not in text.lower() else text), None
        if kind == "datetime":
            instant = parse_instant(text)
            if instant is None:
                return None, PropertyProblem(prop.name, "INVALID_DATETIME", f"{text} was not a valid datetime.")
            return iso_ms(instant), None
        if kind == "date":
            day, problem = parse_date(text)
            if day is None:
                return None, PropertyProblem(prop.name, "INVALID_DATE", problem or f"{text} was not a valid date.")
            return day, None
        if kind == "bool":
            lowered = text.lower()
            if lowered not in ("true", "false"):
                return None, PropertyProblem(prop.name, "INVALID_BOOLEAN", f"{text} was not a valid boolean.")
            return lowered, None
        if kind == "enumeration":
            allowed = prop.option_values
            if prop.external_options:
                source = self.external.get(prop.name)
                allowed = source() if source else frozenset()
                if not allowed:
                    return text, None
            chosen = text.split(";") if prop.field_type == "checkbox" else [text]
            bad = [v for v in chosen if v not in allowed]
            if bad:
                error = "INVALID_OWNER_ID" if prop.name == "hubspot_owner_id" else "INVALID_OPTION"
                message = (f"{bad[0]} is not a valid owner id" if error == "INVALID_OWNER_ID" else
                           f"{bad[0]} was not one of the allowed options: "
                           f"[{', '.join(sorted(allowed))}]")
                return None, PropertyProblem(prop.name, error, message)
            return text, None
        return text, None


def build_catalogs() -> dict[str, PropertyCatalog]:
    return {name: PropertyCatalog(name) for name in OBJECT_TYPES}

