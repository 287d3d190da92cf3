"""Which replica leads the scheduler: a PostgreSQL advisory lock, or a lock file beside a SQLite store.

The lock lives as long as the session (or the open file) that took it: when the leader dies, its
connection closes, the lock is free, and the next replica that asks takes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from crmbridge.logs import get_logger
from crmbridge.store import Store

log = get_logger("crmbridge.leader")

SCHEDULER_LOCK = "crmbridge-scheduler"


def advisory_key(name: str, database: str, schema: str) -> int:
    """A signed 64-bit key for ``pg_try_advisory_lock``: advisory locks span the whole database, so the
    key names the schema too, and deployments in two schemas of one database never share a leader."""
    digest = hashlib.blake2b(f"{name}:{database}:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class LeaderLock:
    """``held()`` is True while this process leads; it tries to take the lead when it does not."""

    def __init__(self, store: Store, name: str = SCHEDULER_LOCK) -> None:
        self.store = store
        self.name = name
        self.key: int | None = None
        self._conn: sa.Connection | None = None
        self._file: IO[Any] | None = None
        self._lock = threading.Lock()
        self.leading = False

    def held(self) -> bool:
        with self._lock:
            was = self.leading
            self.leading = self._check() or self._take()
            if self.leading != was:
                log.info("leader.changed", leading=self.leading)
            return self.leading

    def _check(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT 1"))
                return True
            except sa.exc.DBAPIError:  # the session died, and the lock with it
                self._drop()
                return False
        return self._file is not None

    def _take(self) -> bool:
        if self.store.dialect == "postgresql":
            return self._take_advisory()
        return self._take_file()

    def _take_advisory(self) -> bool:
        conn = None
        try:
            conn = self.store.engine.connect()
            if self.key is None:
                database, schema = conn.execute(sa.text("SELECT current_database(), current_schema()")).one()
                self.key = advisory_key(self.name, str(database), str(schema))
            got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            conn.commit()
        except sa.exc.DBAPIError as exc:
            log.warning("leader.unreachable", error=type(exc).__name__)
            got = False
        if got:
            self._conn = conn
        elif conn is not None:
            conn.close()
        return got

    def _take_file(self) -> bool:
        database = self.store.engine.url.database
        if not database or database == ":memory:":
            return True  # one process owns an in-memory store
        handle = open(Path(f"{database}.leader"), "a+")  # noqa: SIM115 - held open while leading
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                    self._conn.commit()
                self._drop()
            if self._file is not None:
                self._file.close()
                self._file = None
            self.leading = False
