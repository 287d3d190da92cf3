"""What the store knows about each CRM account beside its records: the custom-field catalogs (a cache,
refreshed daily) and what ``crmbridge setup`` provisioned there. Neither is a cursor: losing the
catalog costs one read, losing the setup means running setup again."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.store import schema
from crmbridge.store.cursors import now_ms


@dataclass(frozen=True, slots=True)
class FieldCatalog:
    """A stream's custom fields, label -> vendor key, as the CRM listed them at ``fetched_ms``.

    ``detail`` is what a connector needs beyond the labels to read the fields' values (their types, the
    labels of their options), opaque to the core: kept with the catalog, so a new process reads none of
    it from the CRM again while the catalog is fresh.
    """

    fields: Mapping[str, str]
    fetched_ms: int
    detail: Mapping[str, Any] = field(default_factory=dict)

    def fresh(self, now: int, ttl_ms: int) -> bool:
        return now - self.fetched_ms <= ttl_ms


# A catalog with a connector's detail is stored as {"labels": ..., "detail": ...}; one without it (and
# every catalog stored before details were kept) as the plain label -> key map, whose values are all text.
_LABELS, _DETAIL = "labels", "detail"


def _decode(stored: Any, fetched_ms: int) -> FieldCatalog:
    if isinstance(stored.get(_LABELS), dict) and isinstance(stored.get(_DETAIL), dict):
        return FieldCatalog(stored[_LABELS], fetched_ms, stored[_DETAIL])
    return FieldCatalog(stored, fetched_ms)


def _encode(catalog: FieldCatalog) -> str:
    labels = dict(catalog.fields)
    return orjson.dumps({_LABELS: labels, _DETAIL: dict(catalog.detail)} if catalog.detail else labels).decode()


class FieldCatalogs:
    def __init__(self, engine: sa.Engine, insert: Callable[[sa.Table], Any]) -> None:
        self.engine = engine
        self._insert = insert

    def get(self, source: str, stream: str) -> FieldCatalog | None:
        c = schema.field_catalogs.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c.fields, c.fetched_ms).where(c.source == source, c.stream == stream)).first()
        return None if row is None else _decode(orjson.loads(row.fields), int(row.fetched_ms))

    def put(self, source: str, stream: str, catalog: FieldCatalog) -> None:
        stmt = self._insert(schema.field_catalogs)
        stmt = stmt.on_conflict_do_update(index_elements=["source", "stream"],
                                          set_={"fields": stmt.excluded.fields, "fetched_ms": stmt.excluded.fetched_ms})
        fields = _encode(catalog)
        with self.engine.begin() as conn:
            conn.execute(stmt, {"source": source, "stream": stream, "fields": fields, "fetched_ms": catalog.fetched_ms})


class Provisioned:
    """Per CRM and purpose (``writeback``), the ids setup created or found (pipeline, stage, fields)."""

    def __init__(self, engine: sa.Engine, insert: Callable[[sa.Table], Any]) -> None:
        self.engine = engine
        self._insert = insert

    def get(self, source: str, purpose: str = "writeback") -> dict[str, Any] | None:
        p = schema.provisioned.c
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(p.value).where(p.source == source, p.purpose == purpose)).scalar()
        return None if value is None else orjson.loads(value)

    def put(self, source: str, value: Mapping[str, Any], purpose: str = "writeback") -> None:
        stmt = self._insert(schema.provisioned)
        stmt = stmt.on_conflict_do_update(index_elements=["source", "purpose"],
                                          set_={"value": stmt.excluded.value, "updated_ms": stmt.excluded.updated_ms})
        with self.engine.begin() as conn:
            conn.execute(stmt, {"source": source, "purpose": purpose, "value": orjson.dumps(dict(value)).decode(),
                                "updated_ms": now_ms()})
