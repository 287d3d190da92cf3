"""What a persona case may expect of a stage, and the rankings a case file asks for.

A stage expectation reads as YAML says it: ``stage: sql``, any of a list (``stage: [lead, mql]``) or
anything but (``stage: {not: sql}``). Rankings are one list of persona ids, several lists, or lists by
name. Both are checked before anything is scored, so a typo or an expectation that can never hold
is an error at its file, line and key rather than a failure that looks like the model's fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmbridge.model import LifecycleStage
from crmbridge.yamlconf import Locator, PathKey

_STAGE_ORDER = {stage: i for i, stage in enumerate(LifecycleStage)}
_SHAPE = "expected a stage, a list of stages (any of them), or {not: stage or list}"


@dataclass(frozen=True, slots=True)
class StageSet:
    """The stages an expectation accepts: those named, or with ``negated`` all but those named."""

    stages: frozenset[LifecycleStage]
    negated: bool = False

    def allows(self, stage: LifecycleStage) -> bool:
        return (stage in self.stages) != self.negated

    @property
    def allowed(self) -> frozenset[LifecycleStage]:
        return frozenset(s for s in LifecycleStage if self.allows(s))

    @property
    def text(self) -> str:
        names = " or ".join(s.value for s in sorted(self.stages, key=_STAGE_ORDER.__getitem__))
        return f"not {names}" if self.negated else names


def parse_stage_set(value: Any) -> StageSet | None:
    """A pydantic validator: ``sql``, ``[lead, mql]`` or ``{not: sql}`` (any case) to a ``StageSet``."""
    if value is None or isinstance(value, StageSet):
        return value
    if isinstance(value, dict):
        if set(value) != {"not"}:
            raise ValueError(f"{_SHAPE}; a mapping takes only 'not'")
        return StageSet(_stages(value["not"]), negated=True)
    return StageSet(_stages(value))


def _stages(value: Any) -> frozenset[LifecycleStage]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError(f"{_SHAPE}; the list is empty")
    known = {s.value: s for s in LifecycleStage}
    found = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(_SHAPE)
        stage = known.get(item.strip().lower())
        if stage is None:
            raise ValueError(f"unknown stage {item!r} (known: {', '.join(known)})")
        found.add(stage)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Chain:
    """One ranking: persona ids, highest score first. ``name`` labels its checks when there are several."""

    name: str | None
    ids: tuple[str, ...]

    @property
    def subject(self) -> str:
        return "order" if self.name is None else f"order {self.name}"


def parse_chains(value: Any, known: set[str], locator: Locator) -> list[Chain]:
    """``expect_order`` as rankings: ``[a, b]``, ``[[a, b], [c, d]]`` or ``{name: [a, b], ...}``."""
    base: PathKey = ("expect_order",)
    if value is None or value == []:
        return []
    if isinstance(value, dict):
        return [_chain(str(name), ids, (*base, name), known, locator) for name, ids in value.items()]
    if not isinstance(value, list):
        raise locator.error("expect_order is a list of persona ids, a list of such lists, or lists by name", base)
    if all(isinstance(item, str) for item in value):
        return [_chain(None, value, base, known, locator)]
    for i, item in enumerate(value):
        if not isinstance(item, list):
            raise locator.error("several rankings: make every item a list of persona ids", (*base, i))
    return [_chain(str(i + 1), ids, (*base, i), known, locator) for i, ids in enumerate(value)]


def _chain(name: str | None, ids: Any, path: PathKey, known: set[str], locator: Locator) -> Chain:
    if not isinstance(ids, list) or len(ids) < 2:
        raise locator.error("a ranking is a list of at least two persona ids, highest score first", path)
    seen: set[str] = set()
    for j, pid in enumerate(ids):
        if not isinstance(pid, str):
            raise locator.error("expected a persona id", (*path, j))
        if pid not in known:
            raise locator.error(f"names unknown persona {pid!r}", (*path, j))
        if pid in seen:
            raise locator.error(f"names persona {pid!r} twice in one ranking", (*path, j))
        seen.add(pid)
    return Chain(name, tuple(ids))


def stage_list(stages: frozenset[LifecycleStage]) -> str:
    """``lead, mql or sql``: stages in funnel order, for messages."""
    names = [s.value for s in sorted(stages, key=_STAGE_ORDER.__getitem__)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
