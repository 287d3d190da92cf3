"""Every Pipedrive object crmbridge reads, declared in a few lines each; vendor constants live here."""

from __future__ import annotations

from dataclasses import dataclass

from crmbridge.model import EntityType

V2_PAGE = 500  # API v2 lists: the maximum ``limit``; a page costs the same tokens whatever its size
MAX_CUSTOM_FIELDS = 15  # API v2 lists: ``custom_fields`` names at most this many keys
V1_PAGE = 500  # v1 ``*Fields`` and leads: ``start``/``limit`` paging
V2_PREFIX = "/api/v2"
V1_PREFIX = "/v1"

# Daily token budget: 30,000 x plan multiplier x seats; burst per rolling 2-second window (API token).
PLAN_MULTIPLIER = {"lite": 1, "growth": 2, "premium": 5, "ultimate": 7}
PLAN_BURST = {"lite": 20, "growth": 40, "premium": 100, "ultimate": 120}
PLAN_BURST_OAUTH = {"lite": 80, "growth": 160, "premium": 400, "ultimate": 480}  # per OAuth access token
BURST_WINDOW_SECONDS = 2.0
SEARCH_BURST = 10
DAILY_TOKENS_PER_SEAT = 30_000
DELETED_RETENTION_DAYS = 30  # deleted deals stay listable with status=deleted this long

# Token costs per operation: API v2 from ``x-token-cost`` in Pipedrive's OpenAPI description; v1 costs
# twice as much as the same v2 operation (list 20, get 2, write 10, delete 6, search 40).
V2_COST = {"list": 10, "get": 1, "create": 5, "update": 5, "delete": 3, "search": 20,
           "list_archived_deals": 20, "list_pipelines": 5, "list_stages": 5}
V1_COST = {"list": 20, "get": 2, "create": 10, "update": 10, "delete": 6, "search": 40}

DEAL_STATUSES_WITH_DELETED = "open,won,lost,deleted"


@dataclass(frozen=True, slots=True)
class V2Stream:
    """An API v2 object type: listed by cursor, changes found by ``updated_since``."""

    name: str
    entity: EntityType
    path: str  # under /api/v2
    fields: str | None = None  # the v1 ``*Fields`` endpoint describing its custom fields
    deals: bool = False  # deleted deals need status=deleted; archived ones live at /deals/archived

    @property
    def endpoint(self) -> str:
        return f"GET {V2_PREFIX}/{self.path}"


@dataclass(frozen=True, slots=True)
class SpecialStream:
    """Users (v1) and pipelines (v2 pipelines with their stages): small, read whole every pass."""

    name: str
    entity: EntityType
    page_size: int


USERS = SpecialStream("users", EntityType.OWNER, V1_PAGE)
PIPELINES = SpecialStream("pipelines", EntityType.PIPELINE, V2_PAGE)
ORGANIZATIONS = V2Stream("organizations", EntityType.COMPANY, "organizations", fields="organizationFields")
PERSONS = V2Stream("persons", EntityType.PERSON, "persons", fields="personFields")
DEALS = V2Stream("deals", EntityType.DEAL, "deals", fields="dealFields", deals=True)
ACTIVITIES = V2Stream("activities", EntityType.ACTIVITY, "activities")

# Reading order: what others refer to comes first, so a partial store is still coherent.
ALL_STREAMS: tuple[V2Stream | SpecialStream, ...] = (USERS, PIPELINES, ORGANIZATIONS, PERSONS, DEALS, ACTIVITIES)
BY_NAME = {s.name: s for s in ALL_STREAMS}

# API v2 lists take ``ids``: up to this many comma-separated ids per call (persons, organizations,
# deals, deals/archived, activities).
IDS_PER_CALL = 100

# Webhooks v2: the ``meta.entity`` of an event and the stream whose record it names. A stage belongs
# to its pipeline's record here, so a stage event names the pipeline (``pipeline_id`` of its data).
WEBHOOK_STREAMS = {"person": "persons", "organization": "organizations", "deal": "deals",
                   "activity": "activities", "user": "users", "pipeline": "pipelines", "stage": "pipelines"}
WEBHOOK_ACTIONS = {"create": "created", "change": "changed", "delete": "deleted"}  # v2 -> crmbridge
WEBHOOK_OBJECTS = ("person", "organization", "deal", "activity")  # what ``crmbridge setup`` subscribes
WEBHOOK_VERSION = "2.0"
