"""The sandbox account's records and every change made to them, with keyset pagination over them.

Records are kept in API v2's shapes, so a list answer is a slice of them. ``PipedriveState`` is also
the test API: ``update``, ``delete``, ``merge``, ``archive_deal`` and ``touch`` do what the real
endpoints do (the HTTP routes call the same methods), and ``overlap`` says which records the world
shares with the marketing CRM. A deleted record is only marked ``is_deleted`` (Pipedrive removes it
for good after 30 days); which lists still show it is the API's business (``app.py``).

Every write tells the state's ``listener`` (the webhook sender) what changed, as a ``Change`` in
webhooks v2 terms (entity, action, the record now, the previous values of what changed), but only
while a webhook is registered: seeding and hook-less bulk writes cost nothing extra.
"""

from __future__ import annotations

import base64
import copy
import threading
import time
import uuid
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from crmbridge_pipedrive import streams as S
from crmbridge_pipedrive.sandbox.render import Rendering, iso

V2_KINDS = ("persons", "organizations", "deals", "activities", "pipelines", "stages")
RETENTION_SECONDS = S.DELETED_RETENTION_DAYS * 86_400  # deleted records stay visible (is_deleted) this long
# The webhooks v2 ``meta.entity`` of each object type the state writes.
ENTITIES = {"persons": "person", "organizations": "organization", "deals": "deal", "activities": "activity",
            "pipelines": "pipeline", "stages": "stage", "leads": "lead"}


@dataclass(frozen=True, slots=True)
class Change:
    """One write, as webhooks v2 tell it: ``data`` is the record now (None once deleted), ``previous``
    the values that changed (the whole record for a delete, None for a create)."""

    entity: str
    action: str  # create, change, delete
    entity_id: int | str
    data: dict[str, Any] | None
    previous: dict[str, Any] | None
    source: str  # meta.change_source: "api" for API writes, "app" for the web app (tests, the simulator)
    user_id: int | None
    at_ms: int
    correlation_id: str
    merged_to_id: int | None = None
    bulk: bool = False


Listener = Callable[[Change, list[dict[str, Any]]], None]  # (the change, the registered webhooks)


