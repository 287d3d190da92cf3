"""``PipedriveConnector``: Pipedrive's objects as pages of raw records, for backfill and incremental sync.

Backfill lists each v2 object type by id, 500 records a page (a page costs 10 tokens whatever its
size), and archived deals after the live ones. An incremental pass asks each type for what changed
since its cursor (``updated_since``, minus a look-back overlap, oldest first): with nothing changed
that is one call per object type. Deleted deals come back with ``status=deleted`` (for 30 days) and
archived deals from ``/deals/archived``. Deleted persons, organizations and activities are in no v2
list, so only ``reconcile`` (every live id, 500 a page) finds them; a merge is the deletion of the
merged-away record plus updates of the survivor and of what moved to it.

Webhook events are read back with ``fetch``: the v2 lists' ``ids`` parameter, 100 ids a call (10
tokens), deals also from ``/deals/archived`` for the ids the live list did not return; users and
pipelines have no ``ids`` parameter and are small, so they are read whole (one call, two calls).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crmbridge.connectors import ApiUsage, Page, RawRecord, StreamSpec, StreamState
from crmbridge.errors import ConfigError, PermanentError
from crmbridge.logs import get_logger
from crmbridge.mapping.transforms import to_datetime
from crmbridge.store.crm_facts import FieldCatalog as KeptCatalog
from crmbridge_pipedrive import records as R
from crmbridge_pipedrive import streams as S
from crmbridge_pipedrive.client import PipedriveClient
from crmbridge_pipedrive.fields import FieldCatalog, is_custom_key
from crmbridge_pipedrive.settings import PipedriveSettings

if TYPE_CHECKING:
    from crmbridge_pipedrive.writer import PipedriveWriter

log = get_logger("crmbridge.pipedrive")


def iso(moment: datetime) -> str:
    """RFC 3339 with second precision, as ``updated_since`` takes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _deleted(item: Mapping[str, Any]) -> bool:
    return bool(item.get("is_deleted")) or item.get("status") == "deleted"


def _ms(stamp: Any) -> int | None:
    """A Pipedrive ``update_time`` as epoch milliseconds (None when absent or unreadable)."""
    moment = to_datetime(stamp) if stamp else None
    return None if moment is None else int(moment.timestamp() * 1000)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def since_ms(cursor: Mapping[str, Any]) -> int | None:
    """Where a stream's incremental cursor says the last pass got to, in epoch milliseconds.

    ``since_ms`` since cursors are watermarks; a cursor stored before that (``since``: the newest
    ``update_time`` seen, RFC 3339) still reads, so an upgraded deployment needs no new backfill.
    """
    if cursor.get("since_ms") is not None:
        return int(cursor["since_ms"])
    return _ms(cursor.get("since"))


