"""CRM objects v3: list, read, create, update, archive, batch, merge and search, for every object type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.clock import iso_ms
from crmbridge_hubspot.sandbox.errors import batch_error, json_response
from crmbridge_hubspot.sandbox.inputs import (
    batch_inputs,
    duplicates,
    json_body,
    next_link,
    path_type,
    query_after,
    query_bool,
    query_int,
    query_list,
)
from crmbridge_hubspot.sandbox.portal import HubSpotPortal
from crmbridge_hubspot.sandbox.schema import (
    ASSOCIATION_KINDS,
    BATCH_HISTORY_MAX_INPUTS,
    BATCH_MAX_INPUTS,
    LIST_DEFAULT_LIMIT,
    LIST_MAX_LIMIT,
    ObjectType,
    object_type,
)
from crmbridge_hubspot.sandbox.search import SearchEngine, parse
from crmbridge_hubspot.sandbox.store import Record
from crmbridge_hubspot.sandbox.views import ObjectRenderer

OBJECTS = "/crm/v3/objects/{object_type}"


class ObjectRoutes:
    def __init__(self, portal: HubSpotPortal) -> None:
        self.portal = portal
        self._engines: dict[tuple[int, str], SearchEngine] = {}

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get(OBJECTS, self.list_page)
        router.add_post(OBJECTS, self.create)
        router.add_post(OBJECTS + "/search", self.search)
        router.add_post(OBJECTS + "/merge", self.merge)
        router.add_post(OBJECTS + "/batch/read", self.batch_read)
        router.add_post(OBJECTS + "/batch/create", self.batch_create)
        router.add_post(OBJECTS + "/batch/update", self.batch_update)
        router.add_post(OBJECTS + "/batch/upsert", self.batch_upsert)
        router.add_post(OBJECTS + "/batch/archive", self.batch_archive)
        router.add_get(OBJECTS + "/{objectId}", self.read)
        router.add_patch(OBJECTS + "/{objectId}", self.update)
        router.add_delete(OBJECTS + "/{objectId}", self.archive)

    # -- helpers -------------------------------------------------------------------------------------

    def _renderer(self, otype: ObjectType, properties: list[str] | None, *, associations: Sequence[str] = (),
                  url: bool = False, history: Sequence[str] = ()) -> ObjectRenderer:
        return ObjectRenderer(self.portal, otype, properties, associations=associations, url=url, history=history)

    def _json(self, otype: ObjectType, record: Record, properties: list[str] | None, *, url: bool = False
              ) -> dict[str, Any]:
        return self._renderer(otype, properties, url=url).render(record)

    @staticmethod
    def _association_types(request: web.Request) -> list[str]:
        out = []
        for name in query_list(request, "associations"):
            otype = object_type(name)
            if otype is None:
                raise errors.unknown_object_type(name)
            out.append(otype.name)
        return out

    def _association_inputs(self, otype: ObjectType, raw: Any) -> list[tuple[str, int, bool]]:
        """v3 create inputs ``[{"to": {"id"}, "types": [{"associationCategory", "associationTypeId"}]}]``."""
        out = []
        for item in raw or []:
            to_id = str((item.get("to") or {}).get("id", ""))
            if not to_id.isdigit():
                raise errors.validation(f"Invalid association target id {to_id!r}")
            to_type, primary = None, False
            for spec in item.get("types") or []:
                type_id = int(spec.get("associationTypeId", -1))
                for (a, b), kind in ASSOCIATION_KINDS.items():
                    if a == otype.name and type_id in (kind.default_id, kind.primary_id):
                        to_type, primary = b, primary or type_id == kind.primary_id
            if to_type is None:
                raise errors.validation(f"No association type in {item.get('types')!r} links a {otype.singular} "
                                        "to another object type.")
            out.append((to_type, int(to_id), primary))
        return out

    def _find(self, otype: ObjectType, key: str, id_property: str | None, archived: bool = False) -> Record | None:
        if archived:
            store = self.portal.store(otype.name)
            record = store.get(int(key)) if key.isdigit() else None
            return record if record is not None and record.archived_ms is not None else None
        return self.portal.find(otype, key, id_property)

    # -- single objects ------------------------------------------------------------------------------

    async def list_page(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        limit = query_int(request, "limit", LIST_DEFAULT_LIMIT, 1, LIST_MAX_LIMIT)
        after = query_after(request)
        properties = query_list(request, "properties")
        history = query_list(request, "propertiesWithHistory")
        associations = self._association_types(request)
        archived = query_bool(request, "archived")
        with self.portal.lock:
            records, next_id = self.portal.store(otype.name).page(after, limit, archived)
            render = self._renderer(otype, properties, associations=associations, history=history).render
            results = [render(r) for r in records]
        body: dict[str, Any] = {"results": results}
        if next_id is not None:
            body["paging"] = {"next": {"after": str(next_id), "link": next_link(request, str(next_id))}}
        return json_response(body)

    async def read(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        key = request.match_info["objectId"]
        archived = query_bool(request, "archived")
        with self.portal.lock:
            record = self._find(otype, key, request.query.get("idProperty"), archived)
            if record is None:
                raise errors.not_found("Object not found.  objectId are usually numeric.", {"id": [key]})
            body = self._renderer(otype, query_list(request, "properties"),
                                  associations=self._association_types(request),
                                  history=query_list(request, "propertiesWithHistory")).render(record)
        return json_response(body)

    async def create(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        body = await json_body(request)
        properties = body.get("properties") or {}
        with self.portal.lock:
            links = self._association_inputs(otype, body.get("associations"))
            record = self.portal.create(otype, properties, links)
            out = self._json(otype, record, list(properties))
        return json_response(out, 201)

    async def update(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        key = request.match_info["objectId"]
        body = await json_body(request)
        properties = body.get("properties") or {}
        with self.portal.lock:
            record = self._find(otype, key, request.query.get("idProperty"))
            if record is None:
                raise errors.not_found("Object not found.  objectId are usually numeric.", {"id": [key]})
            self.portal.update(otype, record, properties)
            out = self._json(otype, record, list(properties))
        return json_response(out)

    async def archive(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        key = request.match_info["objectId"]
        with self.portal.lock:
            record = self._find(otype, key, None)
            if record is not None:
                self.portal.archive(otype, record)
        return web.Response(status=204)

    # -- batch ---------------------------------------------------------------------------------------

    def _batch(self, results: list[dict[str, Any]], problems: list[dict[str, Any]], started: str,
               ok_status: int = 200) -> web.Response:
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                                "completedAt": iso_ms(self.portal.wall_ms())}
        if problems:
            body["errors"] = problems
            body["numErrors"] = len(problems)
            return json_response(body, 207)
        return json_response(body, ok_status)

    async def batch_read(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        started = iso_ms(self.portal.wall_ms())
        body = await json_body(request)
        history = body.get("propertiesWithHistory") or []
        inputs = batch_inputs(body, BATCH_HISTORY_MAX_INPUTS if history else BATCH_MAX_INPUTS)
        id_property = body.get("idProperty")
        archived = query_bool(request, "archived")
        properties = body.get("properties") or []
        results, missing = [], []
        with self.portal.lock:
            render = self._renderer(otype, properties, url=True, history=history).render
            seen: set[int] = set()
            for item in inputs:
                key = str(item.get("id", ""))
                record = self._find(otype, key, id_property, archived)
                if record is None:
                    missing.append(key)
                elif record.id not in seen:
                    seen.add(record.id)
                    results.append(render(record))
        problems = [batch_error("OBJECT_NOT_FOUND", f"Could not get some {otype.label} objects, they may be deleted "
                                "or not exist. Check that ids are valid.", {"ids": missing})] if missing else []
        return self._batch(results, problems, started)

    async def batch_create(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        started = iso_ms(self.portal.wall_ms())
        inputs = batch_inputs(await json_body(request), BATCH_MAX_INPUTS)
        results, problems = [], []
        with self.portal.lock:
            store = self.portal.store(otype.name)
            found = [p for item in inputs for p in store.catalog.clean(item.get("properties") or {})[1]]
            if found:
                raise errors.invalid_properties(found)
            for trace, item in enumerate(inputs):
                properties = item.get("properties") or {}
                try:
                    record = self.portal.create(otype, properties,
                                                self._association_inputs(otype, item.get("associations")))
                except errors.HubSpotError as exc:
                    if exc.status != 409:
                        raise
                    existing = exc.body["message"].rpartition(": ")[2]
                    problems.append(batch_error("CONFLICT", exc.body["message"],
                                                {"objectWriteTraceId": [str(item.get("objectWriteTraceId", trace))],
                                                 "existingId": [existing]}))
                    continue
                results.append(self._json(otype, record, list(properties), url=True))
        return self._batch(results, problems, started, 201)

    async def batch_update(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        started = iso_ms(self.portal.wall_ms())
        body = await json_body(request)
        inputs = batch_inputs(body, BATCH_MAX_INPUTS)
        id_property = body.get("idProperty") or (inputs[0].get("idProperty") if inputs else None)
        keys = [str(item.get("id", "")) for item in inputs]
        dup = duplicates(keys)
        if dup:
            raise errors.validation(f"Duplicate IDs found in batch input: [{', '.join(dup)}]. IDs must be unique",
                                    context={"ids": dup})
        with self.portal.lock:
            items, missing = [], []
            for key, item in zip(keys, inputs, strict=True):
                record = self._find(otype, key, item.get("idProperty") or id_property)
                if record is None:
                    missing.append(key)
                else:
                    items.append((record, item.get("properties") or {}))
            updated = self.portal.update_many(otype, items) if items else []
            results = [self._json(otype, r, list(p), url=True) for r, (_, p) in zip(updated, items, strict=True)]
        problems = [batch_error("OBJECT_NOT_FOUND", f"Could not get some {otype.label} objects, they may be deleted "
                                "or not exist. Check that ids are valid.", {"ids": missing})] if missing else []
        return self._batch(results, problems, started)

    async def batch_upsert(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        started = iso_ms(self.portal.wall_ms())
        inputs = batch_inputs(await json_body(request), BATCH_MAX_INPUTS)
        results = []
        with self.portal.lock:
            catalog = self.portal.store(otype.name).catalog
            found = [p for item in inputs for p in catalog.clean(item.get("properties") or {})[1]]
            if found:
                raise errors.invalid_properties(found)
            for item in inputs:
                key = str(item.get("id", ""))
                id_property = item.get("idProperty") or "hs_object_id"
                prop = catalog.defs.get(id_property)
                if id_property != "hs_object_id" and (prop is None or not prop.unique):
                    raise errors.validation(f"{id_property} is not a unique property of {otype.name}, so it cannot "
                                            "be used as idProperty", context={"idProperty": [id_property]})
                properties = dict(item.get("properties") or {})
                record = self.portal.find(otype, key, id_property)
                if record is None:
                    if id_property == "hs_object_id":
                        raise errors.not_found(f"No {otype.singular} with id {key}", {"ids": [key]})
                    properties.setdefault(id_property, key)
                    record, new = self.portal.create(otype, properties), True
                else:
                    self.portal.update(otype, record, properties)
                    new = False
                body = self._json(otype, record, list(properties), url=True)
                body["new"] = new
                results.append(body)
        return self._batch(results, [], started)

    async def batch_archive(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        inputs = batch_inputs(await json_body(request), BATCH_MAX_INPUTS)
        with self.portal.lock:
            for item in inputs:
                record = self.portal.find(otype, str(item.get("id", "")))
                if record is not None:
                    self.portal.archive(otype, record)
        return web.Response(status=204)

    # -- merge and search ------------------------------------------------------------------------------

    async def merge(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        if not otype.mergeable:
            raise errors.validation(f"{otype.name} cannot be merged")
        body = await json_body(request)
        primary_key, merged_key = str(body.get("primaryObjectId", "")), str(body.get("objectIdToMerge", ""))
        with self.portal.lock:
            primary = self.portal.find(otype, primary_key)
            merged = self.portal.store(otype.name).live(int(merged_key)) if merged_key.isdigit() else None
            if primary is None or merged is None:
                missing = primary_key if primary is None else merged_key
                raise errors.not_found(f"Could not find {otype.singular} {missing} to merge", {"ids": [missing]})
            record = self.portal.merge(otype, primary, merged)
            out = self._json(otype, record, None)
        return json_response(out)

    def engine(self, otype: ObjectType) -> SearchEngine:
        store = self.portal.store(otype.name)
        key = (id(store), otype.name)
        engine = self._engines.get(key)
        if engine is None:
            self._engines = {k: v for k, v in self._engines.items() if k[1] != otype.name}
            engine = self._engines[key] = SearchEngine(store)
        return engine

    async def search(self, request: web.Request) -> web.Response:
        otype = path_type(request)
        raw = await request.read()
        with self.portal.lock:
            query = parse(raw, self.portal.store(otype.name))
            total, page = self.engine(otype).run(query)
            render = self._renderer(otype, query.properties, url=True).render
            results = [render(record, view) for record, view in page]
        body: dict[str, Any] = {"total": total, "results": results}
        if query.after + len(page) < total:
            body["paging"] = {"next": {"after": str(query.after + query.limit)}}
        return json_response(body)
