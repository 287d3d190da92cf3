"""The condition language of scoring models, compiled once into plain predicates.

A condition is a YAML mapping of field → expected value (all must hold), with ``any``/``all``/``not``
for logic. A field names a canonical attribute (``industry``, ``person.title``, ``company.custom.segment``)
or, on activities, an attribute such as ``form_name`` or ``url``. Expected values are a scalar (equals),
a list (one of), or operators: ``in``, ``not_in``, ``min``, ``max``, ``matches``, ``not_matches``,
``in_list``, ``not_in_list``, ``exists``, ``all_of``. Strings compare case-insensitively; a list-valued
field (``technologies``) matches when any of its items does.

Every ``field: expected`` entry compiles to an *atom*: a test of that one field's value. The scope
records its atoms so the engine can memoise atom outcomes per distinct field value (see ``facts``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from operator import attrgetter
from typing import Any, NamedTuple

from crmbridge.model import Company, Person
from crmbridge.yamlconf import Locator, PathKey

Predicate = Callable[[Any], bool]
Getter = Callable[[Any], Any]
Test = Callable[[Any], bool]

OPERATORS = frozenset(
    {"in", "not_in", "equals", "min", "max", "matches", "not_matches", "in_list", "not_in_list", "exists",
     "all_of"}
)
_SCALARS = (str, int, float, bool)


class Facts:
    """What person-level predicates look at: the person, their company, and values derived once per score."""

    __slots__ = ("company", "email_domain", "has_company", "person", "persona")

    def __init__(self, person: Person, company: Company | None, persona: str | None = None) -> None:
        self.person = person
        self.has_company = company is not None
        # A blank company lets compiled getters read company fields without a None check on each one.
        self.company = company if company is not None else NO_COMPANY
        self.email_domain = email_domain(person.email)
        self.persona = persona


def email_domain(email: str | None) -> str | None:
    """The part after the ``@``, lower case; None without a usable address."""
    return email.rpartition("@")[2].lower() if email and "@" in email else None


NO_COMPANY = Company(source="", source_id="")

_PERSON_FIELDS = frozenset(Person.model_fields)
_COMPANY_FIELDS = frozenset(Company.model_fields)
_ACTIVITY_FIELDS = frozenset({"kind", "subject", "actor", "owner_id", "source"})
_LIST_FIELDS = frozenset({"technologies", "company_ids", "merged_ids"})
_DERIVED = {"person.email_domain": attrgetter("email_domain"), "person.persona": attrgetter("persona"),
            "company.exists": attrgetter("has_company")}
PERSONA_FIELD = "person.persona"
EMAIL_DOMAIN_FIELD = "person.email_domain"
DERIVED_FIELDS = frozenset(_DERIVED)


class Field(NamedTuple):
    """A compiled field reference: how to read it, and whether its values are scalars, lists or unknown."""

    name: str
    get: Getter
    shape: str  # "scalar", "list" or "any"
    attribute: str | None = None  # set when the field is a plain ``activity.attributes[key]``


class Atom(NamedTuple):
    """A test of one field's value; a rule's condition is logic over atoms."""

    field: Field
    test: Test


@dataclass(frozen=True)
class Scope:
    """Which record unqualified field names refer to, and how a field name becomes a getter.

    ``used`` collects the fields and ``atoms`` the atoms compiled in this scope; several scopes may share
    one ``atoms`` list so that all person-level rules of a model are memoised together.
    """

    default: str  # "person", "company" or "activity"
    lists: Mapping[str, frozenset[Any]]
    locator: Locator
    persona_allowed: bool = True
    used: dict[str, Field] = dc_field(default_factory=dict)
    atoms: list[Atom] = dc_field(default_factory=list)

    def field(self, name: str, path: PathKey) -> Field:
        found = self._activity_field(name) if self.default == "activity" else self._record_field(name, path)
        self.used.setdefault(found.name, found)
        return found

    def _record_field(self, name: str, path: PathKey) -> Field:
        entity, _, rest = name.partition(".")
        if entity not in ("person", "company") or not rest:
            entity, rest = self.default, name
        qualified = f"{entity}.{rest}"
        if qualified == PERSONA_FIELD and not self.persona_allowed:
            raise self.locator.error("persona rules cannot depend on the persona they assign", path)
        if qualified in _DERIVED:
            return Field(qualified, _DERIVED[qualified], "scalar")
        head, _, key = rest.partition(".")
        known = _PERSON_FIELDS if entity == "person" else _COMPANY_FIELDS
        if head in ("custom", "extra") and key:
            return Field(qualified, _nested(attrgetter(f"{entity}.{head}"), key.split(".")), "any")
        if head in known and not key:
            return Field(qualified, attrgetter(f"{entity}.{head}"), "list" if head in _LIST_FIELDS else "scalar")
        raise self.locator.error(f"unknown {entity} field {rest!r}", path)

    @staticmethod
    def _activity_field(name: str) -> Field:
        if name in _ACTIVITY_FIELDS:
            return Field(name, attrgetter(name), "scalar")
        parts = name.split(".")
        if parts[0] == "attributes" and len(parts) > 1:
            parts = parts[1:]
        return Field(".".join(parts), _nested(attrgetter("attributes"), parts), "any",
                     parts[0] if len(parts) == 1 else None)


def _nested(base: Getter, keys: list[str]) -> Getter:
    """A getter for ``base(x)[k1][k2]...`` that yields None as soon as a level is missing."""
    if len(keys) == 1:
        only = keys[0]
        return lambda x: base(x).get(only)

    def get(x: Any) -> Any:
        value = base(x)
        for key in keys:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    return get


def compile_condition(spec: Any, path: PathKey, scope: Scope) -> Predicate:
    """Compile a ``when``/``where`` mapping into one predicate; errors name the offending key."""
    if not isinstance(spec, Mapping) or not spec:
        raise scope.locator.error("a condition must be a non-empty mapping of field: expected value", path)
    parts = [_compile_entry(str(key), value, (*path, key), scope) for key, value in spec.items()]
    return _all(parts)


def _compile_entry(key: str, value: Any, path: PathKey, scope: Scope) -> Predicate:
    if key in ("any", "all"):
        if not isinstance(value, list) or not value:
            raise scope.locator.error(f"'{key}' takes a non-empty list of conditions", path)
        parts = [compile_condition(item, (*path, i), scope) for i, item in enumerate(value)]
        return _any(parts) if key == "any" else _all(parts)
    if key == "not":
        inner = compile_condition(value, path, scope)
        return lambda x: not inner(x)
    field = scope.field(key, path)
    test = _value_test(field, value, path, scope)
    scope.atoms.append(Atom(field, test))
    get = field.get
    return lambda x: test(get(x))


def _any(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda x: first(x) or second(x)

    def any_of(x: Any) -> bool:
        # Plain loops here and below: a generator per call costs more than the tests themselves.
        for part in parts:  # noqa: SIM110
            if part(x):
                return True
        return False

    return any_of


def _all(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda x: first(x) and second(x)

    def all_of(x: Any) -> bool:
        for part in parts:  # noqa: SIM110
            if not part(x):
                return False
        return True

    return all_of


def _value_test(field: Field, value: Any, path: PathKey, scope: Scope) -> Test:
    """One test of a field's value: a plain value or list means "one of"; a mapping lists operators."""
    if not isinstance(value, Mapping):
        return _one_of(field.shape, _scalars(value if isinstance(value, list) else [value], path, scope))
    if not value:
        raise scope.locator.error("an empty operator mapping matches nothing; name an operator", path)
    unknown = [k for k in value if k not in OPERATORS]
    if unknown:
        known = ", ".join(sorted(OPERATORS))
        raise scope.locator.error(f"unknown operator {unknown[0]!r} (known: {known})", (*path, unknown[0]))
    tests = [_operator(field.shape, str(op), arg, (*path, op), scope) for op, arg in value.items()]
    if len(tests) == 1:
        return tests[0]
    return lambda v: all(t(v) for t in tests)


