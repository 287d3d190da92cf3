"""One identity across CRMs: which source records are the same person or company, and how they merge.

Matching keys: a person by normalised e-mail; a company by normalised domain (never a free-mail
domain), else by normalised name. A canonical identity holds at most one record per source, and a
record keeps its identity when its e-mail later changes (identity follows the source id).

When the records of one identity disagree, a ``MergePolicy`` decides per field: the most recently
updated record wins (default), a source priority order, any-true for flags, or the most advanced
lifecycle stage. The merged ("golden") record lists every source id it was built from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from crmbridge.model import LifecycleStage, SourceRecord
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
