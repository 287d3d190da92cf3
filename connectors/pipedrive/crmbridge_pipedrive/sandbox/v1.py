"""API v1 shapes of records the sandbox keeps in v2's: ``GET /v1/persons`` and ``GET /v1/pipelines``.

v1 differs from v2 in ways clients notice: times are ``YYYY-MM-DD HH:MM:SS`` (UTC), a person's owner
and organization are objects with the id in ``value``, e-mails and phones are ``email``/``phone``,
``visible_to`` is text, and custom fields sit at the top level by their 40-character keys (an
enum as its option id in text, a set as comma-separated ids, a monetary value as the key plus
``{key}_currency``). Lists page with ``start``/``limit`` and say what follows in
``additional_data.pagination``; ``related_objects`` carries the users and organizations named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmbridge_pipedrive.sandbox.state import PipedriveState

COMPANY_ID = 1


def v1_time(value: str | None) -> str | None:
    """``2026-06-01T10:20:00Z`` as v1 writes it: ``2026-06-01 10:20:00``."""
    return value.replace("T", " ").rstrip("Z") if value else None


def _custom(fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict) and "currency" in value:
            out[key], out[f"{key}_currency"] = value.get("value"), value.get("currency")
        elif isinstance(value, list):
            out[key] = ",".join(str(v) for v in value) or None
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = str(value)  # an enum option id, as v1 answers it
        else:
            out[key] = value
    return out


def user_ref(state: PipedriveState, user_id: int | None) -> dict[str, Any] | None:
    user = state.users.get(user_id) if user_id is not None else None
    if user is None:
        return None
    return {"id": user["id"], "name": user["name"], "email": user["email"], "has_pic": 0, "pic_hash": None,
            "active_flag": bool(user.get("active_flag", True)), "value": user["id"]}


def organization_ref(state: PipedriveState, org_id: int | None) -> dict[str, Any] | None:
    org = state.tables["organizations"].rows.get(org_id) if org_id is not None else None
    if org is None or org.get("is_deleted"):
        return None
    people = sum(1 for p in state.tables["persons"].rows.values()
                 if p.get("org_id") == org["id"] and not p.get("is_deleted"))
    return {"name": org["name"], "people_count": people, "owner_id": org.get("owner_id"),
            "address": (org.get("address") or {}).get("value"), "cc_email": "lumen@pipedrivemail.com",
            "value": org["id"], "active_flag": True}


def person(state: PipedriveState, row: Mapping[str, Any]) -> dict[str, Any]:
    owner = user_ref(state, row.get("owner_id"))
    org = organization_ref(state, row.get("org_id"))
    name = str(row.get("name") or "")
    item: dict[str, Any] = {
        "id": row["id"], "company_id": COMPANY_ID, "owner_id": owner, "org_id": org, "name": name,
        "first_name": row.get("first_name"), "last_name": row.get("last_name"), "active_flag": True,
        "phone": [dict(p) for p in row.get("phones") or ()], "email": [dict(e) for e in row.get("emails") or ()],
        "first_char": name[:1].lower() or None, "add_time": v1_time(row.get("add_time")),
        "update_time": v1_time(row.get("update_time")), "visible_to": str(row.get("visible_to") or 3),
        "picture_id": None, "label": None, "label_ids": list(row.get("label_ids") or []),
        "org_name": org["name"] if org else None, "owner_name": owner["name"] if owner else None,
        "cc_email": "lumen@pipedrivemail.com"}
    item.update(_custom(row.get("custom_fields") or {}))
    return item


def pipeline(row: Mapping[str, Any]) -> dict[str, Any]:
    name = str(row.get("name") or "")
    return {"id": row["id"], "name": name, "url_title": "-".join(name.lower().split()),
            "order_nr": row.get("order_nr") or 0, "active": not row.get("is_deleted"),
            "deal_probability": bool(row.get("is_deal_probability_enabled")),
            "add_time": v1_time(row.get("add_time")), "update_time": v1_time(row.get("update_time")),
            "selected": bool(row.get("is_selected"))}


def related(state: PipedriveState, items: list[dict[str, Any]]) -> dict[str, Any]:
    """``related_objects`` of a v1 person list: the users and organizations its items name."""
    users = {str(i["owner_id"]["id"]): {k: v for k, v in i["owner_id"].items() if k != "value"}
             for i in items if i.get("owner_id")}
    orgs = {str(i["org_id"]["value"]): {"id": i["org_id"]["value"],
                                         **{k: v for k, v in i["org_id"].items() if k not in ("value", "active_flag")}}
            for i in items if i.get("org_id")}
    return {"user": users, "organization": orgs}