def _operator(shape: str, op: str, arg: Any, path: PathKey, scope: Scope) -> Test:
    if op == "exists":
        if not isinstance(arg, bool):
            raise scope.locator.error("'exists' takes true or false", path)
        return _present if arg else (lambda v: not _present(v))
    if op in ("in", "equals", "not_in"):
        inside = _one_of(shape, _scalars(arg if isinstance(arg, list) else [arg], path, scope))
        return inside if op != "not_in" else (lambda v: not inside(v))
    if op in ("in_list", "not_in_list"):
        if arg not in scope.lists:
            known = ", ".join(sorted(scope.lists)) or "none defined"
            raise scope.locator.error(f"unknown list {arg!r} (lists: {known})", path)
        inside = _one_of(shape, scope.lists[arg])
        return inside if op == "in_list" else (lambda v: not inside(v))
    if op in ("matches", "not_matches"):
        found = _matches(shape, _regex(arg, path, scope))
        return found if op == "matches" else (lambda v: not found(v))
    if op == "all_of":
        wanted = _scalars(arg if isinstance(arg, list) else [arg], path, scope)
        return lambda v: _has_all(v, wanted)
    return _each(_bound(op, arg, path, scope))


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def normalise(value: Any) -> Any:
    """How values compare: strings case-insensitively (and trimmed), everything else as is."""
    return value.strip().casefold() if value.__class__ is str else value


