"""Stored records back into models, fast: what ``model_validate_json`` gives, for a fraction of its cost.

A full re-score decodes ten or more records per person. Pydantic spends most of its time on
checks the store's own JSON always passes (every row was written by ``model_dump_json``), so a
record whose JSON has exactly the model's keys, in order, with values of the model's types is built
directly; anything else (an older shape, a value pydantic would coerce or refuse) goes through
``model_validate_json``, so the result is always the validated record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import orjson

from crmbridge.model import Activity, ActivityKind, ActorKind, Company, LifecycleStage, Person, SourceRecord

# The type of every field of the records decoded here, by field name (names mean the same in each).
_KINDS: dict[str, str] = {
    "source": "str", "source_id": "str", "created_at": "time?", "updated_at": "time?", "archived": "bool",
    "merged_into": "str?", "merged_ids": "strs", "source_ids": "str_map", "custom": "map", "extra": "map",
    "email": "str?", "first_name": "str?", "last_name": "str?", "title": "str?", "seniority": "str?",
    "role": "str?", "department": "str?", "phone": "str?", "country": "str?", "region": "str?", "city": "str?",
    "company_ids": "strs", "owner_id": "str?", "lifecycle_stage": "stage?", "lead_status": "str?",
    "unsubscribed": "bool", "bounced": "bool", "name": "str?", "domain": "str?", "industry": "str?",
    "employees": "int?", "annual_revenue": "float?", "technologies": "strs", "tier": "str?",
    "kind": "activity_kind", "occurred_at": "time", "actor": "actor?", "person_ids": "strs", "deal_ids": "strs",
    "subject": "str?", "attributes": "map",
}
_ENUMS: dict[str, type[Enum]] = {"stage?": LifecycleStage, "activity_kind": ActivityKind, "actor?": ActorKind}


class _Slow(Exception):
    """The fast path is not sure: let pydantic decide."""


@dataclass(frozen=True)
class _Shape:
    """One model's fields grouped by type, so checking a record is a few tight loops."""

    names: tuple[str, ...]
    by_kind: dict[str, tuple[str, ...]]
    enums: tuple[tuple[str, bool, dict[str, Enum]], ...]  # field, optional, value -> member
    post_init: bool


def _shape(cls: type[SourceRecord]) -> _Shape | None:
    names = tuple(cls.model_fields)
    if any(n not in _KINDS for n in names):
        return None  # a field this module does not know: always validate
    by_kind: dict[str, list[str]] = {}
    for n in names:
        by_kind.setdefault(_KINDS[n], []).append(n)
    enums = tuple((n, _KINDS[n].endswith("?"), {m.value: m for m in _ENUMS[_KINDS[n]]})
                  for n in names if _KINDS[n] in _ENUMS)
    return _Shape(names, {k: tuple(v) for k, v in by_kind.items()}, enums, cls.__pydantic_post_init__ is not None)


def _time(value: Any) -> datetime:
    # pydantic writes UTC as "...Z"; such a text parses to the same instant and zone either way
    if value.__class__ is not str or value[-1:] != "Z" or len(value) not in (20, 27):
        raise _Slow
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is not UTC:
        raise _Slow
    return parsed


def _check_types(d: dict[str, Any], shape: _Shape) -> None:
    """Raise ``_Slow`` unless every top-level value has its field's JSON type."""
    kinds = shape.by_kind
    for kind, allowed in _JSON_TYPES.items():
        for n in kinds.get(kind, ()):
            if d[n].__class__ not in allowed:
                raise _Slow


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "str?": (str, type(None)), "bool": (bool,), "strs": (list,), "str_map": (dict,), "map": (dict,),
    "int?": (int, type(None)), "float?": (float, type(None)), "time": (str,), "time?": (str, type(None)),
    "stage?": (str, type(None)), "activity_kind": (str,), "actor?": (str, type(None)),
}


def _check_items(d: dict[str, Any], shape: _Shape) -> None:
    """Raise ``_Slow`` unless the items of lists and maps of strings are strings (most are empty)."""
    kinds = shape.by_kind
    for n in kinds.get("strs", ()):
        for x in d[n]:
            if x.__class__ is not str:
                raise _Slow
    for n in kinds.get("str_map", ()):
        v = d[n]
        if v:
            for x in v.values():
                if x.__class__ is not str:
                    raise _Slow


def _convert(d: dict[str, Any], shape: _Shape) -> None:
    """Times and enums, the values JSON cannot hold as such."""
    kinds = shape.by_kind
    for n in kinds.get("time", ()):
        d[n] = _time(d[n])
    for n in kinds.get("time?", ()):
        v = d[n]
        if v is not None:
            d[n] = _time(v)
    for n, optional, members in shape.enums:
        v = d[n]
        if v is None and optional:
            continue
        try:
            d[n] = members[v]
        except KeyError:
            raise _Slow from None


_new = object.__new__
_set = object.__setattr__


def decoder(cls: type[SourceRecord]) -> Callable[[str | bytes], SourceRecord]:
    """A function from a stored record's JSON to the record, equal to ``cls.model_validate_json``."""
    shape = _shape(cls)
    validate = cls.model_validate_json
    if shape is None:
        return validate
    names, post_init = shape.names, shape.post_init
    # The top-level value types seen to be right, checked once each: records repeat a few patterns
    # (which optional fields are null), so most records cost one tuple and one set look-up here.
    typed: set[tuple[type, ...]] = set()

    def decode(data: str | bytes) -> SourceRecord:
        try:
            d = orjson.loads(data)
            if d.__class__ is not dict or tuple(d) != names:
                raise _Slow
            pattern = tuple(map(type, d.values()))
            if pattern not in typed:
                _check_types(d, shape)
                if len(typed) > 4096:
                    typed.clear()
                typed.add(pattern)
            _check_items(d, shape)
            _convert(d, shape)
        except (_Slow, orjson.JSONDecodeError, ValueError):
            return validate(data)
        # What pydantic's own construction sets: the fields, which of them were given, no extras.
        record = _new(cls)
        _set(record, "__dict__", d)
        _set(record, "__pydantic_fields_set__", set(names))
        _set(record, "__pydantic_extra__", None)
        _set(record, "__pydantic_private__", None)
        if post_init:
            record.model_post_init(None)
        return record

    return decode


DECODERS: dict[type[SourceRecord], Callable[[str | bytes], SourceRecord]] = {
    cls: decoder(cls) for cls in (Person, Company, Activity)
}
