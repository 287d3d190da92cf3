"""Pipedrive answers as ``RawRecord``s: flat properties a mapping can name, and links as associations.

Nested objects become ``parent_child`` properties (``postal_address_country``), the primary e-mail and
phone become ``email`` and ``phone``, custom fields are flattened by the stream's ``FieldCatalog``, and
the ids a record points at (organization, person, deal, participants) become its associations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmbridge.connectors import RawRecord
from crmbridge_pipedrive.fields import FieldCatalog

_LISTED_CONTACTS = ("emails", "phones", "email", "phone")  # v2 persons: emails/phones; v1: email/phone


def _primary(entries: Any) -> str | None:
    """The primary value of Pipedrive's ``[{value, primary, label}]`` lists (else the first one)."""
    if not isinstance(entries, list) or not entries:
        return None
    chosen = next((e for e in entries if isinstance(e, dict) and e.get("primary")), entries[0])
    value = chosen.get("value") if isinstance(chosen, dict) else chosen
    return str(value) if value not in (None, "") else None


def _flat(item: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level values and one level of nested objects; absent values (null, []) are left out."""
    out: dict[str, Any] = {}
    for key, value in item.items():
        if value is None or value == [] or key == "custom_fields" or key in _LISTED_CONTACTS:
            continue
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                if sub_value is not None and not isinstance(sub_value, dict | list):
                    out[f"{key}_{sub}"] = sub_value
        else:
            out[key] = value
    return out


def _ids(*values: Any) -> list[str]:
    out: list[str] = []
    for value in values:
        if value not in (None, "", 0) and str(value) not in out:
            out.append(str(value))
    return out


def _custom(item: Mapping[str, Any], catalog: FieldCatalog | None) -> dict[str, Any]:
    custom = item.get("custom_fields")
    if not custom:
        return {}
    return (catalog or FieldCatalog()).flatten(custom)


def person(item: Mapping[str, Any], catalog: FieldCatalog | None = None) -> RawRecord:
    props = _flat(item)
    emails, phones = item.get("emails", item.get("email")), item.get("phones", item.get("phone"))
    props["email"] = _primary(emails)
    props["phone"] = _primary(phones)
    props["emails"] = [str(e.get("value")) for e in emails or () if isinstance(e, dict) and e.get("value")]
    props.update(_custom(item, catalog))
    return RawRecord("persons", str(item["id"]), props, {"organizations": _ids(item.get("org_id"))})


def organization(item: Mapping[str, Any], catalog: FieldCatalog | None = None) -> RawRecord:
    props = _flat(item)
    props.update(_custom(item, catalog))
    return RawRecord("organizations", str(item["id"]), props)


def deal(item: Mapping[str, Any], catalog: FieldCatalog | None = None, *, archived: bool = False) -> RawRecord:
    props = _flat(item)
    props.update(_custom(item, catalog))
    links = {"persons": _ids(item.get("person_id")), "organizations": _ids(item.get("org_id"))}
    return RawRecord("deals", str(item["id"]), props, links, archived=archived)


def due_at(item: Mapping[str, Any]) -> str | None:
    """An activity's due date and time (Pipedrive keeps both in UTC) as one RFC 3339 instant."""
    day = item.get("due_date")
    if not day:
        return None
    clock = str(item.get("due_time") or "00:00")
    if clock.count(":") == 1:
        clock += ":00"
    return f"{day}T{clock}Z"


def activity(item: Mapping[str, Any], catalog: FieldCatalog | None = None) -> RawRecord:
    props = _flat(item)
    props["due_at"] = due_at(item)
    props.update(_custom(item, catalog))
    participants = [p.get("person_id") for p in item.get("participants") or () if isinstance(p, dict)]
    links = {"persons": _ids(item.get("person_id"), *participants), "organizations": _ids(item.get("org_id")),
             "deals": _ids(item.get("deal_id"))}
    return RawRecord("activities", str(item["id"]), props, links)


def user(item: Mapping[str, Any]) -> RawRecord:
    """A v1 user; ``first_name``/``last_name`` are split from ``name`` (Pipedrive keeps one name)."""
    props = {k: v for k, v in item.items() if not isinstance(v, dict | list)}
    first, _, last = str(item.get("name") or "").strip().partition(" ")
    props["first_name"] = first or None
    props["last_name"] = last.strip() or None
    return RawRecord("users", str(item["id"]), props)


def pipeline(item: Mapping[str, Any], stages: list[Mapping[str, Any]]) -> RawRecord:
    """A pipeline with its stages in Pipedrive's order. Stages are never closed in Pipedrive: a deal is
    won or lost by its status, wherever it stands."""
    props = _flat(item)
    ordered = sorted((s for s in stages if not s.get("is_deleted")), key=lambda s: (s.get("order_nr") or 0, s["id"]))
    props["stages"] = [
        {"source_id": str(s["id"]), "label": s.get("name") or str(s["id"]), "display_order": s.get("order_nr") or 0,
         "probability": (s["deal_probability"] / 100) if s.get("deal_probability") is not None else None,
         "is_closed": False, "is_won": False}
        for s in ordered
    ]
    return RawRecord("pipelines", str(item["id"]), props)


BUILDERS = {"persons": person, "organizations": organization, "deals": deal, "activities": activity}
