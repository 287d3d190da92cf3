"""Webhooks v3: the app's settings (target URL, throttling) and its subscriptions, in HubSpot's shapes.

These routes belong to the developer account, not the portal: the gateway authenticates them by the
developer API key in the ``hapikey`` query parameter instead of a private-app token.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.clock import iso_ms
from crmbridge_hubspot.sandbox.errors import json_response
from crmbridge_hubspot.sandbox.inputs import batch_inputs, json_body
from crmbridge_hubspot.sandbox.webhooks import MAX_SUBSCRIPTIONS, WebhookApp

PREFIX = "/webhooks/v3/"
APP = "/webhooks/v3/{appId}"


class WebhookRoutes:
    def __init__(self, app: WebhookApp) -> None:
        self.app = app

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get(APP + "/settings", self.get_settings)
        router.add_put(APP + "/settings", self.put_settings)
        router.add_delete(APP + "/settings", self.delete_settings)
        router.add_get(APP + "/subscriptions", self.list_subscriptions)
        router.add_post(APP + "/subscriptions", self.create_subscription)
        router.add_post(APP + "/subscriptions/batch/update", self.batch_update)
        router.add_get(APP + "/subscriptions/{subscriptionId}", self.get_subscription)
        router.add_patch(APP + "/subscriptions/{subscriptionId}", self.patch_subscription)
        router.add_delete(APP + "/subscriptions/{subscriptionId}", self.delete_subscription)

    def _check_app(self, request: web.Request) -> None:
        key = request.match_info["appId"]
        if key != str(self.app.app_id):
            raise errors.not_found(f"App {key} does not belong to this developer account", {"appId": [key]})

    # -- settings --------------------------------------------------------------------------------------

    async def get_settings(self, request: web.Request) -> web.Response:
        self._check_app(request)
        settings = self.app.settings
        if settings is None:
            raise errors.not_found(f"No webhook settings for app {self.app.app_id}")
        return json_response(settings.to_json())

    async def put_settings(self, request: web.Request) -> web.Response:
        self._check_app(request)
        return json_response(self.app.put_settings(await json_body(request)).to_json())

    async def delete_settings(self, request: web.Request) -> web.Response:
        self._check_app(request)
        self.app.delete_settings()
        return web.Response(status=204)

    # -- subscriptions ---------------------------------------------------------------------------------

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        self._check_app(request)
        subs = sorted(self.app.subscriptions.values(), key=lambda s: s.id)
        return json_response({"results": [s.to_json() for s in subs]})

    async def create_subscription(self, request: web.Request) -> web.Response:
        self._check_app(request)
        return json_response(self.app.subscribe(await json_body(request)).to_json(), 201)

    async def get_subscription(self, request: web.Request) -> web.Response:
        self._check_app(request)
        return json_response(self.app.subscription(request.match_info["subscriptionId"]).to_json())

    async def patch_subscription(self, request: web.Request) -> web.Response:
        self._check_app(request)
        sub = self.app.subscription(request.match_info["subscriptionId"])
        body = await json_body(request)
        if not isinstance(body, dict) or "active" not in body:
            raise errors.validation("The body must be an object with active", context={"active": ["required"]})
        return json_response(self.app.set_active(sub, body["active"]).to_json())

    async def delete_subscription(self, request: web.Request) -> web.Response:
        self._check_app(request)
        self.app.unsubscribe(self.app.subscription(request.match_info["subscriptionId"]))
        return web.Response(status=204)

    async def batch_update(self, request: web.Request) -> web.Response:
        self._check_app(request)
        started = iso_ms(self.app.clock())
        inputs = batch_inputs(await json_body(request), MAX_SUBSCRIPTIONS)
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for item in inputs:
            if not isinstance(item, dict) or not isinstance(item.get("active"), bool):
                raise errors.validation("Every input needs an id and active", context={"inputs": [str(item)]})
            key = str(item.get("id", ""))
            if not (key.isdigit() and int(key) in self.app.subscriptions):
                missing.append(key)
                continue
            results.append(self.app.set_active(self.app.subscriptions[int(key)], item["active"]).to_json())
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "requestedAt": started,
                                "startedAt": started, "completedAt": iso_ms(self.app.clock())}
        if not missing:
            return json_response(body)
        body["numErrors"] = 1
        body["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Some subscriptions were "
                           "not found", "context": {"ids": missing}, "links": {}, "errors": []}]
        return json_response(body, 207)
