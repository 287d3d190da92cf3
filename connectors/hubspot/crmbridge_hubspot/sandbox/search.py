"""The CRM search endpoint's query language: validation with HubSpot's limits, and evaluation.

A filter group whose filters bound the last-modified property reads its candidates from the sorted
last-modified index, so an incremental sync's window costs what it returns, not a scan of every
record. Results of the last few queries are kept until the index changes, so paging is O(page).
"""

from __future__ import annotations

import fnmatch
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from crmbridge_hubspot.sandbox import errors
from crmbridge_hubspot.sandbox.clock import parse_date, parse_instant
from crmbridge_hubspot.sandbox.schema import (
    SEARCH_MAX_BODY_CHARS,
    SEARCH_MAX_FILTERS,
    SEARCH_MAX_FILTERS_PER_GROUP,
    SEARCH_MAX_GROUPS,
    SEARCH_MAX_LIMIT,
    SEARCH_MAX_RESULTS,
    SEARCH_MAX_SORTS,
)
from crmbridge_hubspot.sandbox.store import ObjectStore, Record, SearchView

OPERATORS = frozenset({"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
                       "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"})
_TOKEN_SPLIT = re.compile(r"[\s@.,;:/\\_\-+()]+")
_NEVER = 1 << 62

View = SearchView | Record
Predicate = Callable[[Record, View], bool]


@dataclass(slots=True)
class SearchRequest:
    groups: list[list[Predicate]]
    windows: list[tuple[int, int] | None]  # per group: last-modified bounds usable with the index
    id_sets: list[set[int] | None]  # per group: hs_object_id EQ/IN, if any
    sort_key: Callable[[Record, View], Any] | None
    sort_name: str | None
    descending: bool
    query: str | None
    properties: list[str]
    limit: int
    after: int
    cache_key: bytes


def parse(raw: bytes, store: ObjectStore) -> SearchRequest:
    if len(raw) > SEARCH_MAX_BODY_CHARS:
        raise errors.validation(f"The request body is {len(raw)} characters long; search requests are limited to "
                                f"{SEARCH_MAX_BODY_CHARS} characters.")
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise errors.validation(f"Invalid input JSON: {exc}") from None
    if not isinstance(body, dict):
        raise errors.validation("Invalid input JSON: expected an object")
    limit = _int(body.get("limit", 10), "limit")
    after = _int(body.get("after", 0) or 0, "after")
    if not 0 < limit <= SEARCH_MAX_LIMIT:
        raise errors.validation(f"limit must be between 1 and {SEARCH_MAX_LIMIT}; got {limit}",
                                context={"limit": [str(limit)]})
    if after < 0:
        raise errors.validation(f"after must not be negative; got {after}")
    if after + limit > SEARCH_MAX_RESULTS:
        raise errors.validation(
            f"Search results are limited to {SEARCH_MAX_RESULTS:,} per query (requested results {after + 1} to "
            f"{after + limit}). Narrow the filters to page further.", context={"after": [str(after)]})
    groups_in = body.get("filterGroups") or []
    if len(groups_in) > SEARCH_MAX_GROUPS:
        raise errors.validation(f"Too many filter groups: {len(groups_in)}; the maximum is {SEARCH_MAX_GROUPS}.")
    if sum(len(g.get("filters") or []) for g in groups_in if isinstance(g, dict)) > SEARCH_MAX_FILTERS:
        raise errors.validation(f"Too many filters; the maximum is {SEARCH_MAX_FILTERS} across all groups.")
    compiler = _Compiler(store)
    groups, windows, id_sets = [], [], []
    for group in groups_in:
        filters = (group or {}).get("filters") or []
        if len(filters) > SEARCH_MAX_FILTERS_PER_GROUP:
            raise errors.validation(f"Too many filters in a group: {len(filters)}; the maximum is "
                                    f"{SEARCH_MAX_FILTERS_PER_GROUP}.")
        predicates, window, ids = compiler.group(filters)
        groups.append(predicates)
        windows.append(window)
        id_sets.append(ids)
    sorts = body.get("sorts") or []
    if len(sorts) > SEARCH_MAX_SORTS:
        raise errors.validation(f"Too many sorts: {len(sorts)}; search supports {SEARCH_MAX_SORTS}.")
    sort_key, descending = compiler.sort(sorts[0]) if sorts else (None, False)
    sort_name = _sort_name(sorts[0]) if sorts else None
    properties = body.get("properties") or []
    if isinstance(properties, str):
        properties = [p for p in properties.split(",") if p]
    query = body.get("query") or None
    key = orjson.dumps([groups_in, sorts, query], option=orjson.OPT_SORT_KEYS)
    return SearchRequest(groups, windows, id_sets, sort_key, sort_name, descending, query, list(properties), limit,
                         after, key)


def _sort_name(spec: Any) -> str | None:
    if isinstance(spec, str):
        return spec.lstrip("-")
    return spec.get("propertyName") if isinstance(spec, dict) else None


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.validation(f"{name} must be an integer; got {value!r}") from None