def _scalars(values: list[Any], path: PathKey, scope: Scope) -> frozenset[Any]:
    out = set()
    for i, item in enumerate(values):
        if not isinstance(item, _SCALARS):
            raise scope.locator.error("expected a plain value (text, number, true/false)", (*path, i))
        out.add(normalise(item))
    return frozenset(out)


# The tests below run on every score that misses a memo: the usual shape (a scalar canonical field)
# is handled without the list and unknown-shape checks.

def _one_of(shape: str, allowed: frozenset[Any]) -> Test:
    if shape == "scalar":
        def scalar(v: Any) -> bool:
            if v.__class__ is str:
                return v.casefold() in allowed or v.strip().casefold() in allowed
            return v is not None and v in allowed
        return scalar

    def member(v: Any) -> bool:
        try:
            return normalise(v) in allowed
        except TypeError:  # a dict or other unhashable value in a custom field or attribute
            return False

    return _each(member)


def _matches(shape: str, search: Callable[[str], Any]) -> Test:
    def found(v: Any) -> bool:
        return v.__class__ is str and search(v) is not None

    return found if shape == "scalar" else _each(found)


def _each(test: Test) -> Test:
    """Lift a test of one value to a field's value: a list matches when any item does; None never."""

    def lifted(value: Any) -> bool:
        if value is None:
            return False
        if value.__class__ is list or value.__class__ is tuple:
            for item in value:  # noqa: SIM110
                if item is not None and test(item):
                    return True
            return False
        return test(value)

    return lifted


def _has_all(value: Any, wanted: frozenset[Any]) -> bool:
    if value is None:
        return False
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    return wanted <= {normalise(item) for item in items}


def _regex(arg: Any, path: PathKey, scope: Scope) -> Callable[[str], Any]:
    patterns = arg if isinstance(arg, list) else [arg]
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise scope.locator.error("'matches' takes a regular expression or a list of them", path)
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise scope.locator.error(f"invalid regular expression: {exc}",
                                      (*path, i) if isinstance(arg, list) else path) from None
    # One alternation instead of a loop: a single C-level search per value.
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE).search


def _bound(op: str, arg: Any, path: PathKey, scope: Scope) -> Test:
    if isinstance(arg, bool) or not isinstance(arg, int | float):
        raise scope.locator.error(f"'{op}' takes a number", path)
    limit = float(arg)
    if op == "min":
        return lambda v: (n := _number(v)) is not None and n >= limit
    return lambda v: (n := _number(v)) is not None and n <= limit


def _number(v: Any) -> float | None:
    if v.__class__ is int or v.__class__ is float:
        return v  # type: ignore[no-any-return]
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


__all__ = ["DERIVED_FIELDS", "EMAIL_DOMAIN_FIELD", "NO_COMPANY", "PERSONA_FIELD", "Atom", "Facts", "Field",
           "Predicate", "Scope", "compile_condition", "email_domain", "normalise"]
