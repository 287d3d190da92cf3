"""Engines for the two supported databases, and schema migration on open."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from crmbridge.errors import ConfigError

_MIGRATIONS = Path(__file__).parent / "migrations"

IN_LIMIT = 500  # ids per IN (...) clause: SQLite's variable limit is far above it, and plans stay simple


def chunked(items: Sequence[Any], size: int = IN_LIMIT) -> Iterator[Sequence[Any]]:
    """``items`` a slice of at most ``size`` at a time: what every repository's IN (...) reads take."""
    for start in range(0, len(items), size):
        yield items[start:start + size]

# Any constant works; it only has to be the same in every crmbridge process sharing a database.
_MIGRATION_LOCK = 0x63726D62


def normalise_url(url: str) -> str:
    """Accept the URLs users write (``postgresql://``, ``sqlite:///file.db``) and pick our drivers."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("postgresql+", "sqlite:")):
        return url
    raise ConfigError(
        "unsupported database URL: use sqlite:///path/to/file.db or postgresql://user@host/db",
        key="CRMBRIDGE_DATABASE_URL",
    )


def existing_database(url: str) -> str:
    """A read-only command never creates a database: a SQLite file that is not there is an error. A plain
    path is taken as a SQLite file."""
    url = url if "://" in url else f"sqlite:///{url}"
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).expanduser()
        if not path.is_file():
            raise ConfigError(f"the database {path} does not exist (run a backfill or the demo first, or point "
                              "--database / CRMBRIDGE_DATABASE_URL at an existing one)", key="CRMBRIDGE_DATABASE_URL")
    return url


def _sqlite_pragmas(dbapi_conn: object, _: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    # WAL keeps readers (status, dashboard) unblocked while a sync writes; NORMAL is durable
    # against a process crash, which is the failure the resumability promise is about.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def create_engine_for(url: str) -> sa.Engine:
    url = normalise_url(url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _alembic_config(connection: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision; concurrent processes take turns on PostgreSQL."""
    head = ScriptDirectory(str(_MIGRATIONS)).get_current_head()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
        command.upgrade(_alembic_config(conn), "head")
