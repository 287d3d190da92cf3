"""Cursors: how far each reader has come. A backfill's resume point and a stream's incremental
checkpoint (both the connector's own, opaque to the core), and the core's watermarks over what the
store received (``Watermark``: a timestamp, the last id at it, and how far back the next pass re-reads).

Each is committed in the transaction of the work it follows, so a resumed reader neither skips nor
repeats more than its look-back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.store import schema

# The checkpoint keys a connector uses for the watermark part of its cursor; the rest is its own.
_STAMP, _LAST = "since_ms", "last_id"


@dataclass(frozen=True, slots=True)
class Watermark:
    """The newest change a reader has seen, and how much before it the next pass reads again.

    The look-back covers changes committed late (a transaction that began before the newest one
    seen and ended after it); what it re-reads is recognised as unchanged and costs no write. A
    sync's watermark also carries the connector's own resume state (``position``: a page token, the
    ids a stream last saw), opaque to the core.
    """

    timestamp_ms: int = 0
    last_id: str | None = None  # the record seen last at ``timestamp_ms``, for readers that page by (time, id)
    lookback_ms: int = 0
    position: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def since_ms(self) -> int:
        """Where the next pass starts reading."""
        return max(0, self.timestamp_ms - self.lookback_ms)

    def advanced(self, timestamp_ms: int, last_id: str | None = None) -> Watermark:
        """A watermark never moves back: a pass that saw nothing newer keeps the old one."""
        if timestamp_ms < self.timestamp_ms or (timestamp_ms == self.timestamp_ms and last_id is None):
            return self
        return Watermark(timestamp_ms, last_id, self.lookback_ms, self.position)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"timestamp_ms": self.timestamp_ms, "last_id": self.last_id,
                               "lookback_ms": self.lookback_ms}
        if self.position:
            out["position"] = dict(self.position)
        return out

    @classmethod
    def from_dict(cls, value: Mapping[str, Any], lookback_ms: int | None = None) -> Watermark:
        """The stored form; ``lookback_ms`` (the reader's current setting) wins over the stored one."""
        if "timestamp_ms" not in value:  # stored before watermarks were typed: a checkpoint as it came
            mark = cls.from_checkpoint({_STAMP: value["done_ms"]} if "done_ms" in value else value)
            return mark if lookback_ms is None else Watermark(mark.timestamp_ms, mark.last_id, lookback_ms,
                                                              mark.position)
        return cls(int(value["timestamp_ms"]), value.get("last_id"),
                   int(value.get("lookback_ms", 0)) if lookback_ms is None else lookback_ms,
                   dict(value.get("position") or {}))

    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, Any]) -> Watermark:
        """A connector's checkpoint: ``since_ms`` and ``last_id`` are the watermark, the rest its position.

        The connector applies its own look-back when it reads from the watermark, so none is kept here.
        """
        rest = {k: v for k, v in checkpoint.items() if k not in (_STAMP, _LAST)}
        stamp = checkpoint.get(_STAMP)
        return cls(int(stamp) if stamp is not None else 0, checkpoint.get(_LAST), 0, rest)

    def as_checkpoint(self) -> dict[str, Any]:
        """What the connector gave: its position, with the watermark under its keys when there is one."""
        out = dict(self.position)
        if self.timestamp_ms:
            out[_STAMP] = self.timestamp_ms
        if self.last_id is not None:
            out[_LAST] = self.last_id
        return out


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
