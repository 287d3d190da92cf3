"""Memoised person-level rule outcomes, so a re-score of millions costs a few dictionary look-ups each.

Every person-level condition is logic over atoms, and an atom tests a single field. ``AtomMask``
remembers which atoms hold for each distinct value of a record's fields, and ORs them into one
integer: two people with the same mask get the same persona, fit rules and disqualifier, which the
engine memoises per mask. Colleagues share a company, and titles repeat, so most look-ups hit.
Memos are bounded (a full one starts over) and only ever skip work; they never change a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from crmbridge.scoring.conditions import (
    DERIVED_FIELDS,
    EMAIL_DOMAIN_FIELD,
    NO_COMPANY,
    PERSONA_FIELD,
    Atom,
    Facts,
    Field,
    Getter,
    Test,
    email_domain,
)

MEMO_LIMIT = 50_000


def remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    """Store in a bounded memo; a full memo starts over, so it follows the data being scored now."""
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value


class _FieldAtoms:
    """The atoms of one field, each with its bit, and a memo from field value to the bits that hold."""

    __slots__ = ("get", "memo", "tests")

    def __init__(self, get: Getter, tests: list[tuple[int, Test]]) -> None:
        self.get = get
        self.tests = tuple(tests)
        self.memo: dict[Any, int] = {}

    def bits(self, value: Any) -> int:
        cls = value.__class__
        # Keyed with the type: 1 and True are equal dict keys but not equal to every test.
        key = value if cls is str else (cls, tuple(value) if cls is list else value)
        try:
            return self.memo[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value (a dict in a custom field): test it directly
            return self._test(value)
        bits = self._test(value)
        remember(self.memo, key, bits)
        return bits

    def _test(self, value: Any) -> int:
        out = 0
        for bit, test in self.tests:
            if test(value):
                out |= bit
        return out


class _RecordAtoms:
    """All canonical fields read from one record (the person or the company), memoised as a whole.

    The memo key is the tuple of those fields' values, list fields (technologies) made tuples.
    """

    __slots__ = ("fields", "lists", "memo", "values")

    def __init__(self, fields: list[tuple[str, Field, _FieldAtoms]]) -> None:
        getter = attrgetter(*[name for name, _, _ in fields])
        # attrgetter of a single name returns the bare value, not a 1-tuple
        self.values = getter if len(fields) > 1 else (lambda r: (getter(r),))
        self.fields = tuple(atoms for _, _, atoms in fields)
        self.lists = tuple(i for i, (_, field, _) in enumerate(fields) if field.shape == "list")
        self.memo: dict[tuple[Any, ...], int] = {}

    def bits(self, record: Any) -> int:
        values = self.values(record)
        if self.lists:
            as_list = list(values)
            for i in self.lists:
                if as_list[i] is not None:
                    as_list[i] = tuple(as_list[i])
            values = tuple(as_list)
        try:
            return self.memo[values]
        except KeyError:
            bits = 0
            for field, value in zip(self.fields, values, strict=True):
                bits |= field.bits(value)
            remember(self.memo, values, bits)
            return bits


class AtomMask:
    """Computes the atom mask of a person and their company (``NO_COMPANY`` when they have none).

    Persona atoms are left out, being a function of the others. Fields other than the records' own and
    the e-mail domain (custom fields, ``company.exists``) are read from a ``Facts`` built only for them.
    """

    def __init__(self, atoms: Sequence[Atom]) -> None:
        by_field: dict[str, tuple[Field, list[tuple[int, Test]]]] = {}
        for i, atom in enumerate(atoms):
            if atom.field.name != PERSONA_FIELD:
                by_field.setdefault(atom.field.name, (atom.field, []))[1].append((1 << i, atom.test))
        records: dict[str, list[tuple[str, Field, _FieldAtoms]]] = {"person": [], "company": []}
        self._domain: _FieldAtoms | None = None
        others: list[_FieldAtoms] = []
        for field, tests in by_field.values():
            entity, _, name = field.name.partition(".")
            field_atoms = _FieldAtoms(field.get, tests)
            if field.name == EMAIL_DOMAIN_FIELD:
                self._domain = field_atoms
            elif field.shape != "any" and field.name not in DERIVED_FIELDS:
                records[entity].append((name, field, field_atoms))
            else:
                others.append(field_atoms)
        self._person, self._company = (
            _RecordAtoms(found) if found else None for found in (records["person"], records["company"]))
        self._others = tuple(others)

    def __call__(self, person: Any, company: Any) -> int:
        mask = 0
        if self._person is not None:
            mask |= self._person.bits(person)
        if self._company is not None:
            mask |= self._company.bits(company if company is not None else NO_COMPANY)
        if self._domain is not None:
            mask |= self._domain.bits(email_domain(person.email))
        if self._others:
            facts = Facts(person, company)
            for field in self._others:
                mask |= field.bits(field.get(facts))
        return mask
