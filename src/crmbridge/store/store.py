"""``Store``: the composition root over one database. Each concern is a repository on it sharing its
engine: records, identities, cursors, field catalogs, provisioning, runs, quarantine and scores."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crmbridge.store.crm_facts import FieldCatalogs, Provisioned
from crmbridge.store.cursors import Cursors
from crmbridge.store.cursors import now_ms as now_ms  # re-exported: many modules take the clock from here
from crmbridge.store.engine import create_engine_for, migrate
from crmbridge.store.identities import Identities
from crmbridge.store.records import Records
from crmbridge.store.runs import Quarantine, Runs
from crmbridge.store.scores import Scores


class Store:
    def __init__(self, url: str, *, auto_migrate: bool = True) -> None:
        self.url = url
        self.engine = create_engine_for(url)
        if auto_migrate:
            migrate(self.engine)
        # The repositories, one per concern, sharing this engine.
        self.identities = Identities(self.engine)
        self.cursors = Cursors(self.engine, self._insert)
        self.records = Records(self.engine, self._insert, self.cursors)
        self.catalogs = FieldCatalogs(self.engine, self._insert)
        self.provisioned = Provisioned(self.engine, self._insert)
        self.runs = Runs(self.engine)
        self.quarantine = Quarantine(self.engine, self._insert)
        self.scores = Scores(self.engine, self._insert)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def snapshot(self) -> dict[str, Any]:
        """A digest of everything stored (records, states, links, identities): equal digests, equal stores."""
        digest = hashlib.blake2b(digest_size=16)
        with self.engine.connect() as conn:
            sizes = self.records.snapshot_into(conn, digest)
            sizes["identities"] = self.identities.snapshot_into(conn, digest)
        return {"digest": digest.hexdigest(), "sizes": sizes}
