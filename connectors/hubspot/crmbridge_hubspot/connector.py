"""``HubSpotConnector``: HubSpot's objects as pages of raw records, for backfill and incremental sync.

Backfill lists each object type with its associations inline (one call per 100 records). An
incremental pass asks search for the newest records first: one call answers "nothing changed" and
also tells how many records are live, which proves that nothing was archived behind our back. More
changes than one page are walked in ascending windows that restart from the last seen timestamp
(and id), so HubSpot's 10,000-result cap never truncates a sync. Records named by webhook events are
read back with ``fetch``, 100 per batch call.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crmbridge.connectors import ApiUsage, Page, RawRecord, StreamSpec, StreamState
from crmbridge.errors import ConfigError
from crmbridge.logs import get_logger
from crmbridge.mapping.transforms import to_datetime
from crmbridge_hubspot import streams as S
from crmbridge_hubspot.client import SEARCH_CAP, HubSpotClient
from crmbridge_hubspot.settings import HubSpotSettings

if TYPE_CHECKING:
    from crmbridge_hubspot.writer import HubSpotWriter

log = get_logger("crmbridge.hubspot")



def _ms(value: Any) -> int | None:
    parsed = to_datetime(value)
    return None if parsed is None else int(parsed.timestamp() * 1000)


def _after(response: Mapping[str, Any]) -> str | None:
    return ((response.get("paging") or {}).get("next") or {}).get("after")


def _associated_ids(obj: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, collection in (obj.get("associations") or {}).items():
        ids: list[str] = []
        for item in (collection or {}).get("results") or ():
            if str(item["id"]) not in ids:  # HubSpot lists an association once per label
                ids.append(str(item["id"]))
        out[name] = ids
    return out


def _modified(obj: Mapping[str, Any], prop: str) -> int:
    return _ms((obj.get("properties") or {}).get(prop)) or 0


class HubSpotConnector:
    source = "hubspot"

    def __init__(self, client: HubSpotClient, settings: HubSpotSettings) -> None:
        self.client = client
        self.settings = settings
        self._wanted: dict[str, set[str]] = {}
        self._forms: dict[str, str] | None = None
        self._pipeline_ids: list[str] | None = None  # the live pipelines the last read of them listed
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, base_url: str | None = None, **overrides: Any) -> HubSpotConnector:
        values = {k: v for k, v in overrides.items() if v is not None}
        if base_url:
            values["base_url"] = base_url
        settings = HubSpotSettings(**values)
        if settings.access_token is None:
            raise ConfigError("no HubSpot access token: set CRMBRIDGE_HUBSPOT_ACCESS_TOKEN (a private app token)",
                              key="CRMBRIDGE_HUBSPOT_ACCESS_TOKEN")
        return cls(HubSpotClient(settings), settings)

    def writer(self) -> HubSpotWriter:
        """Write-back through the same client (one pacer, one call count)."""
        from crmbridge_hubspot.writer import HubSpotWriter

        return HubSpotWriter(self.client, self.settings)

    # -- protocol ------------------------------------------------------------------------------

    def streams(self) -> Sequence[StreamSpec]:
        out = []
        for stream in S.ALL_STREAMS:
            size = S.LIST_PAGE if isinstance(stream, S.CrmObjectStream) else stream.page_size
            out.append(StreamSpec(stream.name, stream.entity, size))
        return out

    def request_properties(self, wanted: Mapping[str, Collection[str]]) -> None:
        """The properties the mapping reads; HubSpot returns only the properties asked for."""
        # Only CRM object streams take a property list; "id" is the record's own, never a property.
        self._wanted = {k: set(v) - {"id"} for k, v in wanted.items()
                        if isinstance(S.BY_NAME.get(k), S.CrmObjectStream)}

    def usage(self) -> ApiUsage:
        return self.client.usage()

    def close(self) -> None:
        return None

    def field_catalog(self, stream: str) -> Mapping[str, str]:
        spec = S.BY_NAME.get(stream)
        if not isinstance(spec, S.CrmObjectStream):
            return {}
        response = self.client.property_definitions(spec.object_type)
        return {p["label"]: p["name"] for p in response.get("results", ()) if p.get("label")}

    def start_cursor(self, stream: str) -> Mapping[str, Any]:
        return {"since_ms": int(time.time() * 1000)}

    def backfill(self, stream: str, resume: Mapping[str, Any] | None) -> Iterator[Page]:
        spec = self._spec(stream)
        if spec is S.OWNERS:
            return self._owners_backfill(resume)
        if spec is S.PIPELINES:
            return self._pipelines(backfill=True)
        if spec is S.WEB_EVENTS:
            return self._events(None, resume)
        assert isinstance(spec, S.CrmObjectStream)
        return self._list(spec, resume)

    def changes(self, stream: str, state: StreamState) -> Iterator[Page]:
        spec = self._spec(stream)
        cursor = dict(state.cursor or {})
        if spec is S.OWNERS:
            return self._owners_changes(cursor)
        if spec is S.PIPELINES:
            return self._pipelines(backfill=False)
        since = max(0, int(cursor.get("since_ms", 0)) - int(self.settings.lookback_seconds * 1000))
        if spec is S.WEB_EVENTS:
            return self._events(since, None)
        assert isinstance(spec, S.CrmObjectStream)
        return self._search_changes(spec, since, int(cursor.get("since_ms", 0)))

    def reconcile(self, stream: str) -> Iterator[Page]:
        """Archived records of a stream: asked for only when live counts disagree. Pipelines answer with
        the ids the pass's own read listed (no call): HubSpot lists no deleted pipeline anywhere."""
        spec = self._spec(stream)
        if spec is S.PIPELINES:
            with self._lock:
                seen = self._pipeline_ids
            if seen is not None:
                yield Page(stream, live_ids=list(seen))
            return
        if not isinstance(spec, S.CrmObjectStream):
            return
        after = None
        while True:
            response = self.client.list_page(spec.object_type, after=after, properties=[spec.modified],
                                             associations=(), archived=True)
            after = _after(response)
            yield Page(stream, archived_ids=[str(o["id"]) for o in response.get("results", ())])
            if not after:
                return

    def fetch(self, stream: str, ids: Sequence[str]) -> Iterator[Page]:
        """Records named by webhook events, 100 per batch read; owners, pipelines and web events have no
        webhooks, so nothing names them."""
        spec = self._spec(stream)
        if not isinstance(spec, S.CrmObjectStream):
            return iter(())
        return self._fetch(spec, list(dict.fromkeys(str(i) for i in ids)))

    def followups(self, stream: str, properties: Collection[str | None] = ()) -> Sequence[str]:
        out: list[str] = []
        for trigger, streams in S.FOLLOWUPS.get(stream, {}).items():
            if trigger is None or trigger in properties:
                out += [s for s in streams if s not in out]
        return tuple(out)

    # -- CRM objects ---------------------------------------------------------------------------

    def _spec(self, stream: str) -> S.CrmObjectStream | S.SpecialStream:
        if stream not in S.BY_NAME:
            raise ConfigError(f"HubSpot has no stream {stream!r} (streams: {', '.join(S.BY_NAME)})")
        return S.BY_NAME[stream]

    def _properties(self, spec: S.CrmObjectStream) -> list[str]:
        return sorted(self._wanted.get(spec.name, set()) | set(spec.always) | {spec.modified})

    def _raw(self, spec: S.CrmObjectStream, obj: Mapping[str, Any],
             associations: Mapping[str, list[str]] | None = None) -> RawRecord:
        links = associations if associations is not None else _associated_ids(obj)
        return RawRecord(spec.name, str(obj["id"]), obj.get("properties") or {}, links, bool(obj.get("archived")))

    def _list(self, spec: S.CrmObjectStream, resume: Mapping[str, Any] | None) -> Iterator[Page]:
        after = (resume or {}).get("after")
        properties = self._properties(spec)
        while True:
            response = self.client.list_page(spec.object_type, after=after, properties=properties,
                                             associations=spec.associations)
            after = _after(response)
            records = [self._raw(spec, obj) for obj in response.get("results", ())]
            yield Page(spec.name, records, checkpoint={"after": after, "done": after is None})
            if after is None:
                return

    def _search(self, spec: S.CrmObjectStream, groups: list[list[dict[str, Any]]], sort: tuple[str, str],
                after: int = 0) -> Any:
        body: dict[str, Any] = {
            "filterGroups": [{"filters": g} for g in groups],
            "sorts": [{"propertyName": sort[0], "direction": sort[1]}],
            "properties": self._properties(spec),
            "limit": S.SEARCH_PAGE,
        }
        if after:
            body["after"] = str(after)
        return self.client.search_page(spec.object_type, body)

    def _with_links(self, spec: S.CrmObjectStream, objs: Sequence[Mapping[str, Any]]) -> list[RawRecord]:
        """Search answers without associations: read them in batches for the records found."""
        ids = [str(o["id"]) for o in objs]
        links: dict[str, dict[str, list[str]]] = {i: {} for i in ids}
        for target in spec.associations:
            for start in range(0, len(ids), S.ASSOCIATIONS_BATCH):
                chunk = ids[start : start + S.ASSOCIATIONS_BATCH]
                response = self.client.associations_batch(spec.object_type, target, chunk)
                for result in response.get("results") or ():
                    source_id = str(result["from"]["id"])
                    links.setdefault(source_id, {})[target] = [str(t["toObjectId"]) for t in result.get("to") or ()]
            for i in ids:
                links[i].setdefault(target, [])
        return [self._raw(spec, o, links[str(o["id"])]) for o in objs]

    def _fetch(self, spec: S.CrmObjectStream, ids: list[str]) -> Iterator[Page]:
        properties = self._properties(spec)
        for start in range(0, len(ids), S.FETCH_BATCH):
            chunk = ids[start : start + S.FETCH_BATCH]
            objs = self.client.batch_read(spec.object_type, chunk, properties).get("results") or []
            records = self._with_links(spec, objs) if objs else []
            merged = _merged_away(objs, chunk)
            returned = {r.id for r in records}
            archived = [i for i in chunk if i not in returned and i not in merged]
            log.debug("hubspot.fetched", stream=spec.name, asked=len(chunk), live=len(records),
                      archived=len(archived), merged=len(merged))
            yield Page(spec.name, records, archived_ids=archived, merged=merged)

    def _search_changes(self, spec: S.CrmObjectStream, since: int, cursor_ms: int) -> Iterator[Page]:
        probe = self._search(spec, [], (spec.modified, "DESCENDING"))
        results = probe.get("results") or []
        total = int(probe.get("total", 0))
        stamps = {str(o["id"]): _modified(o, spec.modified) for o in results}
        fresh = [o for o in results if stamps[str(o["id"])] >= since]
        newest = max([cursor_ms, *(stamps[str(o["id"])] for o in fresh)])
        records = self._with_links(spec, fresh) if fresh else []
        if len(fresh) < len(results) or _after(probe) is None:
            yield Page(spec.name, records, checkpoint={"since_ms": newest}, live_total=total)
            return
        # More changes than one page: the cursor waits until the ascending walk has covered them all.
        yield Page(spec.name, records)
        seen = {str(o["id"]): stamps[str(o["id"])] for o in fresh}
        yield from self._walk(spec, since, seen)
        yield Page(spec.name, checkpoint={"since_ms": max(newest, *seen.values())}, live_total=total)

    def _walk(self, spec: S.CrmObjectStream, since: int, seen: dict[str, int]) -> Iterator[Page]:
        """Every record modified at or after ``since``, ascending, restarting windows at the cap."""
        window, offset, last_id = since, 0, None
        while True:
            if last_id is None:
                groups = [[{"propertyName": spec.modified, "operator": "GTE", "value": str(window)}]]
                response = self._search(spec, groups, (spec.modified, "ASCENDING"), offset)
            else:  # more than a whole window shares one millisecond: walk that millisecond by id
                groups = [[{"propertyName": spec.modified, "operator": "EQ", "value": str(window)},
                           {"propertyName": "hs_object_id", "operator": "GT", "value": last_id}]]
                response = self._search(spec, groups, ("hs_object_id", "ASCENDING"), offset)
            results = response.get("results") or []
            stamps = {str(o["id"]): _modified(o, spec.modified) for o in results}
            fresh = [o for o in results if seen.get(str(o["id"])) != stamps[str(o["id"])]]
            records = self._with_links(spec, fresh) if fresh else []
            seen.update({str(o["id"]): stamps[str(o["id"])] for o in fresh})
            # Everything older than the last record seen is done (ascending order); equal ones are re-read.
            progress = stamps[str(results[-1]["id"])] if results else window
            yield Page(spec.name, records, checkpoint={"since_ms": progress})
            nxt = _after(response)
            if nxt is None:
                if last_id is None:
                    return
                window, offset, last_id = window + 1, 0, None  # the crowded millisecond is done
                continue
            offset = int(nxt)
            if offset + S.SEARCH_PAGE <= SEARCH_CAP:
                continue
            # The next page would cross HubSpot's 10,000-result cap: start a new window where this one is.
            log.info("hubspot.search_window_restart", stream=spec.name, at_ms=progress)
            offset = 0
            if last_id is None and progress > window:
                window = progress
            else:
                last_id = str(results[-1]["id"])

    # -- owners, pipelines, events -------------------------------------------------------------

    def _owner_raw(self, owner: Mapping[str, Any], active: bool) -> RawRecord:
        teams = ";".join(t["name"] for t in (owner.get("teams") or ()) if t.get("name"))
        props = {"email": owner.get("email"), "firstName": owner.get("firstName"), "lastName": owner.get("lastName"),
                 "active": "true" if active else "false", "teams": teams, "createdAt": owner.get("createdAt"),
                 "updatedAt": owner.get("updatedAt")}
        return RawRecord("owners", str(owner["id"]), props)

    def _owner_pages(self, archived: bool, after: str | None = None) -> Iterator[tuple[list[RawRecord], str | None]]:
        while True:
            response = self.client.owners_page(after=after, archived=archived)
            after = _after(response)
            yield [self._owner_raw(o, not archived) for o in response.get("results", ())], after
            if after is None:
                return

    def _owners_backfill(self, resume: Mapping[str, Any] | None) -> Iterator[Page]:
        """Active owners, then inactive ones; the active ones' fingerprint starts the incremental cursor."""
        phase = (resume or {}).get("phase", "active")
        start = (resume or {}).get("after")
        digest = _resumed_digest(resume or {})
        if phase == "active":
            for records, nxt in self._owner_pages(False, start):
                digest = _fold(digest, (r.id for r in records))
                yield Page("owners", records, checkpoint={"phase": "active" if nxt else "inactive", "after": nxt,
                                                          ACTIVE_DIGEST: _hex(digest)})
            start = None
        for records, nxt in self._owner_pages(True, start):
            done = nxt is None
            checkpoint: dict[str, Any] = {"phase": "inactive", "after": nxt, ACTIVE_DIGEST: _hex(digest), "done": done}
            if done:
                checkpoint["next"] = {ACTIVE_DIGEST: _hex(digest)}
            yield Page("owners", records, checkpoint=checkpoint)

    def _owners_changes(self, cursor: Mapping[str, Any]) -> Iterator[Page]:
        """The active owners (one call up to 500). The inactive ones are read again only when the active
        set is not the one the cursor's fingerprint names: someone joined, left or came back, and only
        the inactive list shows who left (the store keeps them, with ``active`` false)."""
        active: list[RawRecord] = []
        for records, _ in self._owner_pages(False):
            active.extend(records)
        digest = _hex(_fold(0, (r.id for r in active)))
        records = list(active)
        if _cursor_digest(cursor) != digest:
            for inactive, _ in self._owner_pages(True):
                records.extend(inactive)
        yield Page("owners", records, checkpoint={ACTIVE_DIGEST: digest})

    def _pipelines(self, *, backfill: bool) -> Iterator[Page]:
        """Every deal pipeline with its stages (one call). One deleted in HubSpot is found by the core:
        the page says how many are live, and ``reconcile`` answers with the ids this read saw, so the
        cursor keeps no list of the pipelines there were."""
        response = self.client.pipelines_of("deals")
        records = []
        for p in response.get("results", ()):
            if p.get("archived"):
                continue
            records.append(RawRecord("pipelines", str(p["id"]), {
                "label": p.get("label"), "displayOrder": p.get("displayOrder"), "stages": _stages(p),
                "createdAt": p.get("createdAt"), "updatedAt": p.get("updatedAt")}))
        with self._lock:
            self._pipeline_ids = sorted(r.id for r in records)
        yield Page("pipelines", records, checkpoint={"done": True} if backfill else {}, live_total=len(records))

    def _form_name(self, form_id: str | None) -> str | None:
        if not form_id:
            return None
        if self._forms is None or form_id not in self._forms:
            self._forms = {}
            after = None
            while True:
                response = self.client.forms_page(after=after)
                self._forms.update({str(f["id"]): f.get("name") for f in response.get("results", ())})
                after = _after(response)
                if after is None:
                    break
        return self._forms.get(form_id)

    def _event_raw(self, event: Mapping[str, Any]) -> RawRecord:
        props = dict(event.get("properties") or {})
        props.update({"eventType": event.get("eventType"), "occurredAt": event.get("occurredAt")})
        if event.get("eventType") == "e_submitted_form":
            props["form_name"] = self._form_name(props.get("hs_form_id"))
        return RawRecord("web_events", str(event["id"]), props, {"contacts": [str(event["objectId"])]})

    def _events(self, since_ms: int | None, resume: Mapping[str, Any] | None) -> Iterator[Page]:
        after = (resume or {}).get("after")
        occurred_after = datetime.fromtimestamp(since_ms / 1000, tz=UTC) if since_ms else None
        newest = since_ms or 0
        while True:
            response = self.client.events_page(after=after, occurred_after=occurred_after)
            after = _after(response)
            results = response.get("results", ())
            records = [self._event_raw(e) for e in results]
            newest = max([newest, *(_ms(e.get("occurredAt")) or 0 for e in results)])
            checkpoint = {"after": after, "done": after is None} if since_ms is None else (
                {"since_ms": newest} if after is None else None)
            yield Page("web_events", records, checkpoint=checkpoint)
            if after is None:
                return


