"""Canonical model: the vendor-free shapes every connector maps into and every decision reads.

Each record keeps the (source, source_id) it came from; references between records (a person's
companies, an activity's people) are source ids within the same source. Identity across sources is
resolved by the store, never by changing these ids.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class EntityType(StrEnum):
    PERSON = "person"
    COMPANY = "company"
    ACTIVITY = "activity"
    DEAL = "deal"
    OWNER = "owner"
    PIPELINE = "pipeline"


class ActivityKind(StrEnum):
    """The closed vocabulary of things a person or a seller can do."""

    FORM_SUBMISSION = "form_submission"
    PAGE_VIEW = "page_view"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    EMAIL_REPLY = "email_reply"
    CONTENT_DOWNLOAD = "content_download"
    MEETING_BOOKED = "meeting_booked"
    CHAT = "chat"
    UNSUBSCRIBE = "unsubscribe"
    EMAIL_BOUNCE = "email_bounce"
    CALL = "call"
    MEETING = "meeting"
    EMAIL_SENT = "email_sent"
    NOTE = "note"
    TASK = "task"
    OTHER = "other"

    @property
    def default_actor(self) -> ActorKind:
        return ActorKind.OWNER if self in _SELLER_KINDS else ActorKind.PERSON

    @property
    def is_sales_touch(self) -> bool:
        """A touch that stops a response-time clock: the seller reached the lead."""
        return self in _SALES_TOUCHES


class ActorKind(StrEnum):
    PERSON = "person"
    OWNER = "owner"


_SELLER_KINDS = frozenset(
    {ActivityKind.CALL, ActivityKind.MEETING, ActivityKind.EMAIL_SENT, ActivityKind.NOTE, ActivityKind.TASK}
)
_SALES_TOUCHES = frozenset({ActivityKind.CALL, ActivityKind.MEETING, ActivityKind.EMAIL_SENT})


class LifecycleStage(StrEnum):
    """The lifecycle framework every CRM's stages are mapped onto; ordered from first touch to advocate."""

    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    EVANGELIST = "evangelist"
    OTHER = "other"

    @property
    def rank(self) -> int:
        return _STAGE_RANK[self]

    @property
    def is_protected(self) -> bool:
        """Stages sales or finance own: scoring never moves a record out of them."""
        return self in (LifecycleStage.OPPORTUNITY, LifecycleStage.CUSTOMER, LifecycleStage.EVANGELIST)


_STAGE_RANK = {stage: i for i, stage in enumerate(LifecycleStage)}
_STAGE_RANK[LifecycleStage.OTHER] = -1


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class SourceRecord(BaseModel):
    """What every canonical record carries about where it came from."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)
    entity: ClassVar[EntityType]

    source: str
    source_id: str
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    archived: bool = False
    merged_into: str | None = Field(default=None, description="source id of the surviving record")
    merged_ids: list[str] = Field(default_factory=list, description="source ids merged into this one")
    source_ids: dict[str, str] = Field(
        default_factory=dict, description="on a merged (canonical) record: the record's id in each source"
    )
    custom: dict[str, Any] = Field(default_factory=dict, description="custom fields, keyed by their name")
    extra: dict[str, Any] = Field(default_factory=dict, description="unmapped vendor properties, verbatim")

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.source_id)


class Person(SourceRecord):
    entity: ClassVar[EntityType] = EntityType.PERSON

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    seniority: str | None = None
    role: str | None = None
    department: str | None = None
    phone: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    company_ids: list[str] = Field(default_factory=list)
    owner_id: str | None = None
    lifecycle_stage: LifecycleStage | None = None
    lead_status: str | None = None
    unsubscribed: bool = False
    bounced: bool = False

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class Company(SourceRecord):
    entity: ClassVar[EntityType] = EntityType.COMPANY

    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    technologies: list[str] = Field(default_factory=list)
    tier: str | None = Field(default=None, description="target-account tier, if the CRM keeps one")
    owner_id: str | None = None
    lifecycle_stage: LifecycleStage | None = None


class Activity(SourceRecord):
    entity: ClassVar[EntityType] = EntityType.ACTIVITY

    kind: ActivityKind
    occurred_at: UtcDatetime
    actor: ActorKind | None = None
    person_ids: list[str] = Field(default_factory=list)
    company_ids: list[str] = Field(default_factory=list)
    deal_ids: list[str] = Field(default_factory=list)
    owner_id: str | None = None
    subject: str | None = None
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="form name, URL, answers, content type, direction, outcome"
    )

    def model_post_init(self, __context: Any) -> None:
        if self.actor is None:
            self.actor = self.kind.default_actor


class Deal(SourceRecord):
    entity: ClassVar[EntityType] = EntityType.DEAL

    name: str | None = None
    amount: float | None = None
    currency: str | None = None
    pipeline_id: str | None = None
    stage_id: str | None = None
    status: DealStatus | None = None
    owner_id: str | None = None
    person_ids: list[str] = Field(default_factory=list)
    company_ids: list[str] = Field(default_factory=list)
    close_date: date | None = None
    closed_at: UtcDatetime | None = None


class Owner(SourceRecord):
    entity: ClassVar[EntityType] = EntityType.OWNER

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    active: bool = True
    timezone: str | None = None
    teams: list[str] = Field(default_factory=list)


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_id: str
    label: str
    display_order: int = 0
    probability: float | None = None
    is_closed: bool = False
    is_won: bool = False


class Pipeline(SourceRecord):
    entity: ClassVar[EntityType] = EntityType.PIPELINE

    label: str
    object_type: str = "deal"
    display_order: int = 0
    stages: list[Stage] = Field(default_factory=list)


ENTITY_CLASSES: dict[EntityType, type[SourceRecord]] = {
    cls.entity: cls for cls in (Person, Company, Activity, Deal, Owner, Pipeline)
}

AnyRecord = Person | Company | Activity | Deal | Owner | Pipeline
