"""Compile a mapping file (``mappings/<source>.yaml``) into fast per-stream mappers.

A mapping names, for each vendor stream, the canonical entity it becomes and where each canonical
field comes from: a property (by key or, for custom fields, by label), an association, a constant,
or the first of several such sources, each followed by a transform. Everything is checked when the
file is loaded, so a bad mapping fails at start-up with its file, line and key, never mid-sync.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from crmbridge.connectors import RawRecord
from crmbridge.errors import ConfigError
from crmbridge.mapping import transforms as tf
from crmbridge.model import ENTITY_CLASSES, Activity, EntityType, SourceRecord
from crmbridge.yamlconf import Locator, PathKey, load_yaml, parse_yaml

Getter = Callable[[RawRecord], Any]
_RESERVED = {"source", "source_id", "extra", "custom", "attributes"}
_FIELD_KEYS = {"from", "label", "value", "association", "first", "transform", "values", "match", "default",
               "separator", "lower", "passthrough"}
_STREAM_KEYS = {"entity", "id", "id_prefix", "fields", "custom", "keep_unmapped", "ignore"}
# Mapping file format versions this engine reads; a file without ``version`` is read as the first.
KNOWN_VERSIONS = (1,)


def _flag(spec: Mapping[str, Any], key: str, default: bool, path: PathKey, locator: Locator) -> bool:
    """A true/false setting; anything else (``maybe``, ``yes please``, 1) is an error, never read as true."""
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise locator.error(f"expected true or false, got {value!r}", (*path, key))
    return value


def _text_value(spec: Mapping[str, Any], key: str, default: str, path: PathKey, locator: Locator) -> str:
    """A name or prefix: text (a bare number such as an id prefix 42 is taken as its text), never a table."""
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise locator.error(f"expected text, got {value!r}", (*path, key))
    return str(value)


def _check_version(data: Mapping[str, Any], locator: Locator) -> None:
    version = data.get("version", KNOWN_VERSIONS[0])
    if type(version) is not int or version not in KNOWN_VERSIONS:
        known = ", ".join(map(str, KNOWN_VERSIONS))
        raise locator.error(f"unknown mapping version {version!r} (known: {known})", ("version",))


class MappingError(ValueError):
    """One record could not be mapped; it is quarantined and the sync goes on."""

    def __init__(self, stream: str, record_id: str, field: str, reason: str) -> None:
        self.stream, self.record_id, self.field, self.reason = stream, record_id, field, reason
        super().__init__(f"{stream} {record_id}: {field}: {reason}")


@dataclass(frozen=True, slots=True)
class _Context:
    locator: Locator
    catalog: Mapping[str, str] | None  # None: check the file alone, labels unresolved
    entity_cls: type[SourceRecord]


def _unwrap(annotation: Any) -> Any:
    """``str | None`` → ``str``; ``Annotated[datetime, …]`` → ``datetime``; ``list[str]`` stays."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation


def _target_type(cls: type[SourceRecord], target: str) -> Any:
    if target.startswith(("attributes.", "custom.")):
        return Any
    return _unwrap(cls.model_fields[target].annotation)


def _default_transform(kind: Any, target: str) -> tf.Transform:
    if kind is bool:
        return tf.to_boolean
    if kind is int:
        return tf.to_integer
    if kind is float:
        return tf.to_number
    if kind is datetime:
        return tf.to_datetime
    if kind is date:
        return tf.to_date
    if typing.get_origin(kind) is list:
        return tf.id_list if target.endswith("_ids") else tf.list_of(";")
    if isinstance(kind, type) and issubclass(kind, Enum):
        return tf.to_lower
    if kind is str:
        return tf.to_string
    return tf.SIMPLE["raw"]


