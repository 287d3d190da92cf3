"""The seam between the core and a CRM: what a connector plugin provides, and how plugins are found.

A plugin is an object registered in the ``crmbridge.connectors`` entry-point group. It builds a
``Connector`` (the client side: pages of raw records, and a writer for write-back) and a sandbox (a
fake of the vendor's API), and declares its ``Capabilities``: everything the core would otherwise have
to know about a vendor by name. The core never imports a vendor package nor tests a source's name; it
only sees these protocols, so a new CRM is one new package.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from crmbridge.errors import ConfigError, CrmbridgeError
from crmbridge.model import EntityType
from crmbridge.writeback.contract import Writer

ENTRY_POINT_GROUP = "crmbridge.connectors"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One vendor record as the connector read it: flat properties plus associated ids."""

    stream: str
    id: str
    properties: Mapping[str, Any]
    associations: Mapping[str, Sequence[str]] = field(default_factory=dict)
    archived: bool = False


@dataclass(slots=True)
class Page:
    """A unit of work: stored atomically together with the checkpoint that follows it."""

    stream: str
    records: list[RawRecord] = field(default_factory=list)
    archived_ids: list[str] = field(default_factory=list)
    merged: dict[str, str] = field(default_factory=dict)  # merged-away id -> surviving id
    # Stored with the page. A backfill checkpoint with ``done`` ends the stream's backfill; its
    # ``next`` (if any) is added to the stream's first incremental cursor.
    checkpoint: Mapping[str, Any] | None = None
    # How many records the CRM holds live, when the page's answer says so (proves completeness).
    live_total: int | None = None
    # From ``reconcile``: every live id of the stream, spread over its pages; stored records missing
    # from the union are archived (the CRM deleted them and no answer says so otherwise).
    live_ids: list[str] | None = None


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A vendor object type the connector can read, and what it becomes."""

    name: str
    entity: EntityType
    max_page_size: int


@dataclass(frozen=True, slots=True)
class StreamState:
    """What the store knows about a stream when an incremental pass starts."""

    cursor: Mapping[str, Any] | None
    live_count: int


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """Calls made so far, by endpoint; what the economy bars are measured on."""

    calls: Mapping[str, int]
    retries: int = 0
    rate_limited: int = 0

    @property
    def total(self) -> int:
        return sum(self.calls.values())


# What a webhook event says happened to a record. Whatever the action, the worker reads the record's
# current state from the CRM (a webhook is a hint, the CRM is the truth); the action only tells it
# which ids to read and which merges to record.
EVENT_ACTIONS = frozenset({"created", "changed", "deleted", "merged", "associated"})


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One webhook delivery as the receiver got it, before anything is trusted."""

    method: str
    uri: str  # the full URI the CRM called (public address + path + query): what signatures cover
    headers: Mapping[str, str]  # case-insensitive
    body: bytes
    received_ms: int  # the receiver's clock, injected so timestamp checks are testable


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event of a verified delivery, reduced to what the inbox keeps (never a property value)."""

    event_id: str  # unique per source; a redelivery carries the same id
    stream: str  # the connector stream whose record changed
    object_id: str
    action: str  # one of EVENT_ACTIONS
    occurred_ms: int
    merged_into: str | None = None  # for "merged": the surviving id
    merged_ids: tuple[str, ...] = ()  # for "merged": the ids that disappeared
    property_name: str | None = None


class WebhookRejected(CrmbridgeError):
    """A delivery that must not reach the inbox; ``status`` is the 4xx the receiver answers."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


@runtime_checkable
class WebhookVerifier(Protocol):
    """A vendor's webhook authentication and payload format, owned by its connector plugin."""

    source: str
    max_events: int  # more events in one delivery is a 400

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Verify the delivery (signature, credentials, timestamp), then parse it.

        Raises ``WebhookRejected`` with 401 for authentication, 400 for a malformed or oversized
        batch; never anything else for bad input.
        """
        ...


@runtime_checkable
class Connector(Protocol):
    source: str

    def streams(self) -> Sequence[StreamSpec]: ...

    def backfill(self, stream: str, resume: Mapping[str, Any] | None) -> Iterator[Page]:
        """Every live record of a stream, page by page; ``resume`` is a checkpoint it yielded earlier."""
        ...

    def changes(self, stream: str, state: StreamState) -> Iterator[Page]:
        """What changed since ``state.cursor``; the last page's checkpoint is the next cursor."""
        ...

    def reconcile(self, stream: str) -> Iterator[Page]:
        """Pages of archived ids (or of every live id), asked for when counts disagree or on request."""
        ...

    def request_properties(self, wanted: Mapping[str, Collection[str]]) -> None:
        """The vendor properties the mapping reads, per stream, for vendors that return only those."""
        ...

    def start_cursor(self, stream: str) -> Mapping[str, Any]:
        """The cursor an incremental pass starts from when a backfill begins now."""
        ...

    def field_catalog(self, stream: str) -> Mapping[str, str]:
        """Custom field labels to vendor keys, so mappings can name fields by label."""
        ...

    def fetch(self, stream: str, ids: Sequence[str]) -> Iterator[Page]:
        """The current state of these records, read in batches (never one call per record).

        Live records come back as ``records``; ids the CRM no longer holds as ``archived_ids``; ids
        that were merged away in ``merged`` (old id -> survivor, the survivor among ``records``).
        """
        ...

    def followups(self, stream: str, properties: Collection[str | None] = ()) -> Sequence[str]:
        """Streams to pass incrementally after events on ``stream``: what the CRM sends no webhook for
        but a change on ``stream`` implies (a form submission changes the contact, not the events).
        ``properties`` are the changed properties the events named (None for an event that names none),
        so a follow-up can hang on the one property that implies it."""
        ...

    def usage(self) -> ApiUsage: ...

    def writer(self) -> Writer:
        """Write-back to this CRM: provisioning, batch person updates and hand-off deals, over the same
        credentials and pacing as the reads."""
        ...

    def close(self) -> None: ...


