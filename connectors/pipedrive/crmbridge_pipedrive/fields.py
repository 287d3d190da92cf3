"""Pipedrive custom fields: 40-hex keys to the labels people gave them, and option ids to option labels.

Pipedrive names every custom field by a random 40-character hash and, in API v2, answers single- and
multi-option fields with option ids. A ``FieldCatalog`` (built from the v1 ``*Fields`` endpoints) turns
them into what a mapping can read: the value under the field's key, options as their labels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CUSTOM_KEY = re.compile(r"^[0-9a-f]{40}$")


def is_custom_key(key: str) -> bool:
    return bool(CUSTOM_KEY.match(key))


@dataclass(frozen=True, slots=True)
class FieldDef:
    key: str
    label: str
    field_type: str
    options: Mapping[str, str] = field(default_factory=dict)  # option id (as text) -> option label


def _option_label(options: Mapping[str, str], value: Any) -> Any:
    if isinstance(value, dict):  # {"id": 12, "label": "…"} in some answers
        value = value.get("id", value.get("label"))
    return options.get(str(value), value)


def readable(definition: FieldDef | None, value: Any) -> Any:
    """One custom field's v2 value as a mapping reads it (options as labels, money as its amount)."""
    if value is None or definition is None:
        return value
    kind = definition.field_type
    if kind == "enum":
        return _option_label(definition.options, value)
    if kind == "set":
        items = value if isinstance(value, list) else [v for v in str(value).split(",") if v]
        return [_option_label(definition.options, v) for v in items]
    if isinstance(value, dict) and "value" in value:
        return value["value"]  # monetary, address, and linked user/org/person fields
    return value


class FieldCatalog:
    """The custom fields of one Pipedrive object type."""

    def __init__(self, definitions: Iterable[FieldDef] = ()) -> None:
        self.by_key: dict[str, FieldDef] = {d.key: d for d in definitions}

    @classmethod
    def from_v1(cls, items: Iterable[Mapping[str, Any]]) -> FieldCatalog:
        """From ``GET /v1/personFields`` (and friends) data: custom fields only, by their hash keys."""
        found = []
        for item in items:
            key = str(item.get("key") or "")
            if not is_custom_key(key) or item.get("active_flag") is False:
                continue
            options = {str(o.get("id")): str(o.get("label")) for o in item.get("options") or () if isinstance(o, dict)}
            found.append(FieldDef(key, str(item.get("name") or key), str(item.get("field_type") or ""), options))
        return cls(found)

    def labels(self) -> dict[str, str]:
        """Label -> key; the first field wins when two share a label."""
        out: dict[str, str] = {}
        for definition in self.by_key.values():
            out.setdefault(definition.label, definition.key)
        return out

    def flatten(self, custom_fields: Mapping[str, Any] | None) -> dict[str, Any]:
        """``custom_fields`` as flat properties under their keys (money also as ``<key>_currency``)."""
        out: dict[str, Any] = {}
        for key, value in (custom_fields or {}).items():
            if value is None:
                continue
            out[key] = readable(self.by_key.get(key), value)
            if isinstance(value, dict) and value.get("currency"):
                out[f"{key}_currency"] = value["currency"]
        return out

    def covers(self, custom_fields: Mapping[str, Any] | None) -> bool:
        """False when an answer holds a field or an option this catalog does not know (time to reload)."""
        for key, value in (custom_fields or {}).items():
            definition = self.by_key.get(key)
            if definition is None:
                return False
            if definition.field_type in ("enum", "set") and value is not None:
                values = value if isinstance(value, list) else [value]
                if any(str(v.get("id") if isinstance(v, dict) else v) not in definition.options for v in values):
                    return False
        return True

    def to_state(self) -> dict[str, list[Any]]:
        """A compact JSON form (types and option labels by key): the detail the core keeps with the stream's
        field catalog in the store, so a new process reads no catalog while the kept one is fresh."""
        return {d.key: [d.label, d.field_type, dict(d.options)] for d in self.by_key.values()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FieldCatalog:
        return cls(FieldDef(key, str(v[0]), str(v[1]), {str(k): str(o) for k, o in dict(v[2]).items()})
                   for key, v in state.items())