def _named_transform(name: Any, spec: Mapping[str, Any], path: PathKey, ctx: _Context) -> tf.Transform:
    if name == "enum":
        values = spec.get("values")
        if not isinstance(values, dict) or not values:
            raise ctx.locator.error("enum needs a 'values' table", (*path, "values"))
        match = spec.get("match", "exact")
        if match not in ("exact", "regex"):
            raise ctx.locator.error("match must be 'exact' or 'regex'", (*path, "match"))
        passthrough = _flag(spec, "passthrough", False, path, ctx.locator)
        try:
            return tf.enum(values, match=match, default=spec.get("default"), passthrough=passthrough)
        except Exception as exc:  # a bad regular expression
            raise ctx.locator.error(f"bad pattern: {exc}", (*path, "values")) from None
    if name == "list":
        return tf.list_of(_text_value(spec, "separator", ";", path, ctx.locator),
                          lower=_flag(spec, "lower", False, path, ctx.locator))
    if name in tf.SIMPLE:
        return tf.SIMPLE[name]
    known = ", ".join(sorted([*tf.SIMPLE, "enum", "list"]))
    raise ctx.locator.error(f"unknown transform {name!r} (known: {known})", (*path, "transform"))


def _check_enum_values(kind: Any, spec: Mapping[str, Any], path: PathKey, ctx: _Context) -> None:
    """Catch a mapping onto a stage or kind that does not exist before any record meets it."""
    if not (isinstance(kind, type) and issubclass(kind, Enum)):
        return
    allowed = {m.value for m in kind}
    candidates: list[tuple[Any, PathKey]] = []
    if "value" in spec:
        candidates.append((spec["value"], (*path, "value")))
    for key, target in (spec.get("values") or {}).items():
        candidates.append((target, (*path, "values", key)))
    if spec.get("default") is not None:
        candidates.append((spec["default"], (*path, "default")))
    for value, where in candidates:
        if value is not None and value not in allowed:
            raise ctx.locator.error(f"{value!r} is not one of: {', '.join(sorted(allowed))}", where)


def _resolve_label(spec: Mapping[str, Any], path: PathKey, ctx: _Context) -> str:
    label = str(spec["label"])
    if ctx.catalog is None:
        return label
    if label not in ctx.catalog:
        raise ctx.locator.error(f"no custom field labelled {label!r} in this CRM", (*path, "label"))
    return ctx.catalog[label]


def _source_getter(spec: Mapping[str, Any], kind: Any, path: PathKey, ctx: _Context) -> Getter:
    if "value" in spec:
        constant = spec["value"]
        return lambda raw: constant
    if "association" in spec:
        name = str(spec["association"])
        if typing.get_origin(kind) is list:
            return lambda raw: list(raw.associations.get(name, ()))
        return lambda raw: next(iter(raw.associations.get(name, ())), None)
    if "label" in spec:
        key = _resolve_label(spec, path, ctx)
    elif "from" in spec:
        key = str(spec["from"])
    else:
        raise ctx.locator.error("a field needs one of: from, label, value, association, first", path)
    return lambda raw: raw.properties.get(key)


def _compile_field(target: str, spec: Any, path: PathKey, ctx: _Context, consumed: set[str]) -> Getter:
    if isinstance(spec, str):
        spec = {"from": spec}
    if not isinstance(spec, dict):
        raise ctx.locator.error("a field is a property name or a table (from/label/value/…)", path)
    unknown = set(spec) - _FIELD_KEYS
    if unknown:
        raise ctx.locator.error(f"unknown key {sorted(unknown)[0]!r}", (*path, sorted(unknown)[0]))
    kind = _target_type(ctx.entity_cls, target)
    if "first" in spec:
        options = spec["first"]
        if not isinstance(options, list) or not options:
            raise ctx.locator.error("'first' takes a list of field sources", (*path, "first"))
        getters = [_compile_field(target, o, (*path, "first", i), ctx, consumed) for i, o in enumerate(options)]

        def first(raw: RawRecord) -> Any:
            for get in getters:
                value = get(raw)
                if value not in (None, "", []):
                    return value
            return None

        return first
    _check_enum_values(kind, spec, path, ctx)
    if "from" in spec:
        consumed.add(str(spec["from"]))
    get = _source_getter(spec, kind, path, ctx)
    if "label" in spec:
        consumed.add(_resolve_label(spec, path, ctx))
    if "value" in spec and "transform" not in spec:
        return get
    names = spec.get("transform")
    if names is None:
        step = _named_transform("enum", spec, path, ctx) if "values" in spec else _default_transform(kind, target)
        steps = [step]
    else:
        steps = [_named_transform(n, spec, path, ctx) for n in (names if isinstance(names, list) else [names])]
    transform = steps[0] if len(steps) == 1 else tf.chain(*steps)
    default = spec.get("default") if "values" not in spec else None
    key = _plain_key(spec, ctx, path)
    if key is not None:
        # The common case, kept tight: one property, one transform. Every transform reads a missing
        # or empty value as missing, so those skip the call.
        def run_property(raw: RawRecord) -> Any:
            value = raw.properties.get(key)
            if value is None or value == "":
                return default
            value = transform(value)
            return default if value is None else value

        return run_property

    def run(raw: RawRecord) -> Any:
        value = transform(get(raw))
        return default if value is None else value

    return run