class _Newest:
    """The newest change a walk has seen: its ``update_time`` (ms) and the id of the record seen last at it."""

    def __init__(self, since: int | None) -> None:
        self.ms: int | None = since
        self.last_id: str | None = None

    def see(self, items: Sequence[Mapping[str, Any]]) -> None:
        for item in items:  # oldest first: on a tie, the record seen later is the last one
            stamp = _ms(item.get("update_time"))
            if stamp is not None and (self.ms is None or stamp >= self.ms):
                self.ms, self.last_id = stamp, str(item["id"])

    def checkpoint(self) -> dict[str, Any]:
        """The watermark part of the cursor; a walk that saw nothing starts the next one from now."""
        out: dict[str, Any] = {"since_ms": _now_ms() // 1000 * 1000 if self.ms is None else self.ms}
        if self.last_id is not None:
            out["last_id"] = self.last_id
        return out


class PipedriveConnector:
    source = "pipedrive"

    def __init__(self, client: PipedriveClient, settings: PipedriveSettings) -> None:
        self.client = client
        self.settings = settings
        self._wanted: dict[str, set[str]] = {}
        # Custom-field catalogs, held for the process; the core keeps them in the store between processes
        # (held_field_catalog, restore_field_catalog). When each was read from the API, in epoch ms:
        self._catalogs: dict[str, FieldCatalog] = {}
        self._read_ms: dict[str, int] = {}
        self._fresh: set[str] = set()  # catalogs read from the API by this process (not handed back by the core)
        self._pipeline_ids: list[str] | None = None  # the live pipelines the last read of them listed
        self._lock = threading.Lock()

    def writer(self) -> PipedriveWriter:
        """Write-back through the same client (one pacer, one token count)."""
        from crmbridge_pipedrive.writer import PipedriveWriter

        return PipedriveWriter(self.client, self.settings)

    @classmethod
    def from_settings(cls, base_url: str | None = None, **overrides: Any) -> PipedriveConnector:
        values = {k: v for k, v in overrides.items() if v is not None}
        if base_url:
            values["base_url"] = base_url
        settings = PipedriveSettings(**values)
        if settings.api_token is None:
            raise ConfigError("no Pipedrive API token: set CRMBRIDGE_PIPEDRIVE_API_TOKEN (Settings > Personal "
                              "preferences > API in Pipedrive)", key="CRMBRIDGE_PIPEDRIVE_API_TOKEN")
        return cls(PipedriveClient(settings), settings)

    # -- protocol ------------------------------------------------------------------------------

    def streams(self) -> Sequence[StreamSpec]:
        return [StreamSpec(s.name, s.entity, S.V2_PAGE if isinstance(s, S.V2Stream) else s.page_size)
                for s in S.ALL_STREAMS]

    def request_properties(self, wanted: Mapping[str, Collection[str]]) -> None:
        """The properties each mapping reads: only those custom fields are asked for."""
        self._wanted = {k: set(v) for k, v in wanted.items()}

    def usage(self) -> ApiUsage:
        return self.client.usage()

    def close(self) -> None:
        self.client.close()

    def field_catalog(self, stream: str) -> Mapping[str, str]:
        """Label -> key, read from Pipedrive (the core caches it; asking means it wants a fresh one)."""
        spec = self._spec(stream)
        if not isinstance(spec, S.V2Stream) or spec.fields is None:
            return {}
        return self._catalog(spec, reload=True).labels()

    def held_field_catalog(self, stream: str) -> KeptCatalog | None:
        """The catalog this process holds (labels, and the field types and option labels values need)."""
        with self._lock:
            catalog, read = self._catalogs.get(stream), self._read_ms.get(stream)
        if catalog is None or read is None:
            return None
        return KeptCatalog(catalog.labels(), read, catalog.to_state())

    def restore_field_catalog(self, stream: str, catalog: KeptCatalog) -> None:
        """A catalog the core kept: used until an answer shows a field or option it lacks."""
        spec = S.BY_NAME.get(stream)
        if not isinstance(spec, S.V2Stream) or spec.fields is None or not catalog.detail:
            return
        with self._lock:
            if self._read_ms.get(stream, -1) < catalog.fetched_ms:
                self._catalogs[stream] = FieldCatalog.from_state(catalog.detail)
                self._read_ms[stream] = catalog.fetched_ms
                self._fresh.discard(stream)

    def start_cursor(self, stream: str) -> Mapping[str, Any]:
        """Now, to the second: Pipedrive stamps changes in whole seconds."""
        return {"since_ms": _now_ms() // 1000 * 1000}

    def backfill(self, stream: str, resume: Mapping[str, Any] | None) -> Iterator[Page]:
        spec = self._spec(stream)
        if spec is S.USERS:
            return self._users(backfill=True)
        if spec is S.PIPELINES:
            return self._pipelines(backfill=True)
        assert isinstance(spec, S.V2Stream)
        return self._list(spec, dict(resume or {}))

    def changes(self, stream: str, state: StreamState) -> Iterator[Page]:
        spec = self._spec(stream)
        cursor = dict(state.cursor or {})
        if spec is S.USERS:
            return self._users(backfill=False)
        if spec is S.PIPELINES:
            return self._pipelines(backfill=False)
        assert isinstance(spec, S.V2Stream)
        return self._changes(spec, since_ms(cursor))

    def reconcile(self, stream: str) -> Iterator[Page]:
        """Every live id of a v2 stream, 500 a page: what the store holds beyond them was deleted.

        Pipedrive's v2 lists never show deleted persons, organizations or activities, and deals only
        for 30 days, so a full id listing is the one way to find those deletions (and the records
        merged away) without webhooks. It costs 10 tokens per 500 records, a listing with the fewest
        fields the API allows (one custom field). Users and pipelines are read whole every pass: every
        user is listed, and pipelines answer with the ids the pass's own read saw (no call).
        """
        spec = self._spec(stream)
        if spec is S.PIPELINES:
            with self._lock:
                seen = self._pipeline_ids
            return iter(()) if seen is None else iter([Page(stream, live_ids=list(seen))])
        if not isinstance(spec, S.V2Stream):
            return iter(())
        return self._live_ids(spec)

    def fetch(self, stream: str, ids: Sequence[str]) -> Iterator[Page]:
        """The current state of these records, one page per 100 ids; ids Pipedrive no longer lists
        (deleted, or merged away: merges are not visible on read) come back as ``archived_ids``."""
        spec = self._spec(stream)
        wanted = list(dict.fromkeys(str(i).strip() for i in ids))
        if not wanted:
            return iter(())
        if spec is S.USERS:
            return self._fetch_users(wanted)
        if spec is S.PIPELINES:
            return self._fetch_pipelines(wanted)
        assert isinstance(spec, S.V2Stream)
        return self._fetch_v2(spec, wanted)

    def followups(self, stream: str, properties: Collection[str | None] = ()) -> Sequence[str]:
        """None: every object crmbridge reads has webhooks v2 of its own (a merge sends a change for
        each record moved to the survivor, and stages send stage events)."""
        return ()

    # -- custom fields -------------------------------------------------------------------------

    def _spec(self, stream: str) -> S.V2Stream | S.SpecialStream:
        if stream not in S.BY_NAME:
            raise ConfigError(f"Pipedrive has no stream {stream!r} (streams: {', '.join(S.BY_NAME)})")
        return S.BY_NAME[stream]

    def _catalog(self, spec: S.V2Stream, *, reload: bool = False) -> FieldCatalog:
        if spec.fields is None:
            return FieldCatalog()
        with self._lock:
            known = self._catalogs.get(spec.name)
            if known is not None and not (reload and spec.name not in self._fresh):
                return known
        read = _now_ms()
        catalog = FieldCatalog.from_v1(self.client.fields(spec.fields))
        with self._lock:
            self._catalogs[spec.name] = catalog
            self._read_ms[spec.name] = read
            self._fresh.add(spec.name)
        return catalog

    def _custom_param(self, spec: S.V2Stream) -> dict[str, str]:
        """``custom_fields``: the keys the mapping reads (all custom fields past the API's 15)."""
        wanted = self._wanted.get(spec.name)
        if spec.fields is None or not wanted:
            return {}
        catalog = self._catalog(spec)
        if any(is_custom_key(n) and n not in catalog.by_key for n in wanted):
            catalog = self._catalog(spec, reload=True)  # a field created since the kept catalog was read
        labels = catalog.labels()
        unresolved = sorted(n for n in wanted if n in labels and not is_custom_key(n))
        if unresolved:
            raise ConfigError(f"the pipedrive mapping of {spec.name} names custom fields by label "
                              f"({', '.join(unresolved)}) but was loaded without Pipedrive's field catalog: "
                              f"load it with crmbridge.sync.load_mapping", key=f"streams.{spec.name}")
        keys = sorted(n for n in wanted if n in catalog.by_key)
        if not keys or len(keys) > S.MAX_CUSTOM_FIELDS:
            return {}
        return {"custom_fields": ",".join(keys)}

    def _slim_param(self, spec: S.V2Stream) -> dict[str, str]:
        """The fewest fields a v2 list gives: one custom field (the standard ones always come)."""
        if spec.fields is None:
            return {}
        with self._lock:
            catalog = self._catalogs.get(spec.name)
        known = sorted(catalog.by_key) if catalog is not None else sorted(
            n for n in self._wanted.get(spec.name, ()) if is_custom_key(n))
        return {"custom_fields": known[0]} if known else {}

    # -- pages ---------------------------------------------------------------------------------

    def _walk(self, path: str, params: Mapping[str, Any], cursor: str | None = None
              ) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        """A v2 list, page by page, as (records, cursor of the next page)."""
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            try:
                page = self.client.v2_list(path, query)
            except PermanentError as exc:
                if cursor is None or exc.status != 400:
                    raise
                # A cursor kept across a crash that Pipedrive no longer accepts: start the list over.
                log.warning("pipedrive.cursor_rejected", path=path, status=exc.status)
                cursor = None
                continue
            yield page.items, page.next_cursor
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def _page(self, spec: S.V2Stream, items: list[dict[str, Any]], *, archived: bool = False) -> Page:
        catalog = self._catalog(spec) if spec.fields else None
        if catalog is not None and not all(catalog.covers(i.get("custom_fields")) for i in items):
            catalog = self._catalog(spec, reload=True)  # a field or option added since the catalog was read
        build = R.BUILDERS[spec.name]
        page = Page(spec.name)
        for item in items:
            if _deleted(item):  # deals listed with status=deleted
                page.archived_ids.append(str(item["id"]))
            elif archived:
                page.records.append(R.deal(item, catalog, archived=True))
            else:
                page.records.append(build(item, catalog))
        return page

    def _live_ids(self, spec: S.V2Stream) -> Iterator[Page]:
        # Deals: the default statuses (open, won, lost) are the live ones; archived deals are stored
        # as archived records, so they are not among the live ids either.
        params = {"limit": S.V2_PAGE, "sort_by": "id", "sort_direction": "asc", **self._slim_param(spec)}
        for items, _ in self._walk(spec.path, params):
            yield Page(spec.name, live_ids=[str(i["id"]) for i in items if not _deleted(i)])

    def _list(self, spec: S.V2Stream, resume: dict[str, Any]) -> Iterator[Page]:
        params = {"limit": S.V2_PAGE, "sort_by": "id", "sort_direction": "asc", **self._custom_param(spec)}
        phase = resume.get("phase", "live")
        cursor = resume.get("cursor")
        if phase == "live":
            for items, nxt in self._walk(spec.path, params, cursor):
                page = self._page(spec, items)
                if nxt:
                    page.checkpoint = {"phase": "live", "cursor": nxt}
                elif spec.deals:
                    page.checkpoint = {"phase": "archived", "cursor": None}
                else:
                    page.checkpoint = {"phase": "live", "cursor": None, "done": True}
                yield page
            cursor = None
        if spec.deals:
            for items, nxt in self._walk("deals/archived", params, cursor):
                page = self._page(spec, items, archived=True)
                page.checkpoint = {"phase": "archived", "cursor": nxt, "done": nxt is None}
                yield page

    def _changes(self, spec: S.V2Stream, since: int | None) -> Iterator[Page]:
        """Records updated since the watermark (less the look-back), oldest first; checkpoints carry
        ``since_ms`` (the newest ``update_time`` seen) and ``last_id`` (the record seen last at it)."""
        start = 0 if since is None else max(0, since - int(self.settings.lookback_seconds * 1000))
        window = iso(datetime.fromtimestamp(start / 1000, tz=UTC))
        params = {"limit": S.V2_PAGE, "sort_by": "update_time", "sort_direction": "asc", "updated_since": window,
                  **self._custom_param(spec)}
        newest = _Newest(since)
        if spec.deals:
            # Archived deals first, and no checkpoint before the live walk ends: both must be covered.
            for items, _ in self._walk("deals/archived", params):
                newest.see(items)
                yield self._page(spec, items, archived=True)
            params["status"] = S.DEAL_STATUSES_WITH_DELETED
        for items, nxt in self._walk(spec.path, params):
            page = self._page(spec, items)
            newest.see(items)
            # Oldest first: everything before the last record seen is done (ties are re-read). Deals
            # checkpoint only at the end, when the archived walk is covered too.
            if nxt is None or (not spec.deals and newest.ms is not None):
                page.checkpoint = newest.checkpoint()
            yield page

    # -- reading records by id ------------------------------------------------------------------

    def _fetch_v2(self, spec: S.V2Stream, wanted: list[str]) -> Iterator[Page]:
        numeric = [i for i in wanted if i.isascii() and i.isdigit()]
        unknown = [i for i in wanted if not (i.isascii() and i.isdigit())]  # no Pipedrive record has such an id
        for start in range(0, len(numeric), S.IDS_PER_CALL):
            page = self._by_ids(spec, numeric[start:start + S.IDS_PER_CALL])
            if start == 0:
                page.archived_ids.extend(unknown)
            yield page
        if not numeric:
            yield Page(spec.name, archived_ids=unknown)

    def _listed(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [item for items, _ in self._walk(path, params) for item in items]

    def _by_ids(self, spec: S.V2Stream, chunk: list[str]) -> Page:
        """At most 100 ids: one list call (deals: a second one, of the archived, for any not found)."""
        params: dict[str, Any] = {"ids": ",".join(chunk), "limit": S.IDS_PER_CALL, **self._custom_param(spec)}
        if spec.deals:
            params["status"] = S.DEAL_STATUSES_WITH_DELETED  # deleted deals come back as archived ids
        items = self._listed(spec.path, params)
        page = self._page(spec, items)
        found = {str(i["id"]) for i in items}
        missing = [i for i in chunk if i not in found]
        if spec.deals and missing:
            archived = self._listed("deals/archived", {**params, "ids": ",".join(missing)})
            extra = self._page(spec, archived, archived=True)
            page.records.extend(extra.records)
            page.archived_ids.extend(extra.archived_ids)
            found.update(str(i["id"]) for i in archived)
            missing = [i for i in missing if i not in found]
        page.archived_ids.extend(missing)
        return page

    def _fetch_users(self, wanted: list[str]) -> Iterator[Page]:
        users = {str(u["id"]): u for u in self.client.users()}
        page = Page("users")
        for uid in wanted:
            item = users.get(uid)
            if item is None or item.get("is_deleted"):
                page.archived_ids.append(uid)
            else:
                page.records.append(R.user(item))
        yield page

    def _fetch_pipelines(self, wanted: list[str]) -> Iterator[Page]:
        pipelines = {str(p["id"]): p for p in self._all("pipelines")}
        stages = self._all("stages")
        page = Page("pipelines")
        for pid in wanted:
            item = pipelines.get(pid)
            if item is None or item.get("is_deleted"):
                page.archived_ids.append(pid)
            else:
                page.records.append(R.pipeline(item, [s for s in stages if str(s.get("pipeline_id")) == pid]))
        yield page

    # -- users and pipelines -------------------------------------------------------------------

    def _users(self, *, backfill: bool) -> Iterator[Page]:
        users = self.client.users()
        page = Page("users")
        for item in users:
            if item.get("is_deleted"):
                page.archived_ids.append(str(item["id"]))
            else:
                page.records.append(R.user(item))
        # Every user of the company is listed (deactivated ones too), so a pass needs nothing of the last one's.
        page.checkpoint = {"done": True} if backfill else {}
        yield page

    def _all(self, path: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for items, _ in self._walk(path, {"limit": S.V2_PAGE, "sort_by": "id"}):
            out.extend(items)
        return out

    def _pipelines(self, *, backfill: bool) -> Iterator[Page]:
        """Every pipeline with its stages (two calls). One gone from the list is found by the core: the
        page says how many are live, and ``reconcile`` answers with the ids this read saw, so neither
        the cursor nor another call has to remember which pipelines there were."""
        pipelines, stages = self._all("pipelines"), self._all("stages")
        by_pipeline: dict[int, list[dict[str, Any]]] = {}
        for stage in stages:
            by_pipeline.setdefault(stage.get("pipeline_id"), []).append(stage)
        records: list[RawRecord] = []
        gone: list[str] = []
        for item in pipelines:
            if item.get("is_deleted"):
                gone.append(str(item["id"]))
            else:
                records.append(R.pipeline(item, by_pipeline.get(item["id"], [])))
        with self._lock:
            self._pipeline_ids = sorted(r.id for r in records)
        yield Page("pipelines", records, archived_ids=gone, checkpoint={"done": True} if backfill else {},
                   live_total=len(records))