def previous_values(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What ``before`` held for every key that changed; custom fields key by key."""
    out: dict[str, Any] = {}
    for key, old in before.items():
        new = after.get(key)
        if key == "custom_fields" and isinstance(old, dict) and isinstance(new, dict):
            custom = {k: old.get(k) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)}
            if custom:
                out[key] = custom
        elif old != new:
            out[key] = copy.deepcopy(old)
    return out


class BadCursor(ValueError):
    pass


def encode_cursor(key: tuple[Any, int]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[Any, int]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return value[0], int(value[1])
    except Exception:
        raise BadCursor(text) from None


class Table:
    """One object type's rows by id, with an index by update time for ``updated_since`` queries."""

    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self.rows: dict[int, dict[str, Any]] = {r["id"]: r for r in rows}
        self.ids = sorted(self.rows)
        self.by_update = sorted((r["update_time"], r["id"]) for r in self.rows.values())
        self.next_id = (self.ids[-1] if self.ids else 0) + 1

    def insert(self, row: dict[str, Any]) -> None:
        self.rows[row["id"]] = row
        insort(self.ids, row["id"])
        insort(self.by_update, (row["update_time"], row["id"]))
        self.next_id = max(self.next_id, row["id"] + 1)

    def restamp(self, row: dict[str, Any], stamp: str) -> None:
        old = (row["update_time"], row["id"])
        at = bisect_left(self.by_update, old)
        if at < len(self.by_update) and self.by_update[at] == old:
            del self.by_update[at]
        row["update_time"] = stamp
        insort(self.by_update, (stamp, row["id"]))

    def page(self, visible: Callable[[dict[str, Any]], bool], *, sort_by: str = "id", descending: bool = False,
             since: str | None = None, until: str | None = None, after: tuple[Any, int] | None = None,
             limit: int = 100, only: Collection[int] | None = None
             ) -> tuple[list[dict[str, Any]], tuple[Any, int] | None]:
        """Up to ``limit`` visible rows after the keyset ``after``, and the key to continue from;
        ``only``: among these ids (the ``ids`` parameter), without a scan of the table."""

        def key(row: dict[str, Any]) -> tuple[Any, int]:
            return (row["id"] if sort_by == "id" else (row.get(sort_by) or ""), row["id"])

        if only is None and since is None and until is None and sort_by == "id":
            return self._by_id(visible, descending, after, limit)
        if only is not None:
            candidates = [self.rows[i] for i in sorted(set(only)) if i in self.rows]
            if since is not None:
                candidates = [r for r in candidates if r["update_time"] >= since]
        elif since is not None:
            start = bisect_left(self.by_update, (since, -1))
            candidates = [self.rows[i] for _, i in self.by_update[start:]]
        else:
            candidates = [self.rows[i] for i in self.ids]
        rows = sorted((r for r in candidates if (until is None or r["update_time"] < until) and visible(r)),
                      key=key, reverse=descending)
        if after is not None:
            rows = [r for r in rows if (key(r) < after if descending else key(r) > after)]
        chosen = rows[:limit]
        return chosen, (key(chosen[-1]) if len(rows) > limit else None)

    def _by_id(self, visible: Callable[[dict[str, Any]], bool], descending: bool, after: tuple[Any, int] | None,
               limit: int) -> tuple[list[dict[str, Any]], tuple[Any, int] | None]:
        ids = self.ids
        if descending:
            at = (bisect_left(ids, after[1]) if after else len(ids)) - 1
            step, stop = -1, -1
        else:
            at = bisect_right(ids, after[1]) if after else 0
            step, stop = 1, len(ids)
        out: list[dict[str, Any]] = []
        while at != stop:
            row = self.rows[ids[at]]
            if visible(row):
                if len(out) == limit:
                    return out, (out[-1]["id"], out[-1]["id"])
                out.append(row)
            at += step
        return out, None


_TEMPLATES: dict[str, dict[str, Any]] = {
    "persons": {"name": "", "first_name": None, "last_name": None, "owner_id": None, "org_id": None, "emails": [],
                "phones": [], "is_deleted": False, "visible_to": 3, "label_ids": [], "picture_id": None,
                "postal_address": None, "notes": None, "im": [], "birthday": None, "job_title": None,
                "custom_fields": {}},
    "organizations": {"name": "", "owner_id": None, "is_deleted": False, "visible_to": 3, "address": None,
                      "label_ids": [], "custom_fields": {}},
    "deals": {"title": "", "owner_id": None, "person_id": None, "org_id": None, "pipeline_id": 1, "stage_id": 1,
              "value": 0.0, "currency": "EUR", "stage_change_time": None, "is_deleted": False, "is_archived": False,
              "status": "open", "probability": None, "lost_reason": None, "visible_to": 3, "close_time": None,
              "won_time": None, "lost_time": None, "expected_close_date": None, "label_ids": [], "origin": "API",
              "origin_id": None, "channel": None, "channel_id": None, "arr": None, "mrr": None, "acv": None,
              "custom_fields": {}},
    "activities": {"subject": "", "type": "task", "owner_id": None, "creator_user_id": None, "is_deleted": False,
                   "deal_id": None, "lead_id": None, "person_id": None, "org_id": None, "project_id": None,
                   "due_date": None, "due_time": "", "duration": "", "busy": False, "done": False,
                   "marked_as_done_time": None, "location": None, "participants": [], "attendees": None,
                   "conference_meeting_client": None, "conference_meeting_url": None, "conference_meeting_id": None,
                   "public_description": "", "priority": None, "note": None},
    "pipelines": {"name": "", "order_nr": 0, "is_selected": False, "is_deleted": False,
                  "is_deal_probability_enabled": False},
    "stages": {"order_nr": 0, "name": "", "is_deleted": False, "deal_probability": 100, "pipeline_id": 1,
               "is_deal_rot_enabled": False, "days_to_rotten": None},
}
# Which fields of which records point at a merged-away record, per merged object type: a merge
# moves them to the survivor (an activity's participants too).
_POINTERS = {"persons": (("deals", "person_id"), ("activities", "person_id")),
             "organizations": (("persons", "org_id"), ("deals", "org_id"), ("activities", "org_id")),
             "deals": (("activities", "deal_id"),)}


class PipedriveState:
    """The account: v2 tables, v1 users, leads, field catalogs and webhooks; thread-safe."""

    def __init__(self, rendering: Rendering, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.tables = {kind: Table(getattr(rendering, kind)) for kind in V2_KINDS}
        self.users = {u["id"]: u for u in rendering.users}
        self.leads = {lead["id"]: lead for lead in rendering.leads}
        self.catalogs = rendering.catalogs
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.listener: Listener | None = None  # told of every write while a webhook is registered
        self.admin_id = next(iter(self.users), None)  # the API token's user: the company's first user
        # (kind, merged-away id) -> survivor: what webhooks v2 tell as ``meta.merged_to_id``. No list
        # or get answer carries it; Pipedrive's v2 records have no such field.
        self.merges: dict[tuple[str, int], int] = {}
        self.person_world = dict(rendering.person_world)
        self.organization_world = dict(rendering.organization_world)
        self.pipedrive_only_persons = list(rendering.pipedrive_only_persons)

    def now(self) -> str:
        return iso(self.clock() * 1000)

    def table(self, kind: str) -> Table:
        if kind not in self.tables:
            raise KeyError(kind)
        return self.tables[kind]

    # -- reads ---------------------------------------------------------------------------------

    def get(self, kind: str, record_id: int) -> dict[str, Any] | None:
        with self.lock:
            row = self.table(kind).rows.get(int(record_id))
            if row is None or (row.get("is_deleted") and not self.recently(row)):
                return None
            return copy.deepcopy(row)

    def recently(self, row: Mapping[str, Any]) -> bool:
        """A deleted record is still visible for 30 days after its deletion (its last update)."""
        return row["update_time"] >= iso((self.clock() - RETENTION_SECONDS) * 1000)

    def live_ids(self, kind: str) -> list[int]:
        with self.lock:
            t = self.table(kind)
            return [i for i in t.ids if not t.rows[i].get("is_deleted") and not t.rows[i].get("is_archived")]

    def counts(self) -> dict[str, int]:
        with self.lock:
            out = {kind: len(self.live_ids(kind)) for kind in V2_KINDS}
            out["archived_deals"] = sum(1 for r in self.tables["deals"].rows.values()
                                        if r.get("is_archived") and not r.get("is_deleted"))
            out.update(users=len(self.users), leads=len(self.leads), webhooks=len(self.webhooks))
            return out

    def overlap(self) -> dict[str, Any]:
        """Which Pipedrive records are world people/companies, also rendered by the marketing CRM."""
        with self.lock:
            live_p = set(self.live_ids("persons"))
            live_o = set(self.live_ids("organizations"))
            return {"persons": {pid: w for pid, w in self.person_world.items() if pid in live_p},
                    "organizations": {oid: w for oid, w in self.organization_world.items() if oid in live_o},
                    "pipedrive_only_persons": [p for p in self.pipedrive_only_persons if p in live_p]}

    # -- change notification (webhooks) ----------------------------------------------------------

    @property
    def listening(self) -> bool:
        """Whether a write must be told: a listener is attached and some webhook is registered."""
        return self.listener is not None and bool(self.webhooks)

    def _tell(self, kind: str, action: str, row: Mapping[str, Any], before: Mapping[str, Any] | None, *,
              source: str, user_id: int | None, correlation: str | None = None, merged_to: int | None = None,
              bulk: bool = False) -> None:
        if self.listener is None or not self.webhooks:
            return
        if action == "create":
            data, previous = copy.deepcopy(dict(row)), None
        elif action == "delete":
            data, previous = None, copy.deepcopy(dict(before or row))
        else:
            data, previous = copy.deepcopy(dict(row)), previous_values(before or {}, row)
        change = Change(ENTITIES[kind], action, row["id"], data, previous, source, user_id or self.admin_id,
                        int(self.clock() * 1000), correlation or str(uuid.uuid4()), merged_to, bulk)
        self.listener(change, list(self.webhooks.values()))

    def _snapshot(self, row: Mapping[str, Any]) -> dict[str, Any] | None:
        return copy.deepcopy(dict(row)) if self.listening else None

    # -- writes (what the real endpoints do) ---------------------------------------------------
    # ``source`` is the webhooks' ``meta.change_source`` ("api" from the HTTP routes, "app" for the web
    # app: tests and the simulator); ``user_id`` the user who wrote (the token's user by default).

    def create(self, kind: str, body: Mapping[str, Any], *, source: str = "app",
               user_id: int | None = None) -> dict[str, Any]:
        with self.lock:
            t = self.table(kind)
            now = self.now()
            row = {"id": t.next_id, **copy.deepcopy(_TEMPLATES[kind]), "add_time": now, "update_time": now}
            row.update({k: copy.deepcopy(v) for k, v in body.items() if k in row and k not in ("id", "update_time")})
            if kind == "persons" and not row.get("first_name"):
                first, _, last = str(row.get("name") or "").partition(" ")
                row["first_name"], row["last_name"] = first or None, last or None
            t.insert(row)
            self._tell(kind, "create", row, None, source=source, user_id=user_id)
            return copy.deepcopy(row)

    def update(self, kind: str, record_id: int, changes: Mapping[str, Any], *, source: str = "app",
               user_id: int | None = None) -> dict[str, Any] | None:
        with self.lock:
            t = self.table(kind)
            row = t.rows.get(int(record_id))
            if row is None or row.get("is_deleted"):
                return None
            before = self._snapshot(row)
            for key, value in changes.items():
                if key == "custom_fields" and isinstance(value, Mapping):
                    row.setdefault("custom_fields", {}).update(copy.deepcopy(dict(value)))
                elif key in row and key not in ("id", "add_time", "update_time"):
                    row[key] = copy.deepcopy(value)
            t.restamp(row, self.now())
            self._tell(kind, "change", row, before, source=source, user_id=user_id)
            return copy.deepcopy(row)

    def delete(self, kind: str, record_id: int, *, source: str = "app", user_id: int | None = None,
               merged_to: int | None = None, correlation: str | None = None) -> dict[str, Any] | None:
        with self.lock:
            t = self.table(kind)
            row = t.rows.get(int(record_id))
            if row is None or row.get("is_deleted"):
                return None
            before = self._snapshot(row)
            row["is_deleted"] = True
            if kind == "deals":
                row["status"] = "deleted"
            t.restamp(row, self.now())
            self._tell(kind, "delete", row, before, source=source, user_id=user_id, merged_to=merged_to,
                       correlation=correlation)
            return copy.deepcopy(row)

    def merge(self, kind: str, loser_id: int, winner_id: int, *, source: str = "app",
              user_id: int | None = None) -> dict[str, Any] | None:
        """``PUT /v1/{kind}/{loser}/merge {merge_with_id: winner}``: the loser is deleted, and what pointed
        at it (deals, activities, and for organizations persons) moves to the winner, as just updated.
        Webhooks: the loser's delete with ``merged_to_id``, a change of the winner and of each moved record."""
        with self.lock:
            t = self.table(kind)
            loser, winner = t.rows.get(int(loser_id)), t.rows.get(int(winner_id))
            if loser is None or winner is None or loser is winner or loser.get("is_deleted") or \
                    winner.get("is_deleted"):
                return None
            before = self._snapshot(winner)
            correlation = str(uuid.uuid4())
            if kind == "persons":
                known = {e.get("value") for e in winner.get("emails") or ()}
                extra = [dict(e, primary=False) for e in loser.get("emails") or () if e.get("value") not in known]
                winner["emails"] = list(winner.get("emails") or []) + extra
            self._move_links(kind, loser["id"], winner["id"], source=source, user_id=user_id, correlation=correlation)
            self.delete(kind, loser["id"], source=source, user_id=user_id, merged_to=winner["id"],
                        correlation=correlation)
            self.merges[(kind, loser["id"])] = winner["id"]
            t.restamp(winner, self.now())
            self._tell(kind, "change", winner, before, source=source, user_id=user_id, correlation=correlation)
            return copy.deepcopy(winner)

    def _move_links(self, kind: str, loser: int, winner: int, **tell: Any) -> None:
        now = self.now()
        for other_kind, field_name in _POINTERS.get(kind, ()):
            other = self.tables[other_kind]
            for row in list(other.rows.values()):
                if row.get("is_deleted") or not _points_at(row, field_name, loser, kind, other_kind):
                    continue
                before = self._snapshot(row)
                if row.get(field_name) == loser:
                    row[field_name] = winner
                if kind == "persons" and other_kind == "activities" and row.get("participants"):
                    row["participants"] = _moved_participants(row["participants"], loser, winner)
                other.restamp(row, now)
                self._tell(other_kind, "change", row, before, **tell)

    def archive_deal(self, deal_id: int, archived: bool = True, *, source: str = "app") -> dict[str, Any] | None:
        return self.update("deals", deal_id, {"is_archived": archived}, source=source)

    def touch(self, kind: str, *, ids: Iterable[int] | None = None, count: int | None = None,
              source: str = "app", changes: Mapping[str, Any] | None = None) -> list[int]:
        """Mark records as just changed (their update time becomes now); the first ``count`` live ones
        when no ids are given. With webhooks registered, each is a change (``is_bulk_edit`` when many).
        ``changes`` also sets fields, as an edit does: a bare bump of the update time changes nothing a
        reader keeps."""
        if changes:
            chosen = [int(i) for i in ids] if ids is not None else self.live_ids(kind)[: count or 0]
            return [rid for rid in chosen if self.update(kind, rid, changes, source=source) is not None]
        with self.lock:
            t = self.table(kind)
            chosen = [int(i) for i in ids] if ids is not None else self.live_ids(kind)[: count or 0]
            now = self.now()
            listening = self.listening
            done = []
            for rid in chosen:
                row = t.rows.get(rid)
                if row is not None and not row.get("is_deleted"):
                    before = {"update_time": row["update_time"]} if listening else None
                    t.restamp(row, now)
                    if listening:
                        self._tell(kind, "change", row, before, source=source, user_id=None, bulk=len(chosen) > 1)
                    done.append(rid)
            return done

    # -- leads (v1; ids are UUIDs) ---------------------------------------------------------------

    def create_lead(self, lead: dict[str, Any], *, source: str = "app") -> dict[str, Any]:
        with self.lock:
            self.leads[lead["id"]] = lead
            self._tell("leads", "create", lead, None, source=source, user_id=lead.get("owner_id"))
            return copy.deepcopy(lead)

    def update_lead(self, lead_id: str, changes: Mapping[str, Any], *, source: str = "app") -> dict[str, Any] | None:
        with self.lock:
            lead = self.leads.get(lead_id)
            if lead is None:
                return None
            before = self._snapshot(lead)
            lead.update({k: copy.deepcopy(v) for k, v in changes.items() if k in lead and k != "id"})
            lead["update_time"] = self.now()
            self._tell("leads", "change", lead, before, source=source, user_id=None)
            return copy.deepcopy(lead)

    def delete_lead(self, lead_id: str, *, source: str = "app") -> dict[str, Any] | None:
        with self.lock:
            lead = self.leads.pop(lead_id, None)
            if lead is not None:
                self._tell("leads", "delete", lead, lead, source=source, user_id=None)
            return lead


def _points_at(row: Mapping[str, Any], field_name: str, loser: int, kind: str, other_kind: str) -> bool:
    """Whether a merge of ``loser`` moves this row (its link, or a person among an activity's participants)."""
    if row.get(field_name) == loser:
        return True
    return kind == "persons" and other_kind == "activities" and any(
        p.get("person_id") == loser for p in row.get("participants") or ())


def _moved_participants(participants: list[dict[str, Any]], loser: int, winner: int) -> list[dict[str, Any]]:
    """An activity's participants after ``loser`` was merged into ``winner`` (who appears once)."""
    out: list[dict[str, Any]] = []
    for p in participants:
        p = dict(p, person_id=winner) if p.get("person_id") == loser else dict(p)
        twin = next((q for q in out if q.get("person_id") == p.get("person_id")), None)
        if twin is None:
            out.append(p)
        elif p.get("primary"):
            twin["primary"] = True
    return out
