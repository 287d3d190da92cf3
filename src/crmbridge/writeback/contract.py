"""What write-back asks of a connector: provisioning, batch updates of people, and deals.

The core speaks canonical field names (``score``, ``lifecycle_stage``...) and plain values (ints,
strings, ISO-8601 UTC instants); each connector turns them into its vendor's properties or custom
fields and knows its vendor's batch sizes and rate limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

FieldType = Literal["number", "text", "datetime"]

# An explicit "clear this field" value: a forward-only CRM moves a lifecycle stage backwards only once
# it is cleared.
CLEAR = ""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field write-back owns on a CRM object; ``key`` is canonical, ``label`` what a user sees."""

    key: str
    label: str
    type: FieldType
    description: str = ""


PERSON_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("score", "crmbridge score", "number", "Lead score: fit plus engagement, after decay"),
    FieldSpec("fit_score", "crmbridge fit score", "number", "Points from the company and the person (ICP fit)"),
    FieldSpec("engagement_score", "crmbridge engagement score", "number", "Points from behaviour, after decay"),
    FieldSpec("score_reasons", "crmbridge score reasons", "text", "The rules that contributed most"),
    FieldSpec("scored_at", "crmbridge scored at", "datetime", "When the written score last changed"),
    FieldSpec("handoff_at", "crmbridge hand-off time", "datetime", "When the person was handed to sales"),
    FieldSpec("handoff_owner", "crmbridge hand-off owner", "text", "Who the person was handed to, and why"),
    # The closed loop: what sales made of the hand-off, written back to the person in every CRM.
    FieldSpec("sales_outcome", "crmbridge sales outcome", "text",
              "What sales made of the hand-off: contacted, meeting booked, won, lost or rejected"),
    FieldSpec("sales_outcome_reason", "crmbridge sales outcome reason", "text", "The seller's reason (lost, rejected)"),
    FieldSpec("sales_outcome_at", "crmbridge sales outcome time", "datetime", "When sales recorded the outcome"),
)
# Deal fields: the hand-off's idempotency key (unique where the CRM can enforce it) and its summary.
DEAL_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("handoff_key", "crmbridge hand-off key", "text", "Idempotency key of the hand-off that made it"),
    FieldSpec("score_summary", "crmbridge score summary", "text", "Score, stage and the top reasons"),
    # The response-time SLA, where sellers work: written by the SLA engine when a value changes.
    FieldSpec("sla_due_at", "crmbridge SLA due at", "datetime", "When the first touch is due (business time)"),
    FieldSpec("sla_status", "crmbridge SLA status", "text", "on track, at risk, breached, met or missed"),
    FieldSpec("sla_first_touch_at", "crmbridge first touch at", "datetime", "The first sales touch after hand-off"),
    FieldSpec("sla_business_minutes", "crmbridge minutes to first touch", "number",
              "Business minutes from hand-off to the first sales touch"),
)


@dataclass(frozen=True, slots=True)
class ProvisionSpec:
    person_fields: Sequence[FieldSpec] = PERSON_FIELDS
    deal_fields: Sequence[FieldSpec] = DEAL_FIELDS
    pipeline: str | None = None  # a pipeline's label or id; None = the CRM's default pipeline
    stage: str = "Sales-ready leads"
    webhook_url: str | None = None  # where the CRM should send change events, if it supports it
    webhook_user: str | None = None
    webhook_password: str | None = None


@dataclass(frozen=True, slots=True)
class ProvisionStep:
    """One thing ``setup`` checked: ``created`` (or ``would create`` on a dry run) or ``present``."""

    what: str
    name: str
    status: Literal["created", "present", "would create", "updated", "skipped"]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Provisioned:
    """Where hand-offs go and how fields are addressed, as found (or made) by provisioning."""

    pipeline_id: str
    stage_id: str
    steps: tuple[ProvisionStep, ...] = ()
    field_keys: Mapping[str, str] = field(default_factory=dict)  # canonical key -> vendor key

    @property
    def changed(self) -> bool:
        return any(s.status not in ("present", "skipped") for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"pipeline_id": self.pipeline_id, "stage_id": self.stage_id, "field_keys": dict(self.field_keys)}


