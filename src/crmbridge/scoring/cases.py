"""Persona test cases: imagined profiles with an expected ranking and stages, checked against a model.

A case file lists personas (person, company, activities with ages such as ``3d`` or ``2w``) and what
the team expects: ``expect_order`` (highest score first) and per-persona ``expect`` (stage, score
bounds, disqualified, hand-raise, persona). ``run_cases`` scores them and reports each check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from crmbridge.model import Activity, ActivityKind, ActorKind, Company, LifecycleStage, Person
from crmbridge.scoring.engine import Profile, Scorer
from crmbridge.scoring.model import Duration, RuleId, ScoringModel
from crmbridge.scoring.result import PersonScore
from crmbridge.yamlconf import Locator, PathKey, load_yaml, parse_yaml, validate

_SOURCE = "cases"


class _Case(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActivityCase(BaseModel):
    """One activity (or ``count`` alike); keys other than these become the activity's attributes."""

    model_config = ConfigDict(extra="allow")

    kind: ActivityKind
    age: Duration | None = None
    at: AwareDatetime | None = None
    count: int = Field(default=1, ge=1, le=1000)
    actor: ActorKind | None = None
    subject: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


def _as_list(value: Any) -> Any:
    return value if value is None or isinstance(value, list) else [value]


class Expectation(_Case):
    stage: Annotated[list[LifecycleStage] | None, BeforeValidator(_as_list)] = None
    min_score: float | None = None
    max_score: float | None = None
    disqualified: bool | None = None
    hand_raise: bool | None = None
    persona: str | None = None


class PersonaCase(_Case):
    id: RuleId
    name: str | None = None
    person: dict[str, Any] = Field(default_factory=dict)
    company: dict[str, Any] | None = None
    activities: list[ActivityCase] = Field(default_factory=list)
    expect: Expectation = Expectation()


class CaseFile(_Case):
    description: str | None = None
    as_of: AwareDatetime | None = None
    personas: list[PersonaCase] = Field(min_length=1)
    expect_order: list[str] = Field(default_factory=list, description="persona ids, highest score first")


@dataclass(frozen=True, slots=True)
class PersonaResult:
    id: str
    name: str
    score: PersonScore


@dataclass(frozen=True, slots=True)
class Check:
    subject: str
    expectation: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class CaseReport:
    model: str
    cases: str
    as_of: datetime
    personas: tuple[PersonaResult, ...]
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "cases": self.cases, "as_of": self.as_of.isoformat(), "passed": self.passed,
            "personas": [{"id": p.id, "name": p.name, **p.score.to_dict()} for p in self.personas],
            "checks": [{"subject": c.subject, "expectation": c.expectation, "passed": c.passed,
                        "detail": c.detail} for c in self.checks],
        }


def run_cases(model: ScoringModel, cases_path: str | Path, as_of: datetime | None = None, *,
              default_as_of: datetime | None = None) -> CaseReport:
    """Score every persona in the case file and check the expectations.

    Ages count back from ``as_of``; without it, from the file's ``as_of``, then ``default_as_of``.
    """
    data, locator = load_yaml(cases_path)
    return run_case_data(model, data, locator, as_of, default_as_of=default_as_of)


def run_case_text(model: ScoringModel, text: str, as_of: datetime | None = None, *,
                  name: str = "<cases>") -> CaseReport:
    data, locator = parse_yaml(text, Locator(name))
    return run_case_data(model, data, locator, as_of)


def run_case_data(model: ScoringModel, data: Any, locator: Locator, as_of: datetime | None = None, *,
                  default_as_of: datetime | None = None) -> CaseReport:
    if not isinstance(data, dict):
        raise locator.error("a case file is a mapping with 'personas' (and 'expect_order')", ())
    spec = validate(CaseFile, data, locator)
    moment = as_of or spec.as_of or default_as_of
    if moment is None:
        raise locator.error("no moment to measure ages from: set as_of in the file or pass one", ())
    _check_ids(spec, locator)
    scorer = Scorer(model)
    results = tuple(
        PersonaResult(case.id, case.name or case.id, scorer.score(build_profile(case, i, moment, locator), moment))
        for i, case in enumerate(spec.personas)
    )
    checks = [c for case, result in zip(spec.personas, results, strict=True)
              for c in _expectations(case.expect, result)]
    checks += _order_checks(spec.expect_order, {r.id: r for r in results})
    return CaseReport(model.name, locator.file, moment, results, tuple(checks))


