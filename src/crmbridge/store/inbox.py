"""The webhook inbox in the store: events are written before the delivery is acknowledged, claimed by
workers in batches, and settled as done, retried later, or quarantined.

A claim is one UPDATE … RETURNING over the oldest due rows; on PostgreSQL the rows are picked with
``FOR UPDATE SKIP LOCKED``, so several processes drain one inbox and no event is handed to two of
them. A claim carries a lease: rows of a worker that died are claimed again once it runs out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.connectors import WebhookEvent
from crmbridge.store import schema
from crmbridge.store.engine import chunked
from crmbridge.store.holders import holder_dead, this_process
from crmbridge.store.store import Store, now_ms

PENDING, CLAIMED, DONE, RETRY, QUARANTINED = "pending", "claimed", "done", "retry", "quarantined"


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """A stored event, as a worker claims it."""

    id: int
    source: str
    event_id: str
    stream: str
    object_id: str
    action: str
    occurred_ms: int
    received_ms: int
    attempts: int
    merged_into: str | None = None
    merged_ids: tuple[str, ...] = ()
    property_name: str | None = None


@dataclass(slots=True)
class Backlog:
    """What is waiting: how many events are due, and when the oldest and newest of them arrived."""

    due: int = 0
    oldest_ms: int | None = None
    newest_ms: int | None = None


_ARRAY_COLUMNS = (("source", "text"), ("event_id", "text"), ("stream", "text"), ("object_id", "text"),
                  ("action", "text"), ("occurred_ms", "bigint"), ("received_ms", "bigint"), ("detail", "text"),
                  ("status", "text"), ("attempts", "integer"), ("next_ms", "bigint"))
_INSERT_ARRAYS = sa.text(
    f"INSERT INTO inbox ({', '.join(name for name, _ in _ARRAY_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'CAST(:{name} AS {kind}[])' for name, kind in _ARRAY_COLUMNS)}) "
    "ON CONFLICT (source, event_id) DO NOTHING RETURNING id")


def _detail(event: WebhookEvent) -> str:
    detail: dict[str, Any] = {}
    if event.merged_into is not None:
        detail["merged_into"] = event.merged_into
    if event.merged_ids:
        detail["merged_ids"] = list(event.merged_ids)
    if event.property_name:
        detail["property_name"] = event.property_name
    return orjson.dumps(detail).decode()


class Inbox:
    def __init__(self, store: Store, holder: str | None = None) -> None:
        self.store = store
        self.engine = store.engine
        self.holder = holder or this_process()
        self._postgres = store.dialect == "postgresql"

    # -- the receiver's side -------------------------------------------------------------------

    def add(self, source: str, events: Sequence[WebhookEvent], received_ms: int | None = None) -> int:
        """Store events; ones already stored (a redelivery) are ignored. Returns how many were new."""
        return self.add_many([(source, events)], received_ms)

    def add_many(self, deliveries: Iterable[tuple[str, Sequence[WebhookEvent]]], received_ms: int | None = None
                 ) -> int:
        """Several deliveries in one transaction (the receiver commits concurrent requests together)."""
        at = now_ms() if received_ms is None else received_ms
        rows, seen = [], set()
        for source, events in deliveries:
            for e in events:
                if (source, e.event_id) in seen:
                    continue  # the same event twice in one delivery
                seen.add((source, e.event_id))
                rows.append({"source": source, "event_id": e.event_id, "stream": e.stream, "object_id": e.object_id,
                             "action": e.action, "occurred_ms": e.occurred_ms, "received_ms": at,
                             "detail": _detail(e), "status": PENDING, "attempts": 0, "next_ms": at})
        if not rows:
            return 0
        with self.engine.begin() as conn:
            if self._postgres:
                # One statement over arrays: an executemany of the same rows takes 3-4 times as long on
                # PostgreSQL, and the receiver's acknowledgements wait for this commit.
                params = {name: [r[name] for r in rows] for name, _ in _ARRAY_COLUMNS}
                return len(conn.execute(_INSERT_ARRAYS, params).all())
            stmt = self.store._insert(schema.inbox).on_conflict_do_nothing(index_elements=["source", "event_id"])
            return len(conn.execute(stmt.returning(schema.inbox.c.id), rows).all())

    # -- the workers' side ---------------------------------------------------------------------

    def dead_holders(self) -> list[str]:
        """Holders of claims that are processes of this host no longer running (killed with -9): their
        claims are taken over at once instead of when the lease runs out."""
        c = schema.inbox.c
        with self.engine.connect() as conn:
            holders = conn.execute(sa.select(c.claimed_by).where(c.status == CLAIMED).distinct()).scalars().all()
        return [h for h in holders if h and holder_dead(h)]

    def backlog(self, now: int | None = None) -> Backlog:
        """Due events (pending, retries whose time has come, claims whose lease ran out or whose holder died)."""
        now = now_ms() if now is None else now
        c = schema.inbox.c
        dead = self.dead_holders()
        due = sa.or_(sa.and_(c.status.in_((PENDING, RETRY)), c.next_ms <= now),
                     sa.and_(c.status == CLAIMED, sa.or_(c.lease_until_ms < now, c.claimed_by.in_(dead or [""]))))
        with self.engine.connect() as conn:
            n, oldest, newest = conn.execute(sa.select(sa.func.count(), sa.func.min(c.received_ms),
                                                       sa.func.max(c.received_ms)).where(due)).one()
        return Backlog(int(n or 0), oldest, newest)

    def claim(self, limit: int, lease_ms: int, now: int | None = None) -> list[InboxEvent]:
        """Take up to ``limit`` due events, oldest first, for ``lease_ms``."""
        now = now_ms() if now is None else now
        lock = "FOR UPDATE SKIP LOCKED" if self._postgres else ""
        dead = self.dead_holders() or [""]
        sql = sa.text(f"""
            UPDATE inbox SET status = :claimed, claimed_by = :holder, lease_until_ms = :lease,
                             attempts = attempts + 1
            WHERE id IN (
                SELECT id FROM inbox
                WHERE (status IN (:pending, :retry) AND next_ms <= :now)
                   OR (status = :claimed AND (lease_until_ms < :now OR claimed_by IN :dead))
                ORDER BY id LIMIT :limit {lock})
            RETURNING id, source, event_id, stream, object_id, action, occurred_ms, received_ms, attempts, detail
        """).bindparams(sa.bindparam("dead", expanding=True))
        with self.engine.begin() as conn:
            rows = conn.execute(sql, {"claimed": CLAIMED, "holder": self.holder, "lease": now + lease_ms,
                                      "pending": PENDING, "retry": RETRY, "now": now, "limit": limit,
                                      "dead": dead}).all()
        events = []
        for r in sorted(rows, key=lambda r: r.id):
            detail = orjson.loads(r.detail or "{}")
            events.append(InboxEvent(r.id, r.source, r.event_id, r.stream, r.object_id, r.action, r.occurred_ms,
                                     r.received_ms, r.attempts, detail.get("merged_into"),
                                     tuple(detail.get("merged_ids") or ()), detail.get("property_name")))
        return events

    def done(self, ids: Sequence[int], now: int | None = None) -> None:
        self._settle(ids, {"status": DONE, "done_ms": now_ms() if now is None else now, "error": None,
                           "lease_until_ms": None})

    def failed(self, events: Sequence[InboxEvent], error: str, *, retry_in_ms: int, max_attempts: int,
               now: int | None = None) -> tuple[int, int]:
        """Back to the queue after ``retry_in_ms``, or quarantined once out of attempts; (retried, quarantined)."""
        now = now_ms() if now is None else now
        spent = [e.id for e in events if e.attempts >= max_attempts]
        again = [e.id for e in events if e.attempts < max_attempts]
        self._settle(again, {"status": RETRY, "next_ms": now + retry_in_ms, "error": error[:500],
                             "lease_until_ms": None})
        self._settle(spent, {"status": QUARANTINED, "error": error[:500], "lease_until_ms": None})
        return len(again), len(spent)

    def _settle(self, ids: Sequence[int], values: dict[str, Any]) -> None:
        c = schema.inbox.c
        with self.engine.begin() as conn:
            for chunk in chunked(list(ids)):
                # Only our own claims: a lease that ran out may have gone to another worker meanwhile.
                conn.execute(sa.update(schema.inbox).where(c.id.in_(chunk), c.status == CLAIMED,
                                                           c.claimed_by == self.holder).values(**values))

    # -- operators' side -----------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """``pending`` (waiting or being worked on), ``done``, ``failed`` (to be retried), ``quarantined``."""
        c = schema.inbox.c
        with self.engine.connect() as conn:
            found = dict(conn.execute(sa.select(c.status, sa.func.count()).group_by(c.status)).all())
        return {"pending": found.get(PENDING, 0) + found.get(CLAIMED, 0), "done": found.get(DONE, 0),
                "failed": found.get(RETRY, 0), "quarantined": found.get(QUARANTINED, 0)}

    def oldest_pending_ms(self) -> int | None:
        c = schema.inbox.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.min(c.received_ms)).where(
                c.status.in_((PENDING, CLAIMED, RETRY)))).scalar()

    def latencies(self, since_ms: int, limit: int = 10_000) -> list[tuple[str, float]]:
        """(source, seconds from arrival to done) of the latest events done since ``since_ms``: for metrics."""
        c = schema.inbox.c
        q = sa.select(c.source, c.received_ms, c.done_ms).where(c.status == DONE, c.done_ms >= since_ms
                                                                 ).order_by(c.done_ms.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [(r.source, max(0.0, (r.done_ms - r.received_ms) / 1000)) for r in conn.execute(q)]

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        c = schema.inbox.c
        q = sa.select(c.id, c.source, c.event_id, c.stream, c.object_id, c.action, c.attempts, c.error
                      ).where(c.status == QUARANTINED).order_by(c.id).limit(limit)
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(q)]

    def replay(self, source: str | None = None, now: int | None = None) -> int:
        """Give quarantined events a fresh set of attempts; returns how many."""
        c = schema.inbox.c
        stmt = sa.update(schema.inbox).where(c.status == QUARANTINED).values(
            status=PENDING, attempts=0, next_ms=now_ms() if now is None else now, claimed_by=None, error=None)
        if source:
            stmt = stmt.where(c.source == source)
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).rowcount or 0)

    def prune(self, older_than_ms: int) -> int:
        """Forget done events received before ``older_than_ms`` (vendors stop redelivering after a day)."""
        c = schema.inbox.c
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(schema.inbox).where(
                c.status == DONE, c.received_ms < older_than_ms)).rowcount or 0)