def _plain_key(spec: Mapping[str, Any], ctx: _Context, path: PathKey) -> str | None:
    if "from" in spec:
        return str(spec["from"])
    if "label" in spec:
        return _resolve_label(spec, path, ctx)
    return None


def _check_target(target: str, ctx: _Context, path: PathKey) -> None:
    cls = ctx.entity_cls
    if target.startswith("attributes."):
        if cls is not Activity:
            raise ctx.locator.error("only activities have attributes", path)
        return
    if target.startswith("custom."):
        return
    if target in _RESERVED or target not in cls.model_fields:
        fields = ", ".join(sorted(set(cls.model_fields) - _RESERVED))
        raise ctx.locator.error(f"{cls.__name__} has no field {target!r} (fields: {fields})", path)


class StreamMapper:
    """Maps one vendor stream's raw records to one canonical entity."""

    def __init__(self, source: str, stream: str, spec: Mapping[str, Any], path: PathKey, locator: Locator,
                 catalog: Mapping[str, str] | None) -> None:
        unknown = set(spec) - _STREAM_KEYS
        if unknown:
            raise locator.error(f"unknown key {sorted(unknown)[0]!r}", (*path, sorted(unknown)[0]))
        try:
            self.entity = EntityType(spec.get("entity"))
        except ValueError:
            choices = ", ".join(e.value for e in EntityType)
            raise locator.error(f"entity must be one of: {choices}", (*path, "entity")) from None
        self.source, self.stream = source, stream
        self.cls = ENTITY_CLASSES[self.entity]
        self.id_key = _text_value(spec, "id", "id", path, locator)
        self.id_prefix = _text_value(spec, "id_prefix", "", path, locator)
        self.keep_unmapped = _flag(spec, "keep_unmapped", True, path, locator)
        ignore = spec.get("ignore") or []
        if not isinstance(ignore, list) or not all(isinstance(p, str | int) and not isinstance(p, bool)
                                                   for p in ignore):
            raise locator.error("'ignore' is a list of property names", (*path, "ignore"))
        self.consumed: set[str] = {self.id_key, *map(str, ignore)}
        ctx = _Context(locator, catalog, self.cls)
        rules: list[tuple[str, Getter]] = []
        for section, prefix in (("fields", ""), ("custom", "custom.")):
            table = spec.get(section) or {}
            if not isinstance(table, dict):
                raise locator.error(f"'{section}' is a table of field: source", (*path, section))
            for name, field_spec in table.items():
                target = prefix + str(name)
                _check_target(target, ctx, (*path, section, name))
                rules.append((target, _compile_field(target, field_spec, (*path, section, name), ctx, self.consumed)))
        if self.entity is EntityType.ACTIVITY and not {"kind", "occurred_at"} <= {t for t, _ in rules}:
            raise locator.error("an activity stream must map 'kind' and 'occurred_at'", (*path, "fields"))
        self.rules = rules
        # (section, field, getter): section None for a model field, else "attributes" or "custom".
        self._compiled = [(t.split(".", 1)[0], t.split(".", 1)[1], g) if "." in t else (None, t, g) for t, g in rules]

    def map(self, raw: RawRecord) -> SourceRecord:
        data: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {"attributes": {}, "custom": {}}
        for section, name, get in self._compiled:
            try:
                value = get(raw)
            except (ValueError, TypeError, OverflowError) as exc:
                target = name if section is None else f"{section}.{name}"
                raise MappingError(self.stream, raw.id, target, str(exc)) from None
            if value is None:
                continue
            if section is None:
                data[name] = value
            else:
                nested[section][name] = value
        for section, values in nested.items():
            if values:
                data[section] = dict(sorted(values.items()))
        if self.keep_unmapped:
            consumed = self.consumed
            extra = {k: v for k, v in raw.properties.items() if v is not None and v != "" and k not in consumed}
            if extra:
                data["extra"] = dict(sorted(extra.items()))
        raw_id = raw.id if self.id_key == "id" else raw.properties.get(self.id_key)
        data["source"] = self.source
        data["source_id"] = f"{self.id_prefix}{raw_id}"
        data["archived"] = raw.archived or bool(data.get("archived"))
        try:
            return self.cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise MappingError(self.stream, raw.id, where, first["msg"]) from None