ACTIVE_DIGEST = "active_digest"


def _fold(digest: int, ids: Iterable[str]) -> int:
    """Fold owner ids into an order-free fingerprint (XOR of 64-bit hashes), page by page."""
    for i in ids:
        digest ^= int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "big")
    return digest


def _hex(digest: int) -> str:
    return f"{digest:016x}"


def _resumed_digest(resume: Mapping[str, Any]) -> int:
    """A backfill resumed mid-owners: its fingerprint so far (a resume point from before kept the ids)."""
    if resume.get(ACTIVE_DIGEST):
        return int(str(resume[ACTIVE_DIGEST]), 16)
    return _fold(0, (str(i) for i in resume.get("active") or ()))


def _cursor_digest(cursor: Mapping[str, Any]) -> str | None:
    """The active owners' fingerprint the cursor names; a cursor stored before fingerprints kept the ids."""
    if cursor.get(ACTIVE_DIGEST):
        return str(cursor[ACTIVE_DIGEST])
    if "active" in cursor:
        return _hex(_fold(0, (str(i) for i in cursor.get("active") or ())))
    return None


def _stages(pipeline: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in sorted(pipeline.get("stages") or (), key=lambda s: s.get("displayOrder") or 0):
        if s.get("archived"):
            continue
        meta = s.get("metadata")
        out.append({"source_id": str(s["id"]), "label": s.get("label") or str(s["id"]),
                    "display_order": s.get("displayOrder") or 0, "probability": _probability(meta),
                    "is_closed": _closed(meta), "is_won": _closed(meta) and _probability(meta) == 1.0})
    return out


def _merged_away(objs: Sequence[Mapping[str, Any]], asked: Sequence[str]) -> dict[str, str]:
    """Asked-for ids that HubSpot answered with another record, which lists them as merged into it."""
    wanted = set(asked)
    out: dict[str, str] = {}
    for obj in objs:
        survivor = str(obj["id"])
        for old in str((obj.get("properties") or {}).get("hs_merged_object_ids") or "").split(";"):
            if old in wanted and old != survivor:
                out[old] = survivor
    return out


def _probability(metadata: Mapping[str, Any] | None) -> float | None:
    value = (metadata or {}).get("probability")
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _closed(metadata: Mapping[str, Any] | None) -> bool:
    return str((metadata or {}).get("isClosed", "false")).lower() == "true"
