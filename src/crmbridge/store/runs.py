"""Runs and quarantine: what each backfill and sync did, and the records that failed to map.

A run shows life with a heartbeat, so one killed with -9 reads as ``interrupted``; a quarantined
record is parked so the rest of its page goes on, and released once it is stored after all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.store import schema
from crmbridge.store.cursors import now_ms
from crmbridge.store.engine import IN_LIMIT
from crmbridge.store.holders import holder_dead, this_process

# A running run that has not shown life for this long is shown as interrupted (killed, or its host gone).
RUN_STALE_MS = 120_000


class Runs:
    """The ``runs`` table: one row per backfill, sync or other recorded command."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def start(self, command: str, source: str) -> int:
        now = now_ms()
        with self.engine.begin() as conn:
            res = conn.execute(sa.insert(schema.runs).values(
                command=command, source=source, started_ms=now, status="running", stats="{}",
                holder=this_process(), heartbeat_ms=now))
            return int(res.inserted_primary_key[0])

    def heartbeat(self, run_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(schema.runs).where(schema.runs.c.id == run_id).values(heartbeat_ms=now_ms()))

    def finish(self, run_id: int, status: str, stats: Mapping[str, Any], error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(schema.runs).where(schema.runs.c.id == run_id).values(
                finished_ms=now_ms(), status=status, stats=orjson.dumps(stats).decode(), error=error))

    def last(self, limit: int = 10, now: int | None = None) -> list[dict[str, Any]]:
        """The newest runs; a ``running`` one whose process is gone (or silent) says ``interrupted``."""
        r = schema.runs.c
        q = sa.select(r.id, r.command, r.source, r.started_ms, r.finished_ms, r.status, r.stats, r.error,
                      r.holder, r.heartbeat_ms).order_by(r.id.desc()).limit(limit)
        now = now_ms() if now is None else now
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                run = {**row._asdict(), "stats": orjson.loads(row.stats)}
                if run["status"] == "running" and (
                        holder_dead(run["holder"]) or now - (run["heartbeat_ms"] or run["started_ms"]) > RUN_STALE_MS):
                    run["status"] = "interrupted"
                out.append(run)
        return out


class Quarantine:
    """The ``quarantine`` table: records that failed to map, by (source, stream, source id)."""

    def __init__(self, engine: sa.Engine, insert: Callable[[sa.Table], Any]) -> None:
        self.engine = engine
        self._insert = insert

    def add(self, source: str, stream: str, source_id: str, error: str, raw: Mapping[str, Any]) -> None:
        now = now_ms()
        stmt = self._insert(schema.quarantine)
        stmt = stmt.on_conflict_do_update(
            index_elements=["source", "stream", "source_id"],
            set_={"error": stmt.excluded.error, "raw": stmt.excluded.raw, "last_seen_ms": now,
                  "attempts": schema.quarantine.c.attempts + 1})
        with self.engine.begin() as conn:
            conn.execute(stmt, {"source": source, "stream": stream, "source_id": source_id, "error": error,
                                "raw": orjson.dumps(raw, default=str).decode(), "attempts": 1,
                                "first_seen_ms": now, "last_seen_ms": now})

    def release(self, source: str, stream: str, source_ids: Iterable[str]) -> None:
        """Forget quarantined records that have since been stored successfully."""
        q = schema.quarantine.c
        ids = list(source_ids)
        with self.engine.begin() as conn:
            for start in range(0, len(ids), IN_LIMIT):
                conn.execute(sa.delete(schema.quarantine).where(q.source == source, q.stream == stream,
                                                                q.source_id.in_(ids[start:start + IN_LIMIT])))

    def list(self, source: str | None = None) -> list[dict[str, Any]]:
        q = schema.quarantine.c
        stmt = sa.select(q.source, q.stream, q.source_id, q.error, q.attempts).order_by(q.source, q.stream,
                                                                                       q.source_id)
        if source:
            stmt = stmt.where(q.source == source)
        with self.engine.connect() as conn:
            return [row._asdict() for row in conn.execute(stmt)]
