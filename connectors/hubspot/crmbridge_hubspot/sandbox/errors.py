"""HubSpot's error bodies, and the exception handlers raise to answer with one."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

from crmbridge_hubspot.sandbox.properties import PropertyProblem

AUTH_MESSAGE = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
RATE_LIMIT_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "DAILY": "You have reached your daily limit.",
    "SECONDLY": "You have reached your secondly limit.",
}


def correlation_id() -> str:
    return str(uuid.uuid4())


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json",
                        headers=dict(headers) if headers else None)


class HubSpotError(Exception):
    """Raised by a handler; the middleware turns it into HubSpot's JSON error body."""

    def __init__(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return json_response(self.body, self.status, self.headers)


def _body(message: str, category: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": correlation_id()}
    body.update({k: v for k, v in extra.items() if v is not None})
    if category:
        body["category"] = category
    return body


def validation(message: str, *, context: Mapping[str, Sequence[str]] | None = None,
               errors: list[dict[str, Any]] | None = None, sub_category: str | None = None) -> HubSpotError:
    return HubSpotError(400, _body(message, "VALIDATION_ERROR", subCategory=sub_category,
                                   context=dict(context) if context else None, errors=errors))


def invalid_properties(problems: Iterable[PropertyProblem]) -> HubSpotError:
    problems = list(problems)
    listed = [{"isValid": False, "message": p.message, "error": p.error, "name": p.name} for p in problems]
    errors = [{"message": p.message, "code": p.error, "context": {"propertyName": [p.name]}} for p in problems]
    return validation("Property values were not valid: " + orjson.dumps(listed).decode(), errors=errors)


def not_found(message: str = "resource not found", context: Mapping[str, Sequence[str]] | None = None
              ) -> HubSpotError:
    return HubSpotError(404, _body(message, "OBJECT_NOT_FOUND", context=dict(context) if context else None))


def conflict(message: str) -> HubSpotError:
    return HubSpotError(409, _body(message, "CONFLICT"))


def unknown_object_type(name: str) -> HubSpotError:
    return HubSpotError(400, _body(f"Unable to infer object type from: {name}", None))


def unauthorized() -> HubSpotError:
    return HubSpotError(401, _body(AUTH_MESSAGE, "INVALID_AUTHENTICATION"))


def invalid_token() -> HubSpotError:
    """A bearer token the account does not know (revoked, mistyped, another account's)."""
    return HubSpotError(401, _body(AUTH_MESSAGE, "INVALID_AUTHENTICATION"))


def missing_scopes(scopes: Sequence[str]) -> HubSpotError:
    """A known token without any of the scopes the call needs."""
    return HubSpotError(403, _body("One or more of the following scopes are required.", "MISSING_SCOPES",
                                   context={"requiredGranularScopes": list(scopes),
                                            "links": ["https://developers.hubspot.com/scopes"]}))


def invalid_api_key() -> HubSpotError:
    return HubSpotError(401, _body("The API key provided is invalid. View or manage your API key here: "
                                   "https://app.hubspot.com/l/api-key/", "INVALID_AUTHENTICATION"))


def rate_limited_body(policy: str) -> dict[str, Any]:
    return {"status": "error", "message": RATE_LIMIT_MESSAGES[policy], "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(), "policyName": policy}


def server_error(status: int) -> web.Response:
    messages = {500: "internal error", 502: "Bad Gateway", 503: "Service Unavailable",
                504: "Gateway Timeout"}
    return json_response(_body(messages.get(status, "internal error"), "INTERNAL_ERROR" if status == 500 else
                               "SERVICE_UNAVAILABLE"), status)


def batch_error(category: str, message: str, context: Mapping[str, Sequence[str]], *,
                sub_category: str | None = None) -> dict[str, Any]:
    """One entry of a 207 answer's ``errors``."""
    body: dict[str, Any] = {"status": "error", "category": category, "message": message,
                            "context": {k: list(v) for k, v in context.items()}}
    if sub_category:
        body["subCategory"] = sub_category
    return body