def _check_ids(spec: CaseFile, locator: Locator) -> None:
    seen: set[str] = set()
    for i, case in enumerate(spec.personas):
        if case.id in seen:
            raise locator.error(f"persona id {case.id!r} is used twice", ("personas", i, "id"))
        seen.add(case.id)
    for i, pid in enumerate(spec.expect_order):
        if pid not in seen:
            raise locator.error(f"expect_order names unknown persona {pid!r}", ("expect_order", i))
    if len(set(spec.expect_order)) != len(spec.expect_order):
        raise locator.error("expect_order names a persona twice", ("expect_order",))


def build_profile(case: PersonaCase, index: int, as_of: datetime, locator: Locator) -> Profile:
    """Turn a persona into canonical records; bad fields are reported at their line in the case file."""
    base: PathKey = ("personas", index)
    person = validate(Person, {"source": _SOURCE, "source_id": case.id, **case.person}, locator,
                      (*base, "person"))
    company = None
    if case.company is not None:
        company = validate(Company, {"source": _SOURCE, "source_id": f"{case.id}-company", **case.company},
                           locator, (*base, "company"))
    activities = []
    for j, act in enumerate(case.activities):
        at = _when(act, as_of, locator, (*base, "activities", j))
        attributes = {**act.attributes, **(act.model_extra or {})}
        activities += [
            Activity(source=_SOURCE, source_id=f"{case.id}-{j}-{k}", kind=act.kind, occurred_at=at,
                     actor=act.actor, subject=act.subject, attributes=attributes, person_ids=[case.id])
            for k in range(act.count)
        ]
    return Profile(person, company, tuple(activities))


def _when(act: ActivityCase, as_of: datetime, locator: Locator, path: PathKey) -> datetime:
    if (act.age is None) == (act.at is None):
        raise locator.error("give an activity either 'age' (e.g. 3d, 2w) or 'at' (a timestamp)", path)
    return as_of - act.age if act.age is not None else act.at  # type: ignore[return-value]


def _expectations(expect: Expectation, result: PersonaResult) -> list[Check]:
    s = result.score
    checks = []
    if expect.stage is not None:
        wanted = expect.stage
        names = " or ".join(w.value for w in wanted)
        checks.append(Check(result.id, f"stage is {names}", s.stage in wanted, f"stage {s.stage.value}"))
    if expect.min_score is not None:
        checks.append(Check(result.id, f"score >= {expect.min_score:g}", s.total >= expect.min_score,
                            f"score {s.total:.1f}"))
    if expect.max_score is not None:
        checks.append(Check(result.id, f"score <= {expect.max_score:g}", s.total <= expect.max_score,
                            f"score {s.total:.1f}"))
    if expect.disqualified is not None:
        said = "disqualified" if expect.disqualified else "not disqualified"
        checks.append(Check(result.id, said, (s.disqualified is not None) == expect.disqualified,
                            f"disqualified: {s.disqualified}" if s.disqualified else "not disqualified"))
    if expect.hand_raise is not None:
        said = "raised a hand" if expect.hand_raise else "raised no hand"
        checks.append(Check(result.id, said, s.hand_raise == expect.hand_raise, f"hand_raise {s.hand_raise}"))
    if expect.persona is not None:
        checks.append(Check(result.id, f"persona is {expect.persona}", s.persona == expect.persona,
                            f"persona {s.persona}"))
    return checks


def _order_checks(order: list[str], results: dict[str, PersonaResult]) -> list[Check]:
    checks = []
    for higher, lower in pairwise(order):
        a, b = results[higher].score.total, results[lower].score.total
        checks.append(Check("order", f"{higher} ranks above {lower}", a > b, f"{a:.1f} vs {b:.1f}"))
    return checks

