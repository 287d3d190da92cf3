"""The write-back ledger in the store: what was last written to each CRM record, the hand-offs of
sales-ready people with their claims, and the notification outbox.

Claims make hand-offs safe under concurrent runs on either backend: a run takes a pending row with a
single conditional UPDATE (atomic on SQLite and PostgreSQL alike) and holds it for a lease. A run
that died (SIGKILL) on this host is recognised by its process id, so its rows are taken over at once
instead of after the lease.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.store import schema
from crmbridge.store.engine import chunked
from crmbridge.store.holders import holder_dead as _holder_dead
from crmbridge.store.holders import this_process
from crmbridge.store.store import Store, now_ms

PENDING, DONE = "pending", "done"
# A notice being delivered: ``error`` names the run delivering it (SENDING_BY + holder), ``next_ms`` the
# end of its lease, longer than one delivery with its retries and time-outs.
SENDING, SENDING_BY = "sending", "sending by "
NOTICE_LEASE_MS = 15 * 60_000
CUT_OFF = ("cut off while being sent (its run ended before it could record the outcome); "
           "not sent again, as it may have arrived")


class WritebackLedger:
    def __init__(self, store: Store, clock: Callable[[], int] = now_ms) -> None:
        self.clock = clock  # epoch ms: leases, stamps and due times move with it in tests
        self.store = store
        self.engine = store.engine

    # -- what the CRM holds, as far as write-back knows ----------------------------------------

    def held(self, source: str, object_type: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        t = schema.writeback_state.c
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(list(ids)):
                for sid, values in conn.execute(sa.select(t.source_id, t["values"]).where(
                        t.source == source, t.object_type == object_type, t.source_id.in_(chunk))):
                    out[sid] = orjson.loads(values)
        return out

    def record_written(self, source: str, object_type: str,
                       rows: Iterable[tuple[str, int | None, Mapping[str, Any]]]) -> None:
        """Merge written values into the ledger (a partial write keeps the other fields' values)."""
        rows = list(rows)
        if not rows:
            return
        t = schema.writeback_state
        held = self.held(source, object_type, [sid for sid, _, _ in rows])
        stamp = self.clock()
        payload = [{"source": source, "object_type": object_type, "source_id": sid, "person_id": pid,
                    "values": orjson.dumps({**held.get(sid, {}), **values}).decode(), "written_ms": stamp}
                   for sid, pid, values in rows]
        with self.engine.begin() as conn:
            stmt = self.store._insert(t)
            stmt = stmt.on_conflict_do_update(index_elements=["source", "object_type", "source_id"], set_={
                "person_id": stmt.excluded.person_id, "values": stmt.excluded["values"],
                "written_ms": stmt.excluded.written_ms})
            conn.execute(stmt, payload)

    def held_ids(self, source: str, object_type: str) -> list[str]:
        t = schema.writeback_state.c
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.source_id).where(t.source == source,
                                                                  t.object_type == object_type)).scalars())

    def person_records(self, person_ids: Sequence[int]) -> dict[int, dict[str, tuple[str, str | None]]]:
        """Each canonical person's live CRM records: source -> (source id, lifecycle stage the CRM holds)."""
        ident, persons = schema.identities.c, schema.persons.c
        out: dict[int, dict[str, tuple[str, str | None]]] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(list(person_ids)):
                q = (sa.select(ident.canonical_id, persons.source, persons.source_id, persons.data)
                     .join(schema.persons, sa.and_(persons.source == ident.source,
                                                   persons.source_id == ident.source_id))
                     .where(ident.entity == "person", ident.canonical_id.in_(chunk), persons.archived.is_(False)))
                for cid, source, sid, data in conn.execute(q):
                    out.setdefault(int(cid), {})[source] = (sid, orjson.loads(data).get("lifecycle_stage"))
        return out

    def people_changed_since(self, since_ms: int) -> set[int]:
        """People whose score, hand-off, CRM records or identity changed at or after a moment."""
        sc, h, ident, persons = schema.scores.c, schema.handoffs.c, schema.identities.c, schema.persons.c
        queries = [
            sa.select(sc.person_id).where(sc.scored_ms >= since_ms),
            sa.select(schema.outcomes.c.person_id).where(schema.outcomes.c.recorded_ms >= since_ms),
            sa.select(h.person_id).where(h.done_ms >= since_ms),
            sa.select(ident.canonical_id).where(ident.entity == "person", ident.linked_ms >= since_ms),
            sa.select(ident.canonical_id).join(schema.persons, sa.and_(
                persons.source == ident.source, persons.source_id == ident.source_id)).where(
                ident.entity == "person", persons.stored_ms >= since_ms),
        ]
        with self.engine.connect() as conn:
            return {int(p) for q in queries for p in conn.execute(q).scalars()}

    def outcomes_of(self, person_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """What sales recorded about each person's hand-offs (the closed loop), by canonical person."""
        o = schema.outcomes.c
        out: dict[int, list[dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(list(person_ids)):
                for row in conn.execute(sa.select(schema.outcomes).where(o.person_id.in_(chunk))):
                    out.setdefault(int(row.person_id), []).append(row._asdict())
        return out

    def written_count(self, source: str | None = None) -> int:
        t = schema.writeback_state.c
        q = sa.select(sa.func.count()).select_from(schema.writeback_state)
        if source:
            q = q.where(t.source == source)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    # -- hand-offs -------------------------------------------------------------------------------

    def open(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Note hand-offs to make (key, person_id, company_id, target); existing keys are left alone."""
        if not rows:
            return
        stamp = self.clock()
        with self.engine.begin() as conn:
            conn.execute(self.store._insert(schema.handoffs).on_conflict_do_nothing(), [
                {**r, "status": PENDING, "reused": False, "created_ms": stamp} for r in rows])

    def claim(self, keys: Sequence[str], lease_ms: int, holder: str | None = None) -> list[str]:
        """Take the pending hand-offs no live run holds; returns the keys now ours."""
        holder = holder or this_process()
        h = schema.handoffs.c
        now = self.clock()
        mine: list[str] = []
        with self.engine.connect() as conn:
            for chunk in chunked(list(keys)):
                rows = conn.execute(sa.select(h.key, h.claimed_by, h.lease_until_ms).where(
                    h.key.in_(chunk), h.status == PENDING)).all()
                for key, by, until in rows:
                    free = until is None or until < now or by == holder or _holder_dead(by)
                    if not free:
                        continue
                    # Conditional on what we read: if another run took it meanwhile, nothing changes.
                    same_by = h.claimed_by.is_(None) if by is None else h.claimed_by == by
                    same_until = h.lease_until_ms.is_(None) if until is None else h.lease_until_ms == until
                    result = conn.execute(sa.update(schema.handoffs).where(
                        h.key == key, h.status == PENDING, same_by, same_until).values(
                        claimed_by=holder, lease_until_ms=now + lease_ms))
                    conn.commit()
                    if result.rowcount == 1:
                        mine.append(key)
        return mine

    def release(self, keys: Sequence[str], holder: str | None = None) -> None:
        holder = holder or this_process()
        h = schema.handoffs.c
        with self.engine.begin() as conn:
            for chunk in chunked(list(keys)):
                conn.execute(sa.update(schema.handoffs).where(h.key.in_(chunk), h.claimed_by == holder,
                                                             h.status == PENDING).values(lease_until_ms=None))

    def complete(self, key: str, **values: Any) -> None:
        if isinstance(values.get("summary"), Mapping | list):
            values["summary"] = orjson.dumps(values["summary"]).decode()
        with self.engine.begin() as conn:
            conn.execute(sa.update(schema.handoffs).where(schema.handoffs.c.key == key).values(
                status=DONE, done_ms=self.clock(), lease_until_ms=None, **values))

    def handoffs(self, *, status: str | None = None, keys: Sequence[str] | None = None,
                 person_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        h = schema.handoffs.c
        q = sa.select(schema.handoffs).order_by(h.done_ms, h.key)
        if status:
            q = q.where(h.status == status)
        out: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            if keys is None and person_ids is None:
                out = [_handoff(r) for r in conn.execute(q)]
            for chunk in chunked(list(keys or [])):
                out.extend(_handoff(r) for r in conn.execute(q.where(h.key.in_(chunk))))
            for chunk in chunked(list(person_ids or [])):
                out.extend(_handoff(r) for r in conn.execute(q.where(h.person_id.in_(chunk))))
        return out

    def handed_off_people(self, recycle_after_ms: int | None = None) -> set[int]:
        """People whose hand-off stands: done and not recycled, or recycled (rejected or lost, back to
        nurture) less than ``recycle_after_ms`` ago; None: a recycled hand-off stands for ever."""
        h = schema.handoffs.c
        now = self.clock()
        standing: set[int] = set()
        with self.engine.connect() as conn:
            for person, recycled_ms in conn.execute(sa.select(h.person_id, h.recycled_ms).where(h.status == DONE)):
                if recycled_ms is None or recycle_after_ms is None or (
                        recycle_after_ms > 0 and now - int(recycled_ms) < recycle_after_ms):
                    standing.add(int(person))
        return standing

    def generations(self, person_ids: Sequence[int]) -> dict[int, tuple[int, bool]]:
        """Each person's latest hand-off generation, and whether it was recycled."""
        h = schema.handoffs.c
        out: dict[int, tuple[int, bool]] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(list(person_ids)):
                for person, generation, recycled_ms in conn.execute(sa.select(h.person_id, h.generation,
                                                                              h.recycled_ms).where(
                        h.person_id.in_(chunk))):
                    if int(person) not in out or int(generation) > out[int(person)][0]:
                        out[int(person)] = (int(generation), recycled_ms is not None)
        return out

    def recycle(self, key: str, at_ms: int) -> bool:
        """Send a hand-off's person back to nurture (sales rejected or lost it); True when it changed."""
        h = schema.handoffs.c
        with self.engine.begin() as conn:
            return bool(conn.execute(sa.update(schema.handoffs).where(
                h.key == key, h.status == DONE, h.recycled_ms.is_(None)).values(recycled_ms=at_ms)).rowcount)

    def assignments(self, owner_id: str, since_ms: int | None) -> int:
        """Hand-offs given to an owner since a moment: what routing's caps and round robin count."""
        h = schema.handoffs.c
        q = sa.select(sa.func.count()).where(h.owner_id == owner_id, h.status == DONE, h.reused.is_(False))
        if since_ms is not None:
            q = q.where(h.done_ms >= since_ms)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    # -- notification outbox ---------------------------------------------------------------------

    def enqueue(self, key: str, channels: Sequence[str]) -> None:
        if not channels:
            return
        stamp = self.clock()
        with self.engine.begin() as conn:
            conn.execute(self.store._insert(schema.notifications).on_conflict_do_nothing(), [
                {"handoff_key": key, "channel": c, "status": PENDING, "attempts": 0, "next_ms": stamp,
                 "created_ms": stamp} for c in channels])

    def due_notifications(self, limit: int = 500, holder: str | None = None) -> list[dict[str, Any]]:
        """Take the notices due now for this run to deliver, in the order it must deliver them.

        Each is marked as being sent (by whom, its place in the run's order, until when) with one
        conditional UPDATE, so that of two runs at the same time only one sends it. The run delivers
        them one after the other and records each outcome before the next; so when it dies, only the
        first of its notices without an outcome may have reached its channel. That one is never sent
        again (a chat message cannot be taken back) but marked failed with the reason; the ones after
        it were never tried and are due again at once. A lease that ran out counts as a death.
        """
        holder = holder or this_process()
        n = schema.notifications.c
        now = self.clock()
        self._recover(now)
        mine: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            rows = [r._asdict() for r in conn.execute(sa.select(schema.notifications).where(
                n.status == PENDING, n.next_ms <= now).order_by(n.next_ms, n.handoff_key, n.channel).limit(limit))]
            for row in rows:
                taken = conn.execute(sa.update(schema.notifications).where(
                    n.handoff_key == row["handoff_key"], n.channel == row["channel"], n.status == PENDING,
                    n.next_ms == row["next_ms"]).values(status=SENDING, error=f"{SENDING_BY}{holder} #{len(mine):06d}",
                                                        next_ms=now + NOTICE_LEASE_MS))
                conn.commit()
                if taken.rowcount == 1:
                    mine.append(row)
        return mine

    def _recover(self, now: int) -> None:
        """Notices taken by a run that ended (or outlived its lease) without recording them: its first one
        fails as possibly delivered, the rest are due again."""
        n = schema.notifications.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(n.handoff_key, n.channel, n.error, n.next_ms).where(
                n.status == SENDING)).all()
            runs: dict[str, list[tuple[str, str, str, str | None]]] = {}
            for key, channel, error, until in rows:
                by, _, place = str(error or "").removeprefix(SENDING_BY).rpartition(" #")
                if until <= now or _holder_dead(by):
                    runs.setdefault(by, []).append((place, key, channel, error))
            for taken in runs.values():
                taken.sort()
                for i, (_, key, channel, error) in enumerate(taken):
                    values = {"status": "failed", "error": CUT_OFF} if i == 0 else {
                        "status": PENDING, "next_ms": now, "error": None}
                    # Conditional on what was read: a run recovering at the same time changes nothing twice.
                    conn.execute(sa.update(schema.notifications).where(
                        n.handoff_key == key, n.channel == channel, n.status == SENDING, n.error == error
                    ).values(**values))
                conn.commit()

    def notification_outcome(self, key: str, channel: str, *, sent: bool, attempts: int,
                             error: str | None = None, retry_at_ms: int | None = None) -> None:
        n = schema.notifications.c
        if sent:
            values: dict[str, Any] = {"status": "sent", "sent_ms": self.clock(), "error": None}
        elif retry_at_ms is None:
            values = {"status": "failed", "error": error}
        else:
            values = {"status": PENDING, "next_ms": retry_at_ms, "error": error}
        with self.engine.begin() as conn:
            conn.execute(sa.update(schema.notifications).where(n.handoff_key == key, n.channel == channel).values(
                attempts=n.attempts + attempts, **values))

    def notifications(self) -> list[dict[str, Any]]:
        n = schema.notifications.c
        with self.engine.connect() as conn:
            return [r._asdict() for r in conn.execute(sa.select(schema.notifications).order_by(
                n.handoff_key, n.channel))]


def _handoff(row: Any) -> dict[str, Any]:
    out = row._asdict()
    if out.get("summary"):
        out["summary"] = orjson.loads(out["summary"])
    return out


def iter_scores(store: Store, *, stage: str | None = None, person_ids: Iterable[int] | None = None,
                batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
    """Stored person scores in batches, by person id (memory stays flat however many are stored):
    all of them, or only those of ``person_ids``."""
    sc = schema.scores.c
    base = sa.select(schema.scores).order_by(sc.person_id)
    if stage:
        base = base.where(sc.stage == stage)
    if person_ids is not None:
        for chunk in chunked(sorted(set(person_ids)), batch):
            rows = _score_rows(store, base.where(sc.person_id.in_(chunk)))
            if rows:
                yield rows
        return
    last = -1
    while rows := _score_rows(store, base.where(sc.person_id > last).limit(batch)):
        yield rows
        last = int(rows[-1]["person_id"])


def _score_rows(store: Store, query: Any) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [{**r._asdict(), "data": orjson.loads(r.data)} for r in conn.execute(query)]
