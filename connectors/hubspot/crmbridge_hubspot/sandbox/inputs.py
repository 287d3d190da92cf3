"""Reading HubSpot-style requests: object types in paths, repeated or comma-separated query lists,
booleans written any way, JSON bodies, batch inputs with their limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web
from yarl import URL

from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.schema import ObjectType, object_type


def path_type(request: web.Request, key: str = "object_type") -> ObjectType:
    name = request.match_info[key]
    otype = object_type(name)
    if otype is None:
        raise errors.unknown_object_type(name)
    return otype


def query_list(request: web.Request, name: str) -> list[str]:
    """``?properties=a,b&properties=c`` -> [a, b, c]: the SDK repeats, curl users use commas."""
    out: list[str] = []
    for value in request.query.getall(name, []):
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "yes")


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise errors.validation(f"{name}: {value!r} is not a valid integer",
                                context={name: [value]}) from None
    if not low <= number <= high:
        raise errors.validation(f"{name}: must be between {low} and {high}; got {number}",
                                context={name: [value]})
    return number


def query_after(request: web.Request) -> int:
    value = request.query.get("after")
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        raise errors.validation(f"after: {value!r} is not a valid paging cursor", context={"after": [value]}) from None


async def json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.validation(f"Invalid input JSON: {exc}") from None


def batch_inputs(body: Any, limit: int) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise errors.validation("Invalid input JSON: the body needs an \"inputs\" array")
    inputs = body["inputs"]
    if len(inputs) > limit:
        raise errors.validation(f"Batch input has {len(inputs)} inputs; the maximum is {limit}.",
                                context={"inputs": [str(len(inputs))]})
    return inputs


def duplicates(values: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for value in values:
        if value in seen and value not in dup:
            dup.append(value)
        seen.add(value)
    return dup


def next_link(request: web.Request, after: str) -> str:
    """The same request with ``after`` replaced, on this sandbox's own address (never the vendor's)."""
    url: URL = request.url
    return str(url.update_query({"after": after}))
