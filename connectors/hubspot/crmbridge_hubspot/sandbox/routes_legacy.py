"""What a third-party integration asks a portal for before it reads any record: the custom object
schemas (none in this portal, so an empty list) and the legacy v1 property routes of contacts,
companies and deals, which many older connectors still call to discover fields.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.clock import parse_instant
from crmbridge_hubspot.sandbox.errors import json_response
from crmbridge_hubspot.sandbox.portal import HubSpotPortal
from crmbridge_hubspot.sandbox.properties import PropertyCatalog, PropertyDef
from crmbridge_hubspot.sandbox.schema import object_type

V1_TYPES = ("contacts", "companies", "deals")  # the objects the v1 properties API ever covered
V1 = "/properties/v1/{object_type}"


def v1_property(prop: PropertyDef) -> dict[str, Any]:
    """A property definition in the v1 shape: timestamps in epoch ms, read-only flags at the top level."""
    return {
        "name": prop.name, "label": prop.label, "description": prop.description, "groupName": prop.group,
        "type": prop.type, "fieldType": prop.field_type,
        "options": [{"description": "", "label": label, "value": value, "displayOrder": i, "hidden": False,
                     "readOnly": prop.hubspot_defined} for i, (value, label) in enumerate(prop.options)],
        "displayOrder": prop.display_order, "formField": prop.form_field and not prop.read_only,
        "readOnlyValue": prop.read_only, "readOnlyDefinition": prop.hubspot_defined, "hidden": prop.hidden,
        "mutableDefinitionNotDeletable": prop.hubspot_defined, "favorited": False, "favoritedOrder": -1,
        "calculated": False, "externalOptions": prop.external_options, "displayMode": "current_value",
        "hubspotDefined": prop.hubspot_defined or None, "deleted": False, "hasUniqueValue": prop.unique,
        "createdAt": parse_instant(prop.created_at), "updatedAt": parse_instant(prop.updated_at),
        "createdUserId": None, "updatedUserId": None, "searchableInGlobalSearch": False,
        "optionsAreMutable": not prop.hubspot_defined and prop.type == "enumeration",
        "isCustomizedDefault": False, "currencyPropertyName": None, "textDisplayHint": None,
        "numberDisplayHint": None, "showCurrencySymbol": None,
    }


class LegacyRoutes:
    def __init__(self, portal: HubSpotPortal) -> None:
        self.portal = portal

    def register(self, router: web.UrlDispatcher) -> None:
        for base in ("/crm/v3/schemas", "/crm-object-schemas/v3/schemas"):  # the SDK calls the second
            router.add_get(base, self.schemas)
            router.add_get(base + "/", self.schemas)
            router.add_get(base + "/{objectType}", self.schema)
        router.add_get(V1 + "/properties", self.properties)
        router.add_get(V1 + "/properties/named/{propertyName}", self.property)
        router.add_get(V1 + "/groups", self.groups)

    async def schemas(self, request: web.Request) -> web.Response:
        """Custom object schemas: this portal defines none."""
        return json_response({"results": []})

    async def schema(self, request: web.Request) -> web.Response:
        key = request.match_info["objectType"]
        raise errors.not_found(f"Unable to find object schema for {key}", {"objectType": [key]})

    def _catalog(self, request: web.Request) -> PropertyCatalog:
        name = request.match_info["object_type"]
        otype = object_type(name)
        if otype is None or otype.name not in V1_TYPES:  # HubSpot has no such v1 route: a plain 404
            raise errors.not_found(f"No v1 properties for {name}", {"objectType": [name]})
        return self.portal.catalogs[otype.name]

    async def properties(self, request: web.Request) -> web.Response:
        """Every property of the type as a bare JSON array (v1 has no ``results`` envelope)."""
        catalog = self._catalog(request)
        return json_response([v1_property(p) for p in catalog.defs.values()])

    async def property(self, request: web.Request) -> web.Response:
        catalog = self._catalog(request)
        prop = catalog.defs.get(request.match_info["propertyName"])
        if prop is None:
            raise errors.not_found(f"Property {request.match_info['propertyName']} does not exist",
                                   {"propertyName": [request.match_info["propertyName"]]})
        return json_response(v1_property(prop))

    async def groups(self, request: web.Request) -> web.Response:
        catalog = self._catalog(request)
        with_properties = request.query.get("includeProperties", "").lower() == "true"
        out = []
        for group in catalog.groups.values():
            body: dict[str, Any] = {"name": group.name, "displayName": group.label,
                                    "displayOrder": group.display_order, "hubspotDefined": True}
            if with_properties:
                body["properties"] = [v1_property(p) for p in catalog.defs.values() if p.group == group.name]
            out.append(body)
        return json_response(out)