class SourceMapping:
    """A whole mapping file: one ``StreamMapper`` per vendor stream."""

    def __init__(self, source: str, streams: dict[str, StreamMapper], file: str) -> None:
        self.source, self.streams, self.file = source, streams, file

    @classmethod
    def load(cls, path: str | Path, catalogs: Mapping[str, Mapping[str, str]] | None = None) -> SourceMapping:
        """Load and check a mapping; with ``catalogs`` (the CRM's custom fields), labels are resolved too."""
        data, locator = load_yaml(path)
        return cls._build(data, locator, catalogs)

    @classmethod
    def from_text(cls, text: str, catalogs: Mapping[str, Mapping[str, str]] | None = None,
                  name: str = "<mapping>") -> SourceMapping:
        data, locator = parse_yaml(text, Locator(name))
        return cls._build(data, locator, catalogs)

    @classmethod
    def _build(cls, data: Any, locator: Locator, catalogs: Mapping[str, Mapping[str, str]] | None
               ) -> SourceMapping:
        if not isinstance(data, dict):
            raise locator.error("a mapping file is a table with 'source' and 'streams'", ())
        for key in set(data) - {"source", "version", "streams"}:
            raise locator.error(f"unknown key {key!r}", (key,))
        _check_version(data, locator)
        source = data.get("source")
        if not isinstance(source, str) or not source:
            raise locator.error("'source' names an installed connector plugin", ("source",))
        streams = data.get("streams")
        if not isinstance(streams, dict) or not streams:
            raise locator.error("'streams' maps each vendor stream to a canonical entity", ("streams",))
        mappers = {}
        for name, spec in streams.items():
            if not isinstance(spec, dict):
                raise locator.error("a stream is a table with 'entity' and 'fields'", ("streams", name))
            catalog = None if catalogs is None else catalogs.get(str(name), {})
            mappers[str(name)] = StreamMapper(source, str(name), spec, ("streams", name), locator, catalog)
        return cls(source, mappers, locator.file)

    def mapper(self, stream: str) -> StreamMapper:
        try:
            return self.streams[stream]
        except KeyError:
            raise ConfigError(f"no mapping for stream {stream!r}", file=self.file, key=f"streams.{stream}") from None

    def map_all(self, records: Iterable[RawRecord]) -> tuple[list[SourceRecord], list[tuple[RawRecord, MappingError]]]:
        """Map what can be mapped; return the failures beside it instead of stopping at the first."""
        mapped: list[SourceRecord] = []
        failed: list[tuple[RawRecord, MappingError]] = []
        for raw in records:
            try:
                mapped.append(self.mapper(raw.stream).map(raw))
            except MappingError as exc:
                failed.append((raw, exc))
        return mapped, failed


def labels_used(path: str | Path) -> dict[str, list[str]]:
    """Which custom-field labels a mapping names, per stream, without resolving them."""
    data, _ = load_yaml(path)
    found: dict[str, list[str]] = {}

    def walk(stream: str, node: Any) -> None:
        if isinstance(node, dict):
            if "label" in node:
                found.setdefault(stream, []).append(str(node["label"]))
            for value in node.values():
                walk(stream, value)
        elif isinstance(node, list):
            for value in node:
                walk(stream, value)

    for stream, spec in ((data or {}).get("streams") or {}).items():
        walk(str(stream), spec)
    return found


__all__: Sequence[str] = ["MappingError", "SourceMapping", "StreamMapper", "labels_used"]
