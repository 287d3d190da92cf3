"""The SLA's rows in the store: clocks, the ladder steps taken on them, and the outcomes sales recorded.

Claims make the ladder safe on several replicas: a tick takes the clocks whose next step is due with
one conditional UPDATE (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and a lease; a step is taken by
inserting its row, unique per clock and step, so it is sent once across restarts and replicas.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.store import schema
from crmbridge.store.engine import chunked
from crmbridge.store.holders import holder_dead, this_process
from crmbridge.store.store import Store

OPEN, MET, MISSED, REASSIGNED, CLOSED = "open", "met", "missed", "reassigned", "closed"
SENT, RECORDED, RETRY, FAILED, SKIPPED = "sent", "recorded", "retry", "failed", "skipped"
# A step whose notice is being delivered: ``channels`` lists those delivered or under way, ``error`` names
# the process delivering (SENDING_BY + holder) and ``next_ms`` the end of its lease.
SENDING, SENDING_BY = "sending", "sending by "

_ASYNC_COMMIT = sa.text("SET LOCAL synchronous_commit TO OFF")
CLOCK_COLUMNS = tuple(c.name for c in schema.sla_clocks.columns)
_UPDATE_CLOCK = sa.update(schema.sla_clocks).where(schema.sla_clocks.c.id == sa.bindparam("which_clock"))
_STEP_OUTCOME = (sa.update(schema.sla_steps)
                 .where(schema.sla_steps.c.clock_id == sa.bindparam("which_clock"),
                        schema.sla_steps.c.kind == sa.bindparam("which_kind"),
                        schema.sla_steps.c.seq == sa.bindparam("which_seq"))
                 .values({name: sa.bindparam(f"new_{name}")
                          for name in ("status", "channels", "attempts", "next_ms", "error")}))


class SlaLedger:
    def __init__(self, store: Store, holder: str | None = None) -> None:
        self.store = store
        self.engine = store.engine
        self.holder = holder or this_process()
        self._postgres = store.dialect == "postgresql"
        self._pending: dict[tuple[Any, tuple[str, ...]], list[dict[str, Any]]] | None = None
        self._rows: dict[tuple[Any, ...], tuple[Any, tuple[str, ...]]] = {}
        self._take_step = (store._insert(schema.sla_steps)
                           .on_conflict_do_nothing(index_elements=["clock_id", "kind", "seq"])
                           .returning(schema.sla_steps.c.clock_id))

    # -- clocks --------------------------------------------------------------------------------------

    def unclocked_handoffs(self, limit: int = 5000, since_ms: int | None = None) -> list[dict[str, Any]]:
        """Hand-offs done (a deal with an owner exists) whose clocks have not been started yet; with
        ``since_ms``, only those done from then on (the tick's watermark: older ones were looked at)."""
        h, c = schema.handoffs.c, schema.sla_clocks.c
        started = sa.select(c.id).where(c.handoff_key == h.key, c.generation == h.generation).exists()
        q = (sa.select(h.key, h.person_id, h.company_id, h.target, h.deal_id, h.owner_id, h.mode, h.summary,
                       h.done_ms, h.generation)
             .where(h.status == "done", h.recycled_ms.is_(None), h.done_ms.is_not(None), ~started)
             .order_by(h.done_ms).limit(limit))
        if since_ms is not None:
            q = q.where(h.done_ms >= since_ms)
        with self.engine.connect() as conn:
            rows = [r._asdict() for r in conn.execute(q)]
        for r in rows:
            r["summary"] = orjson.loads(r["summary"]) if r["summary"] else {}
        return rows

    def first_sources(self, person_ids: Sequence[int]) -> dict[int, list[str]]:
        """The CRMs each canonical person is known in, oldest link first (where the lead came from)."""
        i = schema.identities.c
        out: dict[int, list[str]] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(list(person_ids)):
                q = (sa.select(i.canonical_id, i.source).where(i.entity == "person", i.canonical_id.in_(chunk))
                     .order_by(i.linked_ms))
                for cid, source in conn.execute(q):
                    out.setdefault(int(cid), []).append(source)
        return out

    def insert_clocks(self, rows: Sequence[Mapping[str, Any]], conn: sa.Connection | None = None) -> int:
        if not rows:
            return 0
        stmt = self.store._insert(schema.sla_clocks).on_conflict_do_nothing(
            index_elements=["handoff_key", "generation", "policy", "reassignments"])
        if conn is not None:
            return len(conn.execute(stmt.returning(schema.sla_clocks.c.id), list(rows)).all())
        with self.engine.begin() as own:
            return len(own.execute(stmt.returning(schema.sla_clocks.c.id), list(rows)).all())

    def clocks(self, *, status: str | Sequence[str] | None = None, ids: Sequence[int] | None = None,
               keys: Sequence[str] | None = None, limit: int | None = None,
               order: str = "due_ms") -> list[dict[str, Any]]:
        self.flush()
        c = schema.sla_clocks.c
        q = sa.select(schema.sla_clocks)
        if status is not None:
            q = q.where(c.status.in_([status] if isinstance(status, str) else list(status)))
        if ids is not None:
            q = q.where(c.id.in_(list(ids)))
        if keys is not None:
            q = q.where(c.handoff_key.in_(list(keys)))
        q = q.order_by(c[order], c.id)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [r._asdict() for r in conn.execute(q)]

    def open_clocks_of(self, *, person_ids: Iterable[int] = (), company_ids: Iterable[int] = (),
                       deals: Iterable[tuple[str, str]] = ()) -> list[dict[str, Any]]:
        """Clocks still running (or settled, to move an earlier touch in) on these people, companies or deals."""
        self.flush()
        c = schema.sla_clocks.c
        live = c.status.in_((OPEN, MET, MISSED))
        found: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(sorted(set(person_ids))):
                for r in conn.execute(sa.select(schema.sla_clocks).where(live, c.person_id.in_(chunk))):
                    found[r.id] = r._asdict()
            for chunk in chunked(sorted(set(company_ids))):
                for r in conn.execute(sa.select(schema.sla_clocks).where(live, c.company_id.in_(chunk))):
                    found[r.id] = r._asdict()
            by_target: dict[str, set[str]] = {}
            for target, deal_id in deals:
                by_target.setdefault(target, set()).add(deal_id)
            for target, ids in by_target.items():
                for chunk in chunked(sorted(ids)):
                    for r in conn.execute(sa.select(schema.sla_clocks).where(live, c.target == target,
                                                                             c.deal_id.in_(chunk))):
                        found[r.id] = r._asdict()
        return list(found.values())

    def next_step_ms(self) -> int | None:
        """When the next ladder step of any open clock comes due."""
        c = schema.sla_clocks.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.min(c.next_ms)).where(c.status == OPEN)).scalar()

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Clock updates and recorded step outcomes written together at the end of the block (or before the
        ledger's next read), in one transaction: what a tick does per due clock then costs one commit, the
        step's. A crash before the end leaves the steps taken but their clocks not moved on; the next tick
        finds those steps already taken and moves the clocks on without repeating them."""
        self._pending = {}
        try:
            yield
        finally:
            self.flush()
            self._pending = None

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        self._rows = {}
        with self.engine.begin() as conn:
            for (stmt, _), rows in pending.items():
                conn.execute(stmt, rows)

    def _defer(self, stmt: sa.Update, params: dict[str, Any]) -> bool:
        """Queue a write in a batched block; a second write of the same row with other columns flushes first,
        so writes of one row keep their order."""
        if self._pending is None:
            return False
        shape = (stmt, tuple(params))
        row = (stmt, params["which_clock"], params.get("which_kind"), params.get("which_seq"))
        if self._rows.get(row, shape) != shape:
            self.flush()
        self._rows[row] = shape
        self._pending.setdefault(shape, []).append(params)
        return True

    def update_clock(self, clock_id: int, conn: sa.Connection | None = None, **values: Any) -> None:
        # One statement object for every call (the SET columns come from the parameters): the ladder
        # updates a clock per step, and building and keying a new statement each time cost more than the SQL.
        params = {"which_clock": clock_id, **values}
        if conn is not None:
            conn.execute(_UPDATE_CLOCK, params)
            return
        if self._defer(_UPDATE_CLOCK, params):
            return
        with self.engine.begin() as own:
            own.execute(_UPDATE_CLOCK, params)

    def mark_breached(self, now_ms: int, updated_ms: int) -> int:
        """Open clocks past their due instant become breached: one UPDATE, however many are open."""
        c = schema.sla_clocks.c
        with self.engine.begin() as conn:
            return int(conn.execute(sa.update(schema.sla_clocks).where(
                c.status == OPEN, c.breached.is_(False), c.due_ms <= now_ms).values(
                breached=True, updated_ms=updated_ms)).rowcount or 0)

    def claim_due(self, now_ms: int, limit: int, lease_ms: int) -> list[dict[str, Any]]:
        """Open clocks whose next ladder step is due, oldest first, for ``lease_ms``."""
        self.flush()
        lock = "FOR UPDATE SKIP LOCKED" if self._postgres else ""
        dead = [h for h in self._holders() if holder_dead(h)] or [""]
        sql = sa.text(f"""
            UPDATE sla_clocks SET claimed_by = :holder, lease_until_ms = :lease
            WHERE id IN (
                SELECT id FROM sla_clocks
                WHERE status = :open AND next_ms IS NOT NULL AND next_ms <= :now
                  AND (claimed_by IS NULL OR lease_until_ms < :now OR claimed_by IN :dead
                       OR claimed_by = :holder)
                ORDER BY next_ms, id LIMIT :limit {lock})
            RETURNING {", ".join(CLOCK_COLUMNS)}
        """).bindparams(sa.bindparam("dead", expanding=True))
        with self.engine.begin() as conn:
            rows = conn.execute(sql, {"holder": self.holder, "lease": now_ms + lease_ms, "open": OPEN,
                                      "now": now_ms, "limit": limit, "dead": dead}).all()
        return sorted((r._asdict() for r in rows), key=lambda r: (r["next_ms"], r["id"]))

    def _holders(self) -> list[str]:
        c = schema.sla_clocks.c
        with self.engine.connect() as conn:
            return [h for h in conn.execute(sa.select(c.claimed_by).where(
                c.status == OPEN, c.claimed_by.is_not(None)).distinct()).scalars() if h]

    # -- steps ---------------------------------------------------------------------------------------

    def take_step(self, clock_id: int, kind: str, seq: int, *, due_ms: int, taken_ms: int, reason: str,
                  recipient: str | None, conn: sa.Connection) -> bool:
        """Record a step as taken; False when it already was (by this process before a restart, or another).

        On PostgreSQL the commit does not wait for the disk: a tick takes hundreds of steps, one commit each,
        and waiting for every flush made a tick of 1,500 steps last 8 s. What this risks is only a crash of
        the database server itself in the fraction of a second before its flush: the step would be taken
        again, and could be sent twice; a crash of crmbridge loses nothing."""
        if self._postgres:
            conn.execute(_ASYNC_COMMIT)
        stmt = self._take_step
        row = {"clock_id": clock_id, "kind": kind, "seq": seq, "due_ms": due_ms, "taken_ms": taken_ms,
               "status": "pending", "recipient": recipient, "reason": reason, "channels": "[]", "attempts": 0,
               "next_ms": taken_ms}
        return bool(conn.execute(stmt, [row]).all())

    def take_steps(self, rows: Sequence[Mapping[str, Any]]) -> set[tuple[int, str, int]]:
        """Take many steps in one transaction; returns the (clock, kind, seq) this call took."""
        if not rows:
            return set()
        full = [{**r, "status": "pending", "channels": "[]", "attempts": 0, "next_ms": r["taken_ms"]} for r in rows]
        c = schema.sla_steps.c
        stmt = (self.store._insert(schema.sla_steps).on_conflict_do_nothing(index_elements=["clock_id", "kind", "seq"])
                .returning(c.clock_id, c.kind, c.seq))
        self.flush()
        with self.engine.begin() as conn:
            return {(int(r[0]), str(r[1]), int(r[2])) for r in conn.execute(stmt, full).all()}

    def step_outcome(self, clock_id: int, kind: str, seq: int, *, status: str, channels: Sequence[str],
                     attempts: int, next_ms: int | None = None, error: str | None = None) -> None:
        params = {"which_clock": clock_id, "which_kind": kind, "which_seq": seq, "new_status": status,
                  "new_channels": orjson.dumps(sorted(channels)).decode(), "new_attempts": attempts,
                  "new_next_ms": next_ms, "new_error": error}
        # Only outcomes with nothing sent wait for the batch: a delivery's outcome is written at once, or a
        # crash before the batch ends would have the notice sent again.
        if status in (RECORDED, SKIPPED) and self._defer(_STEP_OUTCOME, params):
            return
        with self.engine.begin() as conn:
            conn.execute(_STEP_OUTCOME, params)

    def begin_delivery(self, clock_id: int, kind: str, seq: int, *, expect: tuple[str, str | None],
                       channels: Sequence[str], lease_until_ms: int) -> bool:
        """Claim the step's delivery to ``channels`` (those delivered and the one about to be), if the step is
        still as ``expect`` says (status, and for a delivery under way who holds it): False when another
        process got there first. Written before the attempt, so a process that dies during it leaves the
        channel listed, and the channel is not tried again."""
        self.flush()
        s = schema.sla_steps.c
        status, holder = expect
        where = [s.clock_id == clock_id, s.kind == kind, s.seq == seq, s.status == status]
        if holder is not None:
            where.append(s.error == holder)
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(schema.sla_steps).where(*where).values(
                status=SENDING, channels=orjson.dumps(sorted(channels)).decode(), next_ms=lease_until_ms,
                error=SENDING_BY + self.holder))
            return done.rowcount == 1

    def retake_step(self, clock_id: int, kind: str, seq: int, *, taken_ms: int, reason: str,
                    recipient: str | None) -> bool:
        """A step a dead process took but never carried out (still pending), taken again by this one."""
        self.flush()
        s = schema.sla_steps.c
        with self.engine.begin() as conn:
            return conn.execute(sa.update(schema.sla_steps).where(
                s.clock_id == clock_id, s.kind == kind, s.seq == seq, s.status == "pending").values(
                taken_ms=taken_ms, reason=reason, recipient=recipient)).rowcount == 1

    def unsent_steps(self, now_ms: int, stale_ms: int, limit: int = 500) -> list[dict[str, Any]]:
        """Steps to deliver (again): retries whose time has come, steps recorded by a process that died
        before it began to send them (pending for longer than ``stale_ms``), and deliveries cut off by the
        end of their process or of their lease."""
        self.flush()
        s = schema.sla_steps.c
        due = sa.or_(sa.and_(s.status == RETRY, s.next_ms <= now_ms),
                     sa.and_(s.status == "pending", s.taken_ms <= now_ms - stale_ms),
                     s.status == SENDING)
        with self.engine.connect() as conn:
            rows = [r._asdict() for r in conn.execute(sa.select(schema.sla_steps).where(due)
                                                      .order_by(s.taken_ms).limit(limit))]
        return [r for r in rows if r["status"] != SENDING or r["next_ms"] is None or r["next_ms"] <= now_ms
                or holder_dead(str(r["error"] or "").removeprefix(SENDING_BY))]

    def steps(self, clock_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        self.flush()
        s = schema.sla_steps.c
        q = sa.select(schema.sla_steps).order_by(s.clock_id, s.taken_ms)
        out: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            if clock_ids is None:
                return [r._asdict() for r in conn.execute(q)]
            for chunk in chunked(list(clock_ids)):
                out += [r._asdict() for r in conn.execute(q.where(s.clock_id.in_(chunk)))]
        return out

    def step_counts(self, clock_ids: Sequence[int] | None = None) -> dict[int, dict[str, int]]:
        self.flush()
        s = schema.sla_steps.c
        q = sa.select(s.clock_id, s.kind, sa.func.count()).where(s.status != SKIPPED).group_by(s.clock_id, s.kind)
        out: dict[int, dict[str, int]] = {}
        with self.engine.connect() as conn:
            chunks = [None] if clock_ids is None else list(chunked(list(clock_ids)))
            for chunk in chunks:
                query = q if chunk is None else q.where(s.clock_id.in_(chunk))
                for cid, kind, n in conn.execute(query):
                    out.setdefault(int(cid), {})[kind] = int(n)
        return out

    # -- outcomes ------------------------------------------------------------------------------------

    def record_outcomes(self, rows: Sequence[Mapping[str, Any]]) -> int:
        if not rows:
            return 0
        stmt = self.store._insert(schema.outcomes).on_conflict_do_nothing(
            index_elements=["handoff_key", "generation", "kind"])
        with self.engine.begin() as conn:
            return len(conn.execute(stmt.returning(schema.outcomes.c.kind), list(rows)).all())

    def outcomes(self, person_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        o = schema.outcomes.c
        q = sa.select(schema.outcomes).order_by(o.at_ms)
        with self.engine.connect() as conn:
            if person_ids is None:
                return [r._asdict() for r in conn.execute(q)]
            out: list[dict[str, Any]] = []
            for chunk in chunked(list(person_ids)):
                out += [r._asdict() for r in conn.execute(q.where(o.person_id.in_(chunk)))]
            return out

    # -- surges ----------------------------------------------------------------------------------------

    def surges(self, limit: int = 20) -> list[dict[str, Any]]:
        """Account surges noticed, newest first: company, scores before and now, owner, whether told."""
        s = schema.surges.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.surges).order_by(s.at_ms.desc()).limit(limit)).all()
        out = []
        for r in rows:
            detail = orjson.loads(r.detail or "{}")
            out.append({"company_id": r.company_id, "company": detail.get("company"), "at_ms": r.at_ms,
                        "score_before": r.score_before, "score_now": r.score_now,
                        "owner": detail.get("owner_label"), "people": detail.get("people") or [],
                        "notified_ms": r.notified_ms, "ended_ms": detail.get("ended_ms")})
        return out
