"""Records in HubSpot's JSON shapes: SimplePublicObject, inline v3 associations, v4 association rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crmbridge_hubspot.sandbox.clock import iso_ms
from crmbridge_hubspot.sandbox.properties import PropertyCatalog
from crmbridge_hubspot.sandbox.schema import APP_HOST, ASSOCIATION_KINDS, ObjectType
from crmbridge_hubspot.sandbox.store import AssociationGraph, Record, SearchView


def select_columns(otype: ObjectType, catalog: PropertyCatalog, requested: Sequence[str] | None
                   ) -> list[tuple[str, int]]:
    """(name, column) of the properties a read returns: those asked for (or the defaults) plus the
    three HubSpot always adds; names that do not exist are left out, as HubSpot does."""
    names = list(requested) if requested else list(otype.defaults)
    names.extend(otype.always)
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    for name in sorted(names):
        if name in seen:
            continue
        seen.add(name)
        column = catalog.column(name)
        if column >= 0:
            out.append((name, column))
    return out


def object_json(otype: ObjectType, record: Record, columns: list[tuple[str, int]], *,
                created_col: int, modified_col: int, view: SearchView | Record | None = None,
                url_portal: int | None = None, with_history: Sequence[tuple[str, int]] = ()) -> dict[str, Any]:
    values = (view or record).values
    width = len(values)
    body: dict[str, Any] = {
        "id": str(record.id),
        "properties": {name: values[col] if col < width else None for name, col in columns},
        "createdAt": values[created_col] if created_col < width and values[created_col] else iso_ms(record.created_ms),
        "updatedAt": values[modified_col] if modified_col < width and values[modified_col]
        else iso_ms(record.updated_ms),
        "archived": record.archived_ms is not None,
    }
    if record.archived_ms is not None:
        body["archivedAt"] = iso_ms(record.archived_ms)
    if with_history:
        stamp = body["updatedAt"]
        body["propertiesWithHistory"] = {
            name: ([{"value": values[col], "timestamp": stamp, "sourceType": "CRM_UI"}]
                   if col < width and values[col] is not None else [])
            for name, col in with_history
        }
    if url_portal is not None:
        body["url"] = f"{APP_HOST}/contacts/{url_portal}/record/{otype.type_id}/{record.id}"
    return body


class ObjectRenderer:
    """Renders the records of one request: the columns and association kinds are resolved once."""

    def __init__(self, portal: Any, otype: ObjectType, properties: Sequence[str] | None, *,
                 associations: Sequence[str] = (), url: bool = False, history: Sequence[str] = ()) -> None:
        store = portal.store(otype.name)
        self.otype = otype
        self.columns = select_columns(otype, store.catalog, properties)
        self.history = [(n, store.catalog.column(n)) for n in history if store.catalog.column(n) >= 0]
        self.created_col, self.modified_col = store.created_col, store.modified_col
        self.url_portal = portal.portal_id if url else None
        self.graph: AssociationGraph = portal.graph
        self.links = [(t, ASSOCIATION_KINDS[(otype.name, t)], portal.stores[t].records)
                      for t in associations if (otype.name, t) in ASSOCIATION_KINDS]

    def render(self, record: Record, view: SearchView | Record | None = None) -> dict[str, Any]:
        body = object_json(self.otype, record, self.columns, created_col=self.created_col,
                           modified_col=self.modified_col, view=view, url_portal=self.url_portal,
                           with_history=self.history)
        if self.links:
            links = self._links(record)
            if links:
                body["associations"] = links
        return body

    def _links(self, record: Record) -> dict[str, Any]:
        out: dict[str, Any] = {}
        graph, name, rid = self.graph, self.otype.name, record.id
        for to_type, kind, records in self.links:
            targets = graph.targets(name, rid, to_type)
            if not targets:
                continue
            primary = graph.primary[(name, to_type)].get(rid) if kind.primary_id is not None else None
            if kind.primary_id is not None and primary is None:
                primary = next((t for t in targets if graph.primary[(to_type, name)].get(t) == rid), None)
            results = []
            for target in targets:
                other = records.get(target)
                if other is None or other.archived_ms is not None or other.merged_into is not None:
                    continue
                if target == primary:
                    results.append({"id": str(target), "type": kind.v3_name})
                results.append({"id": str(target), "type": kind.v3_unlabeled})
            if results:
                out[to_type] = {"results": results}
        return out


def v4_types(from_type: str, to_type: str, primary: bool) -> list[dict[str, Any]]:
    kind = ASSOCIATION_KINDS[(from_type, to_type)]
    types = []
    if primary and kind.primary_id is not None:
        types.append({"category": "HUBSPOT_DEFINED", "typeId": kind.primary_id, "label": "Primary"})
    types.append({"category": "HUBSPOT_DEFINED", "typeId": kind.default_id, "label": None})
    return types


def v4_row(graph: AssociationGraph, from_type: str, from_id: int, to_type: str, to_id: int) -> dict[str, Any]:
    return {"toObjectId": to_id,
            "associationTypes": v4_types(from_type, to_type, graph.is_primary(from_type, from_id, to_type, to_id))}
