"""Which OAuth / private-app scopes each HubSpot route needs, so a token without them gets HubSpot's 403.

HubSpot answers a call the token is not scoped for with ``403`` and category ``MISSING_SCOPES``,
naming the scopes of which any one would do. Tokens the sandbox accepts without declared scopes hold
them all; ``SandboxOptions.extra["hubspot_token_scopes"]`` gives a token a narrower list.
"""

from __future__ import annotations

from collections.abc import Mapping

from crmbridge_hubspot.sandbox.schema import ENGAGEMENT_TYPES, object_type

SCOPES_LINK = "https://developers.hubspot.com/scopes"
_READS = frozenset({"GET", "HEAD"})


def _object_scope(type_name: str, write: bool) -> tuple[str, ...]:
    """The scope that reads or writes records of a type; engagements ride on the contacts scopes."""
    if type_name == "tickets":
        return ("tickets",)
    base = "contacts" if type_name in ENGAGEMENT_TYPES else type_name
    return (f"crm.objects.{base}.{'write' if write else 'read'}",)


def _schema_scope(type_name: str, write: bool) -> tuple[str, ...]:
    """Property definitions: the type's schema scope, or (to read) the scope that reads its records."""
    base = "contacts" if type_name in ENGAGEMENT_TYPES else type_name
    if write:
        return (f"crm.schemas.{base}.write",)
    return (f"crm.schemas.{base}.read", *_object_scope(type_name, False))


def _type_of(match_info: Mapping[str, str], key: str) -> str | None:
    name = match_info.get(key)
    otype = object_type(name) if name else None
    return otype.name if otype is not None else None


def required_scopes(method: str, path: str, match_info: Mapping[str, str]) -> list[tuple[str, ...]]:
    """What the token needs for this call: for each tuple, one of its scopes (empty: nothing needed).
    Associations need the scopes of the objects at both ends."""
    write = method not in _READS and not path.endswith(("/search", "/batch/read"))
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["crm", "v4"]:
        ends = [_type_of(match_info, "from_type"), _type_of(match_info, "to_type")]
        return [_object_scope(name, write) for name in ends if name]
    return [needed] if (needed := _route_scopes(parts, write, match_info)) else []


def _route_scopes(parts: list[str], write: bool, match_info: Mapping[str, str]) -> tuple[str, ...]:
    if parts[:3] == ["crm", "v3", "objects"]:
        name = _type_of(match_info, "object_type")
        return _object_scope(name, write) if name else ()
    if parts[:3] == ["crm", "v3", "properties"] or (parts[:1] == ["properties"] and len(parts) > 2):
        name = _type_of(match_info, "object_type")
        return _schema_scope(name, write) if name else ()
    if parts[:3] == ["crm", "v3", "pipelines"]:
        name = _type_of(match_info, "object_type")
        return _object_scope(name, write) if name else ()
    if parts[:3] == ["crm", "v3", "owners"]:
        return ("crm.objects.owners.read",)
    if parts[:3] in (["crm", "v3", "schemas"], ["crm-object-schemas", "v3", "schemas"]):
        return ("crm.schemas.custom.write",) if write else ("crm.schemas.custom.read",)
    if parts[:3] == ["marketing", "v3", "forms"]:
        return ("forms",)
    return ()
