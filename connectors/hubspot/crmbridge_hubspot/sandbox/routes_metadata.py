"""Everything around the records: owners, pipelines, properties and groups, forms, web-analytics events,
and account details."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.clock import iso_ms, parse_instant
from crmbridge_hubspot.sandbox.errors import batch_error, json_response
from crmbridge_hubspot.sandbox.events import EVENT_TYPES, EventQuery, decode_cursor, encode_cursor
from crmbridge_hubspot.sandbox.inputs import batch_inputs, json_body, next_link, path_type, query_bool, query_int
from crmbridge_hubspot.sandbox.portal import HubSpotPortal
from crmbridge_hubspot.sandbox.properties import PropertyCatalog, PropertyDef, PropertyGroup
from crmbridge_hubspot.sandbox.schema import (
    BATCH_MAX_INPUTS,
    EVENTS_MAX_LIMIT,
    FORMS_MAX_LIMIT,
    OWNERS_MAX_LIMIT,
    object_type,
)

PROPERTY_TYPES = ("string", "number", "date", "datetime", "enumeration", "bool")
FIELD_TYPES = ("textarea", "text", "date", "file", "number", "select", "radio", "checkbox", "booleancheckbox",
               "calculation_equation", "phonenumber", "html")


def _both(router: web.UrlDispatcher, method: str, path: str, handler: Any) -> None:
    """The SDK calls some collections with a trailing slash (``/crm/v3/owners/``); accept both spellings."""
    router.add_route(method, path, handler)
    router.add_route(method, path + "/", handler)


class MetadataRoutes:
    def __init__(self, portal: HubSpotPortal, account: dict[str, Any]) -> None:
        self.portal = portal
        self.account = account

    def register(self, router: web.UrlDispatcher) -> None:
        _both(router, "GET", "/crm/v3/owners", self.owners)
        router.add_get("/crm/v3/owners/{ownerId}", self.owner)
        router.add_get("/crm/v3/pipelines/{object_type}", self.pipelines)
        router.add_post("/crm/v3/pipelines/{object_type}", self.create_pipeline)
        router.add_get("/crm/v3/pipelines/{object_type}/{pipelineId}", self.pipeline)
        router.add_get("/crm/v3/pipelines/{object_type}/{pipelineId}/stages", self.stages)
        router.add_post("/crm/v3/pipelines/{object_type}/{pipelineId}/stages", self.create_stage)
        router.add_get("/crm/v3/properties/{object_type}", self.properties)
        router.add_post("/crm/v3/properties/{object_type}", self.create_property)
        router.add_post("/crm/v3/properties/{object_type}/batch/create", self.batch_create_properties)
        router.add_post("/crm/v3/properties/{object_type}/batch/read", self.batch_read_properties)
        router.add_get("/crm/v3/properties/{object_type}/groups", self.groups)
        router.add_post("/crm/v3/properties/{object_type}/groups", self.create_group)
        router.add_get("/crm/v3/properties/{object_type}/groups/{groupName}", self.group)
        router.add_get("/crm/v3/properties/{object_type}/{propertyName}", self.property)
        router.add_patch("/crm/v3/properties/{object_type}/{propertyName}", self.update_property)
        _both(router, "GET", "/marketing/v3/forms", self.forms)
        router.add_get("/marketing/v3/forms/{formId}", self.form)
        _both(router, "GET", "/events/v3/events", self.events)
        router.add_get("/events/v3/events/event-types", self.event_types)
        router.add_get("/account-info/v3/details", self.account_details)

    # -- owners --------------------------------------------------------------------------------------

    async def owners(self, request: web.Request) -> web.Response:
        limit = query_int(request, "limit", 100, 1, OWNERS_MAX_LIMIT)
        archived = query_bool(request, "archived")
        email = (request.query.get("email") or "").lower()
        after = request.query.get("after") or ""
        rows = [o for o in self.portal.owners if o.archived == archived and (not email or o.email.lower() == email)]
        rows.sort(key=lambda o: int(o.id))
        if after:
            rows = [o for o in rows if int(o.id) >= int(after)] if after.isdigit() else []
        body: dict[str, Any] = {"results": [o.body for o in rows[:limit]]}
        if len(rows) > limit:
            body["paging"] = {"next": {"after": rows[limit].id, "link": next_link(request, rows[limit].id)}}
        return json_response(body)

    async def owner(self, request: web.Request) -> web.Response:
        key = request.match_info["ownerId"]
        by_user = request.query.get("idProperty") == "userId"
        archived = query_bool(request, "archived")
        for o in self.portal.owners:
            if (str(o.body["userId"]) if by_user else o.id) == key and o.archived == archived:
                return json_response(o.body)
        raise errors.not_found(f"Owner {key} not found", {"id": [key]})

    # -- pipelines -----------------------------------------------------------------------------------

    def _deal_pipelines(self, request: web.Request) -> None:
        """Deals take new pipelines here; tickets have their support pipeline, read-only in this sandbox."""
        name = request.match_info["object_type"]
        otype = object_type(name)
        if otype is None:
            raise errors.unknown_object_type(name)
        if otype.name != "deals":
            raise errors.validation(f"{name} pipelines are read-only in this sandbox (deals take new ones)",
                                    context={"objectType": [name]})

    def _pipelines_of(self, request: web.Request) -> list[dict[str, Any]]:
        """Deals and tickets have pipelines; other types answer 400 as HubSpot does."""
        name = request.match_info["object_type"]
        otype = object_type(name)
        if otype is None:
            raise errors.unknown_object_type(name)
        if otype.name == "deals":
            return self.portal.pipelines
        if otype.name == "tickets":
            return self.portal.ticket_pipelines
        raise errors.validation(f"Object type {otype.type_id} does not support pipelines",
                                context={"objectType": [name]})

    def _pipeline(self, request: web.Request) -> dict[str, Any]:
        key = request.match_info["pipelineId"]
        pipeline = next((p for p in self._pipelines_of(request) if p["id"] == key), None)
        if pipeline is None:
            raise errors.not_found(f"Pipeline {key} not found")
        return pipeline

    async def pipelines(self, request: web.Request) -> web.Response:
        return json_response({"results": self._pipelines_of(request)})

    async def pipeline(self, request: web.Request) -> web.Response:
        return json_response(self._pipeline(request))

    async def stages(self, request: web.Request) -> web.Response:
        return json_response({"results": self._pipeline(request)["stages"]})

    async def create_pipeline(self, request: web.Request) -> web.Response:
        self._deal_pipelines(request)
        body = await json_body(request)
        if not body.get("label"):
            raise errors.validation("label is required", context={"label": ["required"]})
        pipeline = self.portal.add_pipeline(str(body["label"]), int(body.get("displayOrder", 0)),
                                            body.get("stages") or [])
        return json_response(pipeline, 201)

    async def create_stage(self, request: web.Request) -> web.Response:
        self._deal_pipelines(request)
        pipeline = self._pipeline(request)
        stage = self.portal.add_stage(pipeline, await json_body(request))
        return json_response(stage, 201)

    # -- properties ----------------------------------------------------------------------------------

    def _catalog(self, request: web.Request) -> PropertyCatalog:
        return self.portal.catalogs[path_type(request).name]

    async def properties(self, request: web.Request) -> web.Response:
        catalog = self._catalog(request)
        if query_bool(request, "archived"):
            return json_response({"results": []})
        return json_response({"results": [p.to_json() for p in catalog.defs.values()]})

    async def property(self, request: web.Request) -> web.Response:
        catalog = self._catalog(request)
        prop = catalog.defs.get(request.match_info["propertyName"])
        if prop is None:
            raise errors.not_found(f"Unable to find property {request.match_info['propertyName']}",
                                   {"propertyName": [request.match_info["propertyName"]]})
        return json_response(prop.to_json())

    def _new_property(self, catalog: PropertyCatalog, spec: Any) -> PropertyDef:
        if not isinstance(spec, dict):
            raise errors.validation("A property definition must be an object")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not spec.get(k)]
        if missing:
            raise errors.validation(f"Missing required fields: {', '.join(missing)}",
                                    context={k: ["required"] for k in missing})
        if spec["type"] not in PROPERTY_TYPES:
            raise errors.validation(f"{spec['type']} is not a valid property type")
        if spec["fieldType"] not in FIELD_TYPES:
            raise errors.validation(f"{spec['fieldType']} is not a valid field type")
        if spec["groupName"] not in catalog.groups:
            raise errors.validation(f"Property group {spec['groupName']} does not exist",
                                    context={"groupName": [spec["groupName"]]})
        stamp = iso_ms(self.portal.wall_ms())
        options = tuple((str(o["value"]), str(o.get("label", o["value"]))) for o in spec.get("options") or [])
        return PropertyDef(spec["name"], spec["label"], spec["type"], spec["fieldType"], spec["groupName"],
                           options=options, description=spec.get("description") or "", hubspot_defined=False,
                           unique=bool(spec.get("hasUniqueValue")), hidden=bool(spec.get("hidden")),
                           display_order=int(spec.get("displayOrder", -1)), created_at=stamp, updated_at=stamp,
                           form_field=bool(spec.get("formField", True)))

    @staticmethod
    def _exists(name: str) -> errors.HubSpotError:
        return errors.HubSpotError(409, {
            "status": "error", "message": f"A property named '{name}' already exists.",
            "correlationId": errors.correlation_id(), "category": "OBJECT_ALREADY_EXISTS",
            "subCategory": "Properties.PROPERTY_WITH_NAME_EXISTS", "context": {"name": [name]}})

    async def create_property(self, request: web.Request) -> web.Response:
        catalog = self._catalog(request)
        spec = await json_body(request)
        with self.portal.lock:
            prop = self._new_property(catalog, spec)
            if prop.name in catalog.defs:
                raise self._exists(prop.name)
            catalog.add(prop)
        return json_response(prop.to_json(), 201)

    async def batch_create_properties(self, request: web.Request) -> web.Response:
        catalog = self._catalog(request)
        started = iso_ms(self.portal.wall_ms())
        inputs = batch_inputs(await json_body(request), BATCH_MAX_INPUTS)
        results, problems = [], []
        with self.portal.lock:
            for spec in inputs:
                prop = self._new_property(catalog, spec)
                if prop.name in catalog.defs:
                    problems.append(batch_error("OBJECT_ALREADY_EXISTS", f"A property named '{prop.name}' already "
                                                "exists.", {"name": [prop.name]},
                                                sub_category="Properties.PROPERTY_WITH_NAME_EXISTS"))
                    continue
                results.append(catalog.add(prop).to_json())
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                                "completedAt": iso_ms(self.portal.wall_ms())}
        if problems:
            body["errors"] = problems
            body["numErrors"] = len(problems)
        return json_response(body, 207 if problems else 201)

    async def batch_read_properties(self, request: web.Request) -> web.Response:
        catalog = self._catalog(request)
        started = iso_ms(self.portal.wall_ms())
        inputs = batch_inputs(await json_body(request), BATCH_MAX_INPUTS)
        results = [catalog.defs[i["name"]].to_json() for i in inputs if i.get("name") in catalog.defs]
        return json_response({"status": "COMPLETE", "results": results, "startedAt": started,
                              "completedAt": iso_ms(self.portal.wall_ms())})

    async def update_property(self, request: web.Request) -> web.Response:
        catalog = self._catalog(request)
        name = request.match_info["propertyName"]
        spec = await json_body(request)
        with self.portal.lock:
            prop = catalog.defs.get(name)
            if prop is None:
                raise errors.not_found(f"Unable to find property {name}", {"propertyName": [name]})
            if prop.hubspot_defined and any(k in spec for k in ("type", "fieldType", "options")):
                raise errors.validation(f"{name} is a HubSpot-defined property; its definition is read-only")
            changes: dict[str, Any] = {}
            for key, field_name in (("label", "label"), ("description", "description"), ("groupName", "group"),
                                    ("type", "type"), ("fieldType", "field_type"), ("hidden", "hidden"),
                                    ("displayOrder", "display_order"), ("formField", "form_field")):
                if key in spec:
                    changes[field_name] = spec[key]
            if "options" in spec:
                changes["options"] = tuple((str(o["value"]), str(o.get("label", o["value"])))
                                           for o in spec["options"] or [])
            updated = catalog.update(name, changes, iso_ms(self.portal.wall_ms()))
        return json_response(updated.to_json())

    async def groups(self, request: web.Request) -> web.Response:
        catalog = self._catalog(request)
        return json_response({"results": [g.to_json() for g in catalog.groups.values()]})

    async def group(self, request: web.Request) -> web.Response:
        catalog = self._catalog(request)
        group = catalog.groups.get(request.match_info["groupName"])
        if group is None:
            raise errors.not_found(f"Unable to find property group {request.match_info['groupName']}")
        return json_response(group.to_json())

    async def create_group(self, request: web.Request) -> web.Response:
        catalog = self._catalog(request)
        spec = await json_body(request)
        if not spec.get("name") or not spec.get("label"):
            raise errors.validation("name and label are required")
        with self.portal.lock:
            if spec["name"] in catalog.groups:
                raise errors.HubSpotError(409, {
                    "status": "error", "message": f"A property group named '{spec['name']}' already exists.",
                    "correlationId": errors.correlation_id(), "category": "OBJECT_ALREADY_EXISTS",
                    "context": {"name": [spec["name"]]}})
            group = PropertyGroup(spec["name"], spec["label"], int(spec.get("displayOrder", len(catalog.groups))))
            catalog.groups[group.name] = group
        return json_response(group.to_json(), 201)

    # -- forms and events ------------------------------------------------------------------------------

    async def forms(self, request: web.Request) -> web.Response:
        limit = query_int(request, "limit", 20, 1, FORMS_MAX_LIMIT)
        after = request.query.get("after") or "0"
        start = int(after) if after.isdigit() else 0
        if query_bool(request, "archived"):
            return json_response({"results": []})
        forms = self.portal.forms[start:start + limit]
        body: dict[str, Any] = {"results": forms}
        if start + limit < len(self.portal.forms):
            body["paging"] = {"next": {"after": str(start + limit), "link": next_link(request, str(start + limit))}}
        return json_response(body)

    async def form(self, request: web.Request) -> web.Response:
        for form in self.portal.forms:
            if form["id"] == request.match_info["formId"]:
                return json_response(form)
        raise errors.not_found(f"Form {request.match_info['formId']} not found")

    async def events(self, request: web.Request) -> web.Response:
        q = request.query
        limit = query_int(request, "limit", EVENTS_MAX_LIMIT, 1, EVENTS_MAX_LIMIT)
        kinds = None
        if q.get("eventType"):
            names = [n for v in q.getall("eventType") for n in v.split(",") if n]
            unknown = [n for n in names if n not in EVENT_TYPES]
            if unknown:
                raise errors.validation(f"Unknown event type {unknown[0]}", context={"eventType": unknown})
            kinds = frozenset(EVENT_TYPES[n] for n in names)
        cursor = decode_cursor(q["after"]) if q.get("after") else None
        if q.get("after") and cursor is None:
            raise errors.validation(f"after: {q['after']!r} is not a valid paging cursor")
        occurred = {}
        for name in ("occurredAfter", "occurredBefore"):
            if q.get(name):
                occurred[name] = parse_instant(q[name])
                if occurred[name] is None:
                    raise errors.validation(f"{name}: {q[name]!r} is not a valid date-time")
        sort = (q.getall("sort", []) or ["occurredAt"])[0]
        object_type_name = (q.get("objectType") or "contact").lower()
        body: dict[str, Any] = {"results": []}
        otype = object_type(object_type_name)
        if otype is None:
            raise errors.unknown_object_type(object_type_name)
        if otype.name != "contacts":
            return json_response(body)
        with self.portal.lock:
            persons = None
            if q.get("objectId"):
                record = self.portal.find(otype, q["objectId"])
                persons = self._event_sources(record) if record is not None else []
            query = EventQuery(persons, kinds, occurred.get("occurredAfter"), occurred.get("occurredBefore"),
                               cursor, limit, sort.startswith("-"))
            positions, more = self.portal.events.query(query)
            body["results"] = [self.portal.events.render(p) for p in positions]
            if persons is not None and q.get("objectId"):
                for event in body["results"]:
                    event["objectId"] = str(record.id)  # events of merged-away contacts now belong to the survivor
        if more is not None:
            token = encode_cursor(*more)
            body["paging"] = {"next": {"after": token, "link": next_link(request, token)}}
        return json_response(body)

    def _event_sources(self, record: Any) -> list[int]:
        store = self.portal.store("contacts")
        column = store.catalog.column("hs_merged_object_ids")
        sources = [record.source] if record.source >= 0 else []
        for merged in (record.get(column) or "").split(";"):
            if merged.isdigit():
                other = store.get(int(merged))
                if other is not None and other.source >= 0:
                    sources.append(other.source)
        return sources

    async def event_types(self, request: web.Request) -> web.Response:
        return json_response({"eventTypes": sorted(EVENT_TYPES)})

    async def account_details(self, request: web.Request) -> web.Response:
        return json_response(self.account)
