"""The sandbox account's records and every change made to them, with keyset pagination over them.

Records are kept in API v2's shapes, so a list answer is a slice of them. ``PipedriveState`` is also
the test API: ``update``, ``delete``, ``merge``, ``archive_deal`` and ``touch`` do what the real
endpoints do (the HTTP routes call the same methods), and ``overlap`` says which records the world
shares with the marketing CRM. A deleted record is only marked ``is_deleted`` (Pipedrive removes it
for good after 30 days); which lists still show it is the API's business (``app.py``).
"""

from __future__ import annotations

import base64
import copy
import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from crmbridge_pipedrive import streams as S
from crmbridge_pipedrive.sandbox.render import Rendering, iso

V2_KINDS = ("persons", "organizations", "deals", "activities", "pipelines", "stages")
RETENTION_SECONDS = S.DELETED_RETENTION_DAYS * 86_400  # deleted records stay visible (is_deleted) this long


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
             limit: int = 100) -> tuple[list[dict[str, Any]], tuple[Any, int] | None]:
        """Up to ``limit`` visible rows after the keyset ``after``, and the key to continue from."""

        def key(row: dict[str, Any]) -> tuple[Any, int]:
            return (row["id"] if sort_by == "id" else (row.get(sort_by) or ""), row["id"])

        if since is None and until is None and sort_by == "id":
            return self._by_id(visible, descending, after, limit)
        if since is not None:
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

    # -- writes (what the real endpoints do) ---------------------------------------------------

    def create(self, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            t = self.table(kind)
            now = self.now()
            row = {"id": t.next_id, **copy.deepcopy(_TEMPLATES[kind]), "add_time": now, "update_time": now}
            row.update({k: copy.deepcopy(v) for k, v in body.items() if k in row and k not in ("id", "update_time")})
            if kind == "persons" and not row.get("first_name"):
                first, _, last = str(row.get("name") or "").partition(" ")
                row["first_name"], row["last_name"] = first or None, last or None
            t.insert(row)
            return copy.deepcopy(row)

    def update(self, kind: str, record_id: int, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            t = self.table(kind)
            row = t.rows.get(int(record_id))
            if row is None or row.get("is_deleted"):
                return None
            for key, value in changes.items():
                if key == "custom_fields" and isinstance(value, Mapping):
                    row.setdefault("custom_fields", {}).update(copy.deepcopy(dict(value)))
                elif key in row and key not in ("id", "add_time", "update_time"):
                    row[key] = copy.deepcopy(value)
            t.restamp(row, self.now())
            return copy.deepcopy(row)

    def delete(self, kind: str, record_id: int) -> dict[str, Any] | None:
        with self.lock:
            t = self.table(kind)
            row = t.rows.get(int(record_id))
            if row is None or row.get("is_deleted"):
                return None
            row["is_deleted"] = True
            if kind == "deals":
                row["status"] = "deleted"
            t.restamp(row, self.now())
            return copy.deepcopy(row)

    def merge(self, kind: str, loser_id: int, winner_id: int) -> dict[str, Any] | None:
        """``PUT /v1/{kind}/{loser}/merge {merge_with_id: winner}``: the loser is deleted, and what pointed
        at it (deals, activities, and for organizations persons) moves to the winner, as just updated."""
        with self.lock:
            t = self.table(kind)
            loser, winner = t.rows.get(int(loser_id)), t.rows.get(int(winner_id))
            if loser is None or winner is None or loser is winner or loser.get("is_deleted") or \
                    winner.get("is_deleted"):
                return None
            if kind == "persons":
                known = {e.get("value") for e in winner.get("emails") or ()}
                extra = [dict(e, primary=False) for e in loser.get("emails") or () if e.get("value") not in known]
                winner["emails"] = list(winner.get("emails") or []) + extra
            self._move_links(kind, loser["id"], winner["id"])
            self.delete(kind, loser["id"])
            self.merges[(kind, loser["id"])] = winner["id"]
            t.restamp(winner, self.now())
            return copy.deepcopy(winner)

    def _move_links(self, kind: str, loser: int, winner: int) -> None:
        now = self.now()
        for other_kind, field_name in _POINTERS.get(kind, ()):
            other = self.tables[other_kind]
            for row in list(other.rows.values()):
                if row.get("is_deleted"):
                    continue
                moved = row.get(field_name) == loser
                if moved:
                    row[field_name] = winner
                if kind == "persons" and other_kind == "activities" and row.get("participants"):
                    before = row["participants"]
                    after = _moved_participants(before, loser, winner)
                    moved = moved or after != before
                    row["participants"] = after
                if moved:
                    other.restamp(row, now)

    def archive_deal(self, deal_id: int, archived: bool = True) -> dict[str, Any] | None:
        return self.update("deals", deal_id, {"is_archived": archived})

    def touch(self, kind: str, *, ids: Iterable[int] | None = None, count: int | None = None) -> list[int]:
        """Mark records as just changed (their update time becomes now); the first ``count`` live ones
        when no ids are given."""
        with self.lock:
            t = self.table(kind)
            chosen = [int(i) for i in ids] if ids is not None else self.live_ids(kind)[: count or 0]
            now = self.now()
            done = []
            for rid in chosen:
                row = t.rows.get(rid)
                if row is not None and not row.get("is_deleted"):
                    t.restamp(row, now)
                    done.append(rid)
            return done


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