class _Compiler:
    """Turns filters into predicates over (record, search view), typed by the property definition."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.catalog = store.catalog
        self.otype = store.type

    def group(self, filters: list[Any]) -> tuple[list[Predicate], tuple[int, int] | None, set[int] | None]:
        predicates: list[Predicate] = []
        low, high, bounded = -_NEVER, _NEVER, False
        ids: set[int] | None = None
        for raw in filters:
            if not isinstance(raw, dict):
                raise errors.validation("Each filter must be an object")
            name = raw.get("propertyName")
            operator = str(raw.get("operator") or "").upper()
            if operator not in OPERATORS:
                raise errors.validation(f"Invalid operator {raw.get('operator')!r}; expected one of "
                                        f"{', '.join(sorted(OPERATORS))}")
            if name not in self.catalog.defs:
                raise errors.validation(f"Property \"{name}\" does not exist on {self.otype.name}",
                                        context={"propertyName": [str(name)]})
            predicates.append(self.predicate(name, operator, raw))
            if name == self.otype.modified_prop and operator in ("EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"):
                lo, hi = self._bounds(operator, raw)
                low, high, bounded = max(low, lo), min(high, hi), True
            if name == "hs_object_id" and operator in ("EQ", "IN"):
                values = raw.get("values") if operator == "IN" else [raw.get("value")]
                found = {int(v) for v in values or [] if str(v).isdigit()}
                ids = found if ids is None else ids & found
        return predicates, ((low, high) if bounded else None), ids

    def _bounds(self, operator: str, raw: Mapping[str, Any]) -> tuple[int, int]:
        value = self._instant(raw.get("value"))
        if operator == "EQ":
            return value, value
        if operator == "GT":
            return value + 1, _NEVER
        if operator == "GTE":
            return value, _NEVER
        if operator == "LT":
            return -_NEVER, value - 1
        if operator == "LTE":
            return -_NEVER, value
        return value, self._instant(raw.get("highValue"))

    def _instant(self, value: Any) -> int:
        instant = parse_instant(value)
        if instant is None:
            raise errors.validation(f"{value!r} is not a valid date-time: use epoch milliseconds or ISO 8601")
        return instant

    def _getter(self, name: str) -> tuple[Callable[[Record, View], Any], str]:
        """A function reading a property's typed value from a record's search view, and the type."""
        prop = self.catalog.defs[name]
        if name == "hs_object_id":
            return (lambda record, view: record.id), "number"
        if name == self.otype.modified_prop:
            return (lambda record, view: view.updated_ms), "datetime"
        if name == self.otype.created_prop:
            return (lambda record, view: record.created_ms), "datetime"
        column = prop.column
        kind = prop.type

        def raw(record: Record, view: View) -> Any:
            values = view.values
            return values[column] if column < len(values) else None

        if kind == "number":
            def number(record: Record, view: View) -> float | None:
                value = raw(record, view)
                try:
                    return float(value) if value is not None else None
                except ValueError:
                    return None
            return number, kind
        if kind == "datetime":
            return (lambda record, view: parse_instant(raw(record, view))), kind
        if kind in ("enumeration", "bool", "string", "date"):
            return raw, kind
        return raw, "string"

    def _coerce(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == "number":
            try:
                return float(value)
            except (TypeError, ValueError):
                raise errors.validation(f"{value!r} is not a number") from None
        if kind == "datetime":
            return self._instant(value)
        if kind == "date":
            text = str(value)
            day, _ = parse_date(text) if not text.isdigit() else (None, None)
            if text.isdigit():
                day = datetime.fromtimestamp(int(text) / 1000, UTC).date().isoformat()
            if day is None:
                raise errors.validation(f"{value!r} is not a valid date")
            return day
        return str(value).lower()

    def predicate(self, name: str, operator: str, raw: Mapping[str, Any]) -> Predicate:
        get, kind = self._getter(name)
        textual = kind in ("string", "enumeration", "bool")

        def typed(record: Record, view: View) -> Any:
            value = get(record, view)
            if value is None or value == "":
                return None
            return value.lower() if textual and isinstance(value, str) else value

        if operator == "HAS_PROPERTY":
            return lambda r, v: typed(r, v) is not None
        if operator == "NOT_HAS_PROPERTY":
            return lambda r, v: typed(r, v) is None
        if operator in ("IN", "NOT_IN"):
            wanted = {self._coerce(kind, x) for x in raw.get("values") or []}
            if kind == "enumeration" and self.catalog.defs[name].field_type == "checkbox":
                def any_of(r: Record, v: View) -> bool:
                    value = typed(r, v)
                    return value is not None and bool(wanted & set(value.split(";")))
                return any_of if operator == "IN" else (lambda r, v: not any_of(r, v))
            if operator == "IN":
                return lambda r, v: typed(r, v) in wanted
            return lambda r, v: typed(r, v) not in wanted
        if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            needle = str(raw.get("value") or "").lower()

            def contains(r: Record, v: View) -> bool:
                value = typed(r, v)
                if value is None:
                    return False
                text = str(value)
                if "*" in needle:
                    return fnmatch.fnmatchcase(text, needle) or any(
                        fnmatch.fnmatchcase(t, needle) for t in _TOKEN_SPLIT.split(text))
                return needle == text or needle in _TOKEN_SPLIT.split(text)
            return contains if operator == "CONTAINS_TOKEN" else (lambda r, v: not contains(r, v))
        value = self._coerce(kind, raw.get("value"))
        if operator == "EQ":
            return lambda r, v: typed(r, v) == value
        if operator == "NEQ":
            return lambda r, v: typed(r, v) != value
        if operator == "BETWEEN":
            high = self._coerce(kind, raw.get("highValue"))

            def between(r: Record, v: View) -> bool:
                x = typed(r, v)
                return x is not None and value <= x <= high
            return between
        compare = {"LT": lambda x: x < value, "LTE": lambda x: x <= value, "GT": lambda x: x > value,
                   "GTE": lambda x: x >= value}[operator]

        def ordered(r: Record, v: View) -> bool:
            x = typed(r, v)
            try:
                return x is not None and compare(x)
            except TypeError:
                return False
        return ordered

    def sort(self, spec: Any) -> tuple[Callable[[Record, View], Any], bool]:
        if isinstance(spec, str):  # the SDK types sorts as strings: "-prop" or "prop"
            name, descending = spec.lstrip("-"), spec.startswith("-")
        elif isinstance(spec, dict):
            name = spec.get("propertyName")
            descending = str(spec.get("direction", "ASCENDING")).upper().startswith("DESC")
        else:
            raise errors.validation("Invalid sort")
        if name not in self.catalog.defs:
            raise errors.validation(f"Property \"{name}\" does not exist on {self.otype.name}",
                                    context={"propertyName": [str(name)]})
        get, _ = self._getter(name)

        def key(record: Record, view: View) -> Any:
            value = get(record, view)
            if value is None or value == "":
                return (1, 0, record.id)  # no value sorts last
            return (0, value.lower() if isinstance(value, str) else value, record.id)
        return key, descending


class SearchEngine:
    """Runs parsed requests against one store, remembering recent result lists."""

    CACHE_SIZE = 16

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._cache: OrderedDict[bytes, tuple[int, list[int]]] = OrderedDict()

    def run(self, request: SearchRequest) -> tuple[int, list[tuple[Record, View]]]:
        """Total number of matches and this page's (record, view) pairs."""
        store = self.store
        index = store.index
        index.catch_up(store.records.get)
        cached = self._cache.get(request.cache_key)
        if cached is not None and cached[0] == index.version:
            ids = cached[1]
            self._cache.move_to_end(request.cache_key)
        else:
            ids = self._evaluate(request)
            self._cache[request.cache_key] = (index.version, ids)
            if len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        page = []
        for rid in ids[request.after:request.after + request.limit]:
            record = store.records[rid]
            view = index.view(record)
            if view is not None:
                page.append((record, view))
        return len(ids), page

    def _evaluate(self, request: SearchRequest) -> list[int]:
        store, index = self.store, self.store.index
        records = store.records
        matches: dict[int, View] = {}
        groups = request.groups or [[]]
        windows = request.windows or [None]
        id_sets = request.id_sets or [None]
        text = _text_predicate(store, request.query)
        natural = None  # the order candidates arrive in, when there is a single group
        for predicates, window, ids in zip(groups, windows, id_sets, strict=True):
            candidates: Iterable[int]
            if ids is not None:
                candidates, natural = sorted(ids), "hs_object_id"
            elif window is not None:
                candidates, natural = index.modified_between(*window), store.type.modified_prop
            else:
                candidates, natural = store.order, "hs_object_id"
            for rid in candidates:
                if rid in matches:
                    continue
                record = records.get(rid)
                if record is None:
                    continue
                view = index.view(record)
                if view is None:
                    continue
                if all(p(record, view) for p in predicates) and (text is None or text(record, view)):
                    matches[rid] = view
        wanted = request.sort_name or "hs_object_id"
        if len(groups) == 1 and natural == wanted:  # the candidates came in the requested order already
            ordered = list(matches)
            return ordered[::-1] if request.descending else ordered
        if request.sort_key is None:
            ordered = sorted(matches)
            return ordered[::-1] if request.descending else ordered
        key = request.sort_key
        rows = sorted(matches.items(), key=lambda item: key(records[item[0]], item[1]), reverse=request.descending)
        if request.descending:  # records without a value stay last either way
            rows.sort(key=lambda item: key(records[item[0]], item[1])[0])
        return [rid for rid, _ in rows]


def _text_predicate(store: ObjectStore, query: str | None) -> Predicate | None:
    """The free-text ``query``: every word must start a token of one of the type's searchable properties."""
    if not query:
        return None
    words = [w for w in _TOKEN_SPLIT.split(query.lower()) if w]
    columns = [store.catalog.column(n) for n in store.type.searchable if store.catalog.column(n) >= 0]

    def matches(record: Record, view: View) -> bool:
        values = view.values
        tokens: list[str] = []
        for column in columns:
            if column < len(values) and values[column]:
                tokens.extend(_TOKEN_SPLIT.split(str(values[column]).lower()))
        return all(any(t.startswith(w) for t in tokens) for w in words)
    return matches
