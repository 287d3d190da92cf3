"""Cursors: how far each reader has come. A backfill's resume point and a stream's incremental
checkpoint (both the connector's own, opaque to the core), and the core's watermarks over what the
store received (``Watermark``: a timestamp, the last id at it, and how far back the next pass re-reads).

Each is committed in the transaction of the work it follows, so a resumed reader neither skips nor
repeats more than its look-back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.store import schema


@dataclass(frozen=True, slots=True)
class Watermark:
    """The newest change a reader has seen, and how much before it the next pass reads again.

    The look-back covers changes committed late (a transaction that began before the newest one
    seen and ended after it); what it re-reads is recognised as unchanged and costs no write.
    """

    timestamp_ms: int = 0
    last_id: str | None = None  # the record seen last at ``timestamp_ms``, for readers that page by (time, id)
    lookback_ms: int = 0

    @property
    def since_ms(self) -> int:
        """Where the next pass starts reading."""
        return max(0, self.timestamp_ms - self.lookback_ms)

    def advanced(self, timestamp_ms: int, last_id: str | None = None) -> Watermark:
        """A watermark never moves back: a pass that saw nothing newer keeps the old one."""
        if timestamp_ms < self.timestamp_ms or (timestamp_ms == self.timestamp_ms and last_id is None):
            return self
        return Watermark(timestamp_ms, last_id, self.lookback_ms)

    def as_dict(self) -> dict[str, Any]:
        return {"timestamp_ms": self.timestamp_ms, "last_id": self.last_id, "lookback_ms": self.lookback_ms}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any], lookback_ms: int | None = None) -> Watermark:
        """The stored form; ``lookback_ms`` (the reader's current setting) wins over the stored one."""
        stamp = value.get("timestamp_ms", value.get("since_ms", value.get("done_ms", 0)))  # as stored before
        return cls(int(stamp), value.get("last_id"),
                   int(value.get("lookback_ms", 0)) if lookback_ms is None else lookback_ms)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Cursors:
    """The ``cursors`` table: one value per (source, stream, kind)."""

    def __init__(self, engine: sa.Engine, insert: Callable[[sa.Table], Any]) -> None:
        self.engine = engine
        self._insert = insert

    def put_in(self, conn: sa.Connection, source: str, stream: str, kind: str, value: Mapping[str, Any]) -> None:
        """Within the caller's transaction: the checkpoint commits with the work it follows."""
        row = {"source": source, "stream": stream, "kind": kind, "value": orjson.dumps(value).decode(),
               "updated_ms": now_ms()}
        stmt = self._insert(schema.cursors)
        stmt = stmt.on_conflict_do_update(index_elements=["source", "stream", "kind"],
                                          set_={"value": stmt.excluded.value, "updated_ms": stmt.excluded.updated_ms})
        conn.execute(stmt, row)

    def put(self, source: str, stream: str, kind: str, value: Mapping[str, Any]) -> None:
        with self.engine.begin() as conn:
            self.put_in(conn, source, stream, kind, value)

    def get(self, source: str, stream: str, kind: str) -> dict[str, Any] | None:
        c = schema.cursors.c
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(c.value).where(c.source == source, c.stream == stream,
                                                          c.kind == kind)).scalar()
        return None if value is None else orjson.loads(value)

    def clear(self, source: str, kind: str) -> None:
        c = schema.cursors.c
        with self.engine.begin() as conn:
            conn.execute(sa.delete(schema.cursors).where(c.source == source, c.kind == kind))

    def all(self, source: str | None = None) -> list[dict[str, Any]]:
        c = schema.cursors.c
        q = sa.select(c.source, c.stream, c.kind, c.value, c.updated_ms).order_by(c.source, c.stream, c.kind)
        if source:
            q = q.where(c.source == source)
        with self.engine.connect() as conn:
            return [{"source": s, "stream": st, "kind": k, "value": orjson.loads(v), "updated_ms": u}
                    for s, st, k, v, u in conn.execute(q)]

    def watermark(self, source: str, stream: str, kind: str, *, lookback_ms: int = 0) -> Watermark | None:
        """A reader's watermark, None before its first pass; read with the reader's current look-back."""
        value = self.get(source, stream, kind)
        return None if value is None else Watermark.from_dict(value, lookback_ms)

    def advance(self, source: str, stream: str, kind: str, mark: Watermark) -> None:
        self.put(source, stream, kind, mark.as_dict())
