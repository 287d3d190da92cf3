"""One identity across CRMs: which source records are the same person or company, and how they merge.

Matching keys: a person by normalised e-mail; a company by normalised domain (never a free-mail
domain), else by normalised name, and by name only when one side has no domain and the name is unique
in both CRMs. A canonical identity holds at most one record per source, and a record keeps its
identity when its e-mail later changes (identity follows the source id). ``match`` decides all this
over the keys of the records involved; the store only gathers them and applies the answer.

When the records of one identity disagree, a ``MergePolicy`` decides per field: the most recently
updated record wins (default), a source priority order, any-true for flags, or the most advanced
lifecycle stage. The merged ("golden") record lists every source id it was built from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from crmbridge.model import Company, LifecycleStage, Person, SourceRecord
from crmbridge.yamlconf import load_yaml

FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "hotmail.com", "hotmail.co.uk",
    "hotmail.de", "outlook.com", "live.com", "msn.com", "aol.com", "icloud.com", "me.com", "mac.com",
    "gmx.de", "gmx.net", "gmx.com", "web.de", "t-online.de", "freenet.de", "mail.com", "protonmail.com",
    "proton.me", "yandex.com", "yandex.ru", "mail.ru", "zoho.com", "qq.com", "163.com", "orange.fr",
    "free.fr", "laposte.net", "libero.it", "seznam.cz", "wp.pl", "o2.pl",
})

_LEGAL_SUFFIXES = frozenset({
    "inc", "incorporated", "llc", "ltd", "limited", "gmbh", "ag", "sa", "sas", "sarl", "bv", "nv", "plc", "co",
    "corp", "corporation", "company", "oy", "ab", "as", "aps", "srl", "spa", "kg", "se", "pty", "pte", "llp",
})


def company_domain_key(domain: str | None) -> str | None:
    """A domain fit for matching: free-mail domains say nothing about the company."""
    if not domain or domain in FREE_MAIL_DOMAINS:
        return None
    return domain


def company_name_key(name: str | None) -> str | None:
    """``"ACME, Inc."`` and ``"Acme Inc"`` → ``"acme"``: case, punctuation and legal form ignored."""
    if not name:
        return None
    words = re.sub(r"[^\w\s]", " ", name.lower()).split()
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    key = " ".join(words)
    return key or None


@dataclass(frozen=True, slots=True)
class MatchKeys:
    """What matching reads of a record: its source id and its normalised keys."""

    source: str
    source_id: str
    email: str | None = None  # a person's
    domain: str | None = None  # a company's, never a free-mail domain
    name: str | None = None  # a company's normalised name

    @classmethod
    def of(cls, record: SourceRecord) -> MatchKeys:
        if isinstance(record, Person):
            return cls(record.source, record.source_id, email=record.email)
        if isinstance(record, Company):
            return cls(record.source, record.source_id, domain=company_domain_key(record.domain),
                       name=company_name_key(record.name))
        return cls(record.source, record.source_id)

    @property
    def key(self) -> str | None:
        """The strong key: the e-mail of a person, the domain of a company."""
        return self.email or self.domain

    @property
    def ref(self) -> tuple[str, str]:
        return (self.source, self.source_id)


@dataclass(frozen=True, slots=True)
class Member:
    """A live record that already belongs to a canonical identity."""

    canonical_id: int
    keys: MatchKeys


@dataclass(frozen=True, slots=True)
class NameConflict:
    """Companies the name fallback would link but may not: the name is not unique on some side."""

    name: str
    records: tuple[MatchKeys, ...]  # every live record with the name, by source and id


@dataclass
class Matching:
    """What ``match`` decided: the identity each pending record joins (None: a new one), and the
    members that must leave their identity for one of their own.

    A detached member stays a candidate in the same decision: a join to ``-n`` means the new
    identity of ``detach[n - 1]``.
    """

    joins: dict[str, int | None] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)  # pending source id -> "key", "name" or "new"
    detach: list[tuple[str, str]] = field(default_factory=list)

    def set_apart(self, groups: dict[int, list[MatchKeys]], member: MatchKeys) -> None:
        """``member`` leaves its identity for a new one of its own, still a candidate for what follows."""
        _leave(groups, member.ref)
        self.detach.append(member.ref)
        groups[-len(self.detach)] = [member]


def _held_by_name(member: MatchKeys, group: Sequence[MatchKeys]) -> bool:
    """A company in its identity only through its name: no other member shares its domain."""
    others = [m for m in group if m.ref != member.ref]
    return bool(member.name) and not any(member.domain and m.domain == member.domain for m in others) and any(
        m.name == member.name for m in others)


def _name_unique(name: str, sources: Iterable[str], counts: Mapping[tuple[str, str], int]) -> bool:
    return all(counts.get((source, name), 0) == 1 for source in sources)


def _splits(groups: Mapping[int, list[MatchKeys]], counts: Mapping[tuple[str, str], int]) -> list[MatchKeys]:
    """Members linked by a name that is no longer unique on some side: the link was a guess."""
    out: list[MatchKeys] = []
    for _, group in sorted(groups.items()):
        by_name = [m for m in group if _held_by_name(m, group)]
        if by_name and not all(_name_unique(m.name or "", {m.source}, counts) for m in by_name):
            keep = min(m.ref for m in group)
            out.extend(sorted((m for m in by_name if m.ref != keep), key=lambda m: m.ref))
    return out


def match(pending: Sequence[MatchKeys], members: Sequence[Member], name_counts: Mapping[tuple[str, str], int]
          ) -> Matching:
    """Which identity each pending record joins, whatever order the CRMs were read in.

    ``members``: every live member of the identities that share a key with a pending or changed record;
    ``name_counts``: live records per (source, name key) for those names. A strong key (e-mail, domain)
    links to the candidate whose record sorts first, and may take a place held only by a name. The name
    fallback links only when one side has no domain and the name is unique on both sides; otherwise
    the records stay apart (``name_conflicts`` lists them for review). A name link that stopped being
    unique is undone.
    """
    groups: dict[int, list[MatchKeys]] = {}
    for m in members:
        groups.setdefault(m.canonical_id, []).append(m.keys)
    result = Matching()
    for member in _splits(groups, name_counts):
        result.set_apart(groups, member)
    for record in sorted(pending, key=lambda r: r.ref):
        cid, rule = _by_key(record, groups, result), "key"
        if cid is None:
            cid, rule = _by_name(record, groups, name_counts), "name"
        result.joins[record.source_id] = cid
        result.rules[record.source_id] = rule if cid is not None else "new"
        if cid is not None:
            groups[cid].append(record)
    return result


def _leave(groups: dict[int, list[MatchKeys]], ref: tuple[str, str]) -> None:
    for group in groups.values():
        group[:] = [m for m in group if m.ref != ref]


def _by_key(record: MatchKeys, groups: dict[int, list[MatchKeys]], result: Matching) -> int | None:
    if not record.key:
        return None
    found: list[tuple[tuple[str, str], int]] = []
    for cid, group in groups.items():
        mine = [m for m in group if m.source == record.source]
        if mine and not all(_held_by_name(m, group) for m in mine):
            continue  # an identity holds one record per source
        found += [(m.ref, cid) for m in group if m.source != record.source and m.key == record.key]
    if not found:
        return None
    cid = min(found)[1]
    for m in [m for m in groups[cid] if m.source == record.source]:
        # A place held only by a name goes to the record with the same domain.
        if m.source_id in result.joins:  # linked earlier in this very batch: not stored yet
            result.joins[m.source_id], result.rules[m.source_id] = None, "new"
            _leave(groups, m.ref)
        else:
            result.set_apart(groups, m)
    return cid


def _by_name(record: MatchKeys, groups: Mapping[int, list[MatchKeys]], counts: Mapping[tuple[str, str], int]
             ) -> int | None:
    if not record.name or not _name_unique(record.name, {record.source}, counts):
        return None
    found = {cid: [m for m in group if m.source != record.source and m.name == record.name]
             for cid, group in groups.items()}
    found = {cid: named for cid, named in found.items() if named}
    if len(found) != 1:
        return None
    ((cid, named),) = found.items()
    if any(m.source == record.source for m in groups[cid]):
        return None
    if not _name_unique(record.name, {m.source for m in named}, counts):
        return None
    if record.domain and any(m.domain for m in named):
        return None  # both sides have a domain, and they differ: two companies
    return cid


def name_conflicts(records: Sequence[tuple[MatchKeys, int]]) -> list[NameConflict]:
    """Names the fallback refused: a company alone in its identity, another CRM holding the name, one
    side without a domain, and the name not unique on some side. ``records``: live companies with
    the names in question, each with the number of members of its identity."""
    by_name: dict[str, list[tuple[MatchKeys, int]]] = {}
    for keys, size in records:
        if keys.name:
            by_name.setdefault(keys.name, []).append((keys, size))
    out = []
    for name, found in sorted(by_name.items()):
        counts: dict[str, int] = {}
        for keys, _ in found:
            counts[keys.source] = counts.get(keys.source, 0) + 1
        alone = [k for k, size in found if size == 1]
        refused = any(a.source != b.source and (not a.domain or not b.domain)
                      and (counts[a.source] > 1 or counts[b.source] > 1) for a in alone for b, _ in found)
        if refused:
            out.append(NameConflict(name, tuple(sorted((k for k, _ in found), key=lambda k: k.ref))))
    return out


STRATEGIES = ("most_recent", "priority", "any", "max_stage")


@dataclass(frozen=True)
class FieldRule:
    strategy: str = "most_recent"
    order: tuple[str, ...] = ()  # sources, first wins (strategy "priority")


@dataclass(frozen=True)
class MergePolicy:
    """Per entity and field, how conflicting values of one identity are settled."""

    default: FieldRule = FieldRule()
    fields: Mapping[str, Mapping[str, FieldRule]] = field(default_factory=dict)

    def rule(self, entity: str, name: str) -> FieldRule:
        return self.fields.get(entity, {}).get(name, self.default)

    @classmethod
    def load(cls, path: str | Path) -> MergePolicy:
        data, locator = load_yaml(path)
        data = data or {}
        if not isinstance(data, dict):
            raise locator.error("a merge policy is a table with 'default' and per-entity fields", ())
        default = _rule(data.get("default", {"strategy": "most_recent"}), ("default",), locator)
        fields: dict[str, dict[str, FieldRule]] = {}
        for entity, table in (data.get("fields") or {}).items():
            if entity not in ("person", "company"):
                raise locator.error("fields are set per entity: person or company", ("fields", entity))
            fields[entity] = {str(name): _rule(spec, ("fields", entity, name), locator)
                              for name, spec in (table or {}).items()}
        return cls(default, fields)


def _rule(spec: Any, path: tuple, locator: Any) -> FieldRule:
    if isinstance(spec, str):
        spec = {"strategy": spec}
    if not isinstance(spec, dict) or spec.get("strategy") not in STRATEGIES:
        raise locator.error(f"strategy must be one of: {', '.join(STRATEGIES)}", (*path, "strategy"))
    order = spec.get("order") or ()
    if spec["strategy"] == "priority" and not order:
        raise locator.error("strategy 'priority' needs an 'order' of sources", (*path, "order"))
    return FieldRule(spec["strategy"], tuple(str(s) for s in order))


# Fields that are per-source references or bookkeeping, never merged as values.
_NOT_MERGED = {"source", "source_id", "source_ids", "created_at", "updated_at", "archived", "merged_into",
               "merged_ids", "custom", "extra", "company_ids", "owner_id"}
_KEPT = {"source", "source_id", "source_ids", "created_at", "updated_at", "custom"}  # set by merge itself
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@cache
def _resets(cls: type[SourceRecord]) -> tuple[tuple[str, Callable[[], Any]], ...]:
    """Per model: each field merging leaves at its default, with a cheap way to make that default."""
    out = []
    for name in sorted(_NOT_MERGED - _KEPT):
        info = cls.model_fields.get(name)
        if info is None:
            continue
        factory = info.default_factory
        out.append((name, factory if factory is not None else (lambda value=info.default: value)))
    return tuple(out)


def _pick(values: Sequence[tuple[SourceRecord, Any]], rule: FieldRule) -> Any:
    present = [(r, v) for r, v in values if v not in (None, "", [], {})]
    if not present:
        return None
    if rule.strategy == "any":
        return any(bool(v) for _, v in present)
    if rule.strategy == "max_stage":
        return max((v for _, v in present), key=lambda s: LifecycleStage(s).rank)
    if rule.strategy == "priority":
        rank = {s: i for i, s in enumerate(rule.order)}
        return min(present, key=lambda rv: rank.get(rv[0].source, len(rank)))[1]
    return max(present, key=lambda rv: rv[0].updated_at or _EPOCH)[1]


def merge(canonical_id: int, records: Sequence[SourceRecord], policy: MergePolicy) -> SourceRecord:
    """The golden record of one identity: each field settled by the policy, every source id kept."""
    live = [r for r in records if not r.archived] or list(records)
    if len(live) == 1:  # one CRM knows this identity: nothing to settle (the common case)
        only = live[0]
        reset = {name: factory() for name, factory in _resets(type(only))}
        return only.model_copy(update={**reset, "source": "canonical", "source_id": str(canonical_id),
                                       "source_ids": {only.source: only.source_id}})
    newest = max(live, key=lambda r: r.updated_at or _EPOCH)
    cls = type(newest)
    entity = newest.entity.value
    data: dict[str, Any] = {}
    for name in cls.model_fields:
        if name in _NOT_MERGED:
            continue
        data[name] = _pick([(r, getattr(r, name)) for r in live], policy.rule(entity, name))
    custom: dict[str, Any] = {}
    for key in sorted({k for r in live for k in r.custom}):
        value = _pick([(r, r.custom.get(key)) for r in live], policy.rule(entity, f"custom.{key}"))
        if value is not None:
            custom[key] = value
    data = {k: v for k, v in data.items() if v is not None}
    return cls.model_validate({
        **data, "source": "canonical", "source_id": str(canonical_id), "custom": custom,
        "source_ids": {r.source: r.source_id for r in sorted(live, key=lambda r: r.source)},
        "updated_at": max((r.updated_at for r in live if r.updated_at), default=None),
        "created_at": min((r.created_at for r in live if r.created_at), default=None),
    })


def load_policy(path: Path) -> MergePolicy:
    """The merge policy file, or the default (most recent wins) when there is none."""
    return MergePolicy.load(path) if path.exists() else MergePolicy()
