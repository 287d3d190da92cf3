"""The seam between the core and a CRM: what a connector plugin provides, and how plugins are found.

A plugin is an object registered in the ``crmbridge.connectors`` entry-point group. It builds a
``Connector`` (the client side: pages of raw records) and a sandbox (a fake of the vendor's API).
The core never imports a vendor package; it only sees these protocols.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from crmbridge.errors import ConfigError
from crmbridge.model import EntityType

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

    def usage(self) -> ApiUsage: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    seed: int = 42
    contacts: int = 1000
    faults: Mapping[str, float] = field(default_factory=dict)
    time_scale: float = 1.0
    extra: Mapping[str, Any] = field(default_factory=dict)


class ConnectorPlugin(Protocol):
    """What a package registers under the ``crmbridge.connectors`` entry-point group."""

    name: str

    def connector(self, base_url: str | None = None, **options: Any) -> Connector:
        """A connector configured from the plugin's own ``CRMBRIDGE_<SOURCE>_*`` settings and ``options``."""
        ...

    def sandbox_connector(self, base_url: str, time_scale: float = 1.0, **options: Any) -> Connector:
        """A connector pointed at this plugin's sandbox, with the sandbox's credentials and pace."""
        ...

    def sandbox(self, options: SandboxOptions) -> Any:
        """A ``crmbridge.sandbox.VendorSandbox``: the vendor's fake API as an aiohttp application."""
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
