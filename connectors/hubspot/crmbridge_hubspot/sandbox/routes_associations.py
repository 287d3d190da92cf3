"""Associations v4: batch read, list one record's links, create default and labelled links, remove."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.clock import iso_ms
from crmbridge_hubspot.sandbox.errors import batch_error, json_response
from crmbridge_hubspot.sandbox.inputs import batch_inputs, json_body, next_link, path_type, query_after, query_int
from crmbridge_hubspot.sandbox.portal import HubSpotPortal
from crmbridge_hubspot.sandbox.schema import (
    ASSOC_BATCH_MAX_INPUTS,
    ASSOC_PAGE_MAX,
    ASSOCIATION_KINDS,
    BATCH_MAX_INPUTS,
    AssociationKind,
    ObjectType,
)
from crmbridge_hubspot.sandbox.views import v4_row

BATCH = "/crm/v4/associations/{from_type}/{to_type}/batch"
OBJECT = "/crm/v4/objects/{from_type}/{objectId}/associations"


class AssociationRoutes:
    def __init__(self, portal: HubSpotPortal) -> None:
        self.portal = portal

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_post(BATCH + "/read", self.batch_read)
        router.add_post(BATCH + "/associate/default", self.batch_default)
        router.add_get(OBJECT + "/{to_type}", self.list_for)
        router.add_put(OBJECT + "/default/{to_type}/{toObjectId}", self.put_default)
        router.add_put(OBJECT + "/{to_type}/{toObjectId}", self.put_labelled)
        router.add_delete(OBJECT + "/{to_type}/{toObjectId}", self.delete)

    def _pair(self, request: web.Request) -> tuple[ObjectType, ObjectType, AssociationKind]:
        a, b = path_type(request, "from_type"), path_type(request, "to_type")
        kind = ASSOCIATION_KINDS.get((a.name, b.name))
        if kind is None:
            raise errors.validation(f"{a.name} cannot be associated with {b.name}")
        return a, b, kind

    def _live(self, otype: ObjectType, key: Any) -> int:
        key = str(key)
        record = self.portal.find(otype, key)
        if record is None:
            raise errors.not_found(f"No {otype.singular} with id {key}", {"ids": [key]})
        return record.id

    async def batch_read(self, request: web.Request) -> web.Response:
        a, b, _ = self._pair(request)
        started = iso_ms(self.portal.wall_ms())
        inputs = batch_inputs(await json_body(request), ASSOC_BATCH_MAX_INPUTS)
        results, problems = [], []
        with self.portal.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                record = self.portal.find(a, key)
                targets = self.portal.associated(a.name, record.id, b.name) if record else []
                if not targets:
                    problems.append(batch_error(
                        "OBJECT_NOT_FOUND", f"No {b.singular} is associated with {a.singular} {key}.",
                        {"fromObjectId": [key], "fromObjectType": [a.singular], "toObjectType": [b.singular]},
                        sub_category="crm.associations.NO_ASSOCIATIONS_FOUND"))
                    continue
                assert record is not None
                rows = [v4_row(self.portal.graph, a.name, record.id, b.name, t) for t in targets[:ASSOC_PAGE_MAX]]
                results.append({"from": {"id": key}, "to": rows})
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                                "completedAt": iso_ms(self.portal.wall_ms())}
        if problems:
            body["errors"] = problems
            body["numErrors"] = len(problems)
        return json_response(body, 207 if problems else 200)

    async def list_for(self, request: web.Request) -> web.Response:
        a, b, _ = self._pair(request)
        limit = query_int(request, "limit", ASSOC_PAGE_MAX, 1, ASSOC_PAGE_MAX)
        after = query_after(request)
        with self.portal.lock:
            rid = self._live(a, request.match_info["objectId"])
            targets = sorted(self.portal.associated(a.name, rid, b.name))
            page = [t for t in targets if t >= after][:limit + 1]
            rows = [v4_row(self.portal.graph, a.name, rid, b.name, t) for t in page[:limit]]
        body: dict[str, Any] = {"results": rows}
        if len(page) > limit:
            body["paging"] = {"next": {"after": str(page[limit]), "link": next_link(request, str(page[limit]))}}
        return json_response(body)

    def _default_rows(self, a: ObjectType, a_id: int, b: ObjectType, b_id: int) -> list[dict[str, Any]]:
        self.portal.associate(a.name, a_id, b.name, b_id)
        forward, backward = ASSOCIATION_KINDS[(a.name, b.name)], ASSOCIATION_KINDS[(b.name, a.name)]
        return [
            {"from": {"id": str(a_id)}, "to": {"id": str(b_id)},
             "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": forward.default_id}},
            {"from": {"id": str(b_id)}, "to": {"id": str(a_id)},
             "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": backward.default_id}},
        ]

    async def put_default(self, request: web.Request) -> web.Response:
        a, b, _ = self._pair(request)
        started = iso_ms(self.portal.wall_ms())
        with self.portal.lock:
            a_id = self._live(a, request.match_info["objectId"])
            b_id = self._live(b, request.match_info["toObjectId"])
            rows = self._default_rows(a, a_id, b, b_id)
        return json_response({"status": "COMPLETE", "results": rows, "startedAt": started,
                              "completedAt": iso_ms(self.portal.wall_ms())})

    async def batch_default(self, request: web.Request) -> web.Response:
        a, b, _ = self._pair(request)
        started = iso_ms(self.portal.wall_ms())
        inputs = batch_inputs(await json_body(request), BATCH_MAX_INPUTS)
        rows: list[dict[str, Any]] = []
        problems = []
        with self.portal.lock:
            for item in inputs:
                a_key, b_key = str((item.get("from") or {}).get("id", "")), str((item.get("to") or {}).get("id", ""))
                a_rec, b_rec = self.portal.find(a, a_key), self.portal.find(b, b_key)
                if a_rec is None or b_rec is None:
                    problems.append(batch_error("OBJECT_NOT_FOUND", "One or more records do not exist.",
                                                {"ids": [k for k, r in ((a_key, a_rec), (b_key, b_rec)) if r is None]}))
                    continue
                rows.extend(self._default_rows(a, a_rec.id, b, b_rec.id))
        body: dict[str, Any] = {"status": "COMPLETE", "results": rows, "startedAt": started,
                                "completedAt": iso_ms(self.portal.wall_ms())}
        if problems:
            body["errors"] = problems
            body["numErrors"] = len(problems)
        return json_response(body, 207 if problems else 200)

    async def put_labelled(self, request: web.Request) -> web.Response:
        a, b, kind = self._pair(request)
        specs = await json_body(request)
        if not isinstance(specs, list) or not specs:
            raise errors.validation("The body must be a non-empty array of association types")
        with self.portal.lock:
            a_id = self._live(a, request.match_info["objectId"])
            b_id = self._live(b, request.match_info["toObjectId"])
            type_ids = {int(s.get("associationTypeId", -1)) for s in specs}
            unknown = type_ids - {kind.default_id, kind.primary_id}
            if unknown:
                raise errors.validation(f"Association type {sorted(unknown)[0]} does not link {a.name} to {b.name}")
            self.portal.associate(a.name, a_id, b.name, b_id, primary=kind.primary_id in type_ids)
            labels = ["Primary"] if kind.primary_id in type_ids else []
        return json_response({"fromObjectTypeId": a.type_id, "fromObjectId": a_id, "toObjectTypeId": b.type_id,
                              "toObjectId": b_id, "labels": labels}, 201)

    async def delete(self, request: web.Request) -> web.Response:
        a, b, _ = self._pair(request)
        with self.portal.lock:
            a_id = self._live(a, request.match_info["objectId"])
            b_key = request.match_info["toObjectId"]
            if b_key.isdigit():
                self.portal.dissociate(a.name, a_id, b.name, int(b_key))
        return web.Response(status=204)