SANDBOX_TOKEN = "sandbox"  # the one credential a sandbox accepts unless told otherwise


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    seed: int = 42
    contacts: int = 1000
    faults: Mapping[str, float] = field(default_factory=dict)
    time_scale: float = 1.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    # The credentials every vendor sandbox accepts (as that vendor takes them); any other is refused
    # the way the vendor refuses an unknown one.
    tokens: tuple[str, ...] = (SANDBOX_TOKEN,)


SANDBOX_OPTION_TYPES = ("text", "int", "float", "bool", "list")


@dataclass(frozen=True, slots=True)
class SandboxOption:
    """A knob of a plugin's sandbox that ``crmbridge sandbox --option <plugin>.<name>=<value>`` sets.

    The core parses the value (``type``: text, int, float, bool, or list: comma-separated texts;
    ``choices`` if any) and puts it in
    ``SandboxOptions.extra[key]``; the plugin's sandbox reads that key. ``default`` is what the sandbox
    does when the option is not given (shown in help and errors; the core never sends it).
    """

    name: str
    key: str
    help: str
    type: str = "text"
    default: Any = None
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in SANDBOX_OPTION_TYPES:
            raise ValueError(f"sandbox option {self.name!r}: type must be one of {', '.join(SANDBOX_OPTION_TYPES)}")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a plugin declares about its CRM, so the core decides nothing by a source's name.

    ``label``: the CRM's name as people read it (notifications, reports). ``lifecycle_forward_only``:
    the CRM refuses to move a lifecycle stage backwards unless it is cleared first, so write-back clears
    it before a lowering write. ``synced_by_default``: used when ``CRMBRIDGE_SOURCES`` is not set.
    ``handoff_rank``: how strongly the CRM asks for hand-off deals when the hand-off target is ``auto``
    (the highest rank among the configured sources wins, ties go to the first configured): a CRM sellers
    work in ranks above one marketing works in. ``sandbox_options``: what ``crmbridge sandbox --option``
    may set for this plugin's sandbox.
    """

    label: str
    lifecycle_forward_only: bool = False
    synced_by_default: bool = False
    handoff_rank: int = 0
    sandbox_options: tuple[SandboxOption, ...] = ()


class ConnectorPlugin(Protocol):
    """What a package registers under the ``crmbridge.connectors`` entry-point group."""

    name: str
    capabilities: Capabilities

    def connector(self, base_url: str | None = None, **options: Any) -> Connector:
        """A connector configured from the plugin's own ``CRMBRIDGE_<SOURCE>_*`` settings and ``options``."""
        ...

    def sandbox_connector(self, base_url: str, time_scale: float = 1.0, **options: Any) -> Connector:
        """A connector pointed at this plugin's sandbox, with the sandbox's credentials and pace."""
        ...

    def sandbox(self, options: SandboxOptions) -> Any:
        """A ``crmbridge.sandbox.VendorSandbox``: the vendor's fake API as an aiohttp application."""
        ...

    def webhooks(self, **options: Any) -> WebhookVerifier:
        """The verifier of this vendor's webhooks, from the plugin's own settings and ``options``
        (``user``/``password``: the basic-auth credentials ``setup`` registers; ``secret``)."""
        ...


@cache
def plugins() -> dict[str, ConnectorPlugin]:
    found: dict[str, ConnectorPlugin] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.load()
    return found


def plugin(name: str) -> ConnectorPlugin:
    available = plugins()
    if name not in available:
        known = ", ".join(sorted(available)) or "none installed"
        raise ConfigError(f"unknown source {name!r} (installed connectors: {known})")
    return available[name]


def capabilities(name: str) -> Capabilities:
    """What the installed plugin ``name`` declares; a source no plugin provides (a name in a test, a
    connector being uninstalled) declares nothing beyond its name."""
    found = plugins().get(name)
    return found.capabilities if found is not None else Capabilities(label=name)


def default_sources() -> list[str]:
    """The sources used when none are configured: the installed plugins that ask for it, by name."""
    return [name for name, p in sorted(plugins().items()) if p.capabilities.synced_by_default]