@dataclass(frozen=True, slots=True)
class PersonUpdate:
    """New values for one CRM person (canonical field -> value; ``CLEAR`` empties a field)."""

    source_id: str
    values: Mapping[str, Any]


def utc_instant(value: Any, key: str) -> datetime:
    """A datetime field's value as an aware UTC datetime: an aware datetime, or ISO-8601 text (UTC when it
    names no offset, as the contract's texts are). Each connector then writes it in its vendor's format."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{key}: {value!r} is not an ISO-8601 instant") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{key}: {value!r} is not an aware datetime or an ISO-8601 UTC instant")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DealUpdate:
    """New values for one CRM deal: canonical deal fields (``sla_status``...), and ``owner_id`` to hand the
    deal to another seller (an SLA reassignment)."""

    deal_id: str
    values: Mapping[str, Any]


@dataclass
class WriteResult:
    written: list[str] = field(default_factory=list)  # source ids the CRM accepted
    failed: dict[str, str] = field(default_factory=dict)  # source id -> why
    calls: int = 0


@dataclass(frozen=True, slots=True)
class DealRef:
    """A deal as hand-off needs to see it."""

    id: str
    name: str | None = None
    key: str | None = None
    open: bool = True
    stage_id: str | None = None
    owner_id: str | None = None
    person_ids: tuple[str, ...] = ()
    company_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DealDraft:
    key: str
    title: str
    pipeline_id: str
    stage_id: str
    person_id: str
    company_id: str | None
    owner_id: str | None
    summary: str
    field_keys: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PersonDraft:
    """A person to create in a CRM that does not know them yet (a two-CRM hand-off)."""

    email: str
    first_name: str | None
    last_name: str | None
    title: str | None
    phone: str | None
    company_name: str | None
    company_domain: str | None


def create_each(drafts: Sequence[DealDraft], create: Callable[[DealDraft], DealRef],
                refused: tuple[type[Exception], ...]) -> dict[str, DealRef | Exception]:
    """One create per draft, by hand-off key: a draft the CRM refuses keeps its error, the others go on."""
    out: dict[str, DealRef | Exception] = {}
    for draft in drafts:
        try:
            out[draft.key] = create(draft)
        except refused as exc:
            out[draft.key] = exc
    return out


@runtime_checkable
class Writer(Protocol):
    """Implemented by a connector that can take write-back."""

    source: str
    batch_size: int  # people per write call

    def provision(self, spec: ProvisionSpec, *, dry_run: bool = False) -> Provisioned: ...

    def write_people(self, updates: Sequence[PersonUpdate], field_keys: Mapping[str, str]) -> WriteResult:
        """Apply updates in as few calls as the vendor allows; a rejected record never fails the rest."""
        ...

    def open_deals(self, person_ids: Sequence[str], company_ids: Sequence[str], keys: Sequence[str],
                   field_keys: Mapping[str, str]) -> list[DealRef]:
        """Open deals of these people or companies, and any deal carrying one of these hand-off keys."""
        ...

    def create_deals(self, drafts: Sequence[DealDraft]) -> dict[str, DealRef | Exception]:
        """Create deals (in batches where the CRM has them), by hand-off key; a key the CRM already holds
        gives back that deal; a deal the CRM refuses gives its error and never fails the others."""
        ...

    def ensure_people(self, drafts: Sequence[PersonDraft]) -> dict[str, tuple[str, str | None]]:
        """CRM ids (person, company) for people by e-mail, creating those the CRM does not know."""
        ...

    def write_deals(self, updates: Sequence[DealUpdate], field_keys: Mapping[str, str]) -> WriteResult:
        """Apply deal updates (fields, owner) in as few calls as the vendor allows; a rejected deal never
        fails the rest. ``written``/``failed`` are keyed by deal id."""
        ...

    def deal_url(self, deal_id: str) -> str | None: ...
