"""Persona test cases: imagined profiles with an expected ranking and stages, checked against a model.

A case file lists personas (person, company, activities with ages such as ``3d`` or ``2w``) and what
the team expects: ``expect_order`` (one ranking or several, highest score first) and per-persona
``expect``: ``stage`` (after the lifecycle policy, from the persona's ``person.lifecycle_stage``),
``proposed`` (the model's own proposal), score bounds, disqualified, hand-raise, persona. ``run_cases``
scores them and reports each check; an expectation that can never hold is an error before scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainValidator

from crmbridge.errors import CrmbridgeError
from crmbridge.model import Activity, ActivityKind, ActorKind, Company, LifecycleStage, Person
from crmbridge.scoring.engine import Profile, Scorer, held_back
from crmbridge.scoring.expect import Chain, StageSet, parse_chains, parse_stage_set, stage_list
from crmbridge.scoring.lifecycle import apply_lifecycle_policy, lifecycle_note, reachable_stages
from crmbridge.scoring.model import Duration, RuleId, ScoringModel
from crmbridge.scoring.result import PersonScore
from crmbridge.yamlconf import Locator, PathKey, load_yaml, parse_yaml, validate

_SOURCE = "cases"

Stages = Annotated[StageSet | None, PlainValidator(parse_stage_set)]


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


class Moment(_Case):
    """When something happened: an ``age`` before the case file's moment, or an absolute ``at``."""

    age: Duration | None = None
    at: AwareDatetime | None = None


class Expectation(_Case):
    stage: Stages = Field(default=None, description="the stage after the lifecycle policy")
    proposed: Stages = Field(default=None, description="the stage the model proposes, before the policy")
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
    rejected: Moment | None = Field(default=None, description="when sales rejected the persona as an SQL")
    expect: Expectation = Expectation()


class CaseFile(_Case):
    description: str | None = None
    as_of: AwareDatetime | None = None
    personas: list[PersonaCase] = Field(min_length=1)
    expect_order: Any = Field(default_factory=list, description="persona ids, highest score first; or several "
                              "such lists, or lists by name")


@dataclass(frozen=True, slots=True)
class PersonaResult:
    """A persona's score, the stage it ends with after the lifecycle policy, and why it stopped there."""

    id: str
    name: str
    score: PersonScore
    current: LifecycleStage | None = None
    stage: LifecycleStage | None = None  # after the lifecycle policy; None reads as the proposal
    lifecycle: str | None = None  # what the policy did to the proposal, in words
    held: str | None = None  # which fit rule kept the persona from SQL, in words

    @property
    def final(self) -> LifecycleStage:
        return self.stage or self.score.stage

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(n for n in (self.held, self.lifecycle) if n)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, **self.score.to_dict(),
                "current_stage": self.current.value if self.current else None, "stage": self.final.value,
                "proposed": self.score.stage.value, "held_back": self.held, "lifecycle": self.lifecycle}


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
    warnings: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def persona(self, wanted: str) -> PersonaResult:
        """A persona by id, name or e-mail (any case): what ``score explain --cases`` looks up."""
        key = _folded(wanted)
        for p in self.personas:
            if key in (_folded(p.id), _folded(p.name), _folded(p.score.email or "")):
                return p
        known = ", ".join(p.id for p in self.personas)
        raise CrmbridgeError(f"no persona {wanted!r} in {self.cases} (personas: {known})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "cases": self.cases, "as_of": self.as_of.isoformat(), "passed": self.passed,
            "personas": [p.to_dict() for p in self.personas],
            "checks": [{"subject": c.subject, "expectation": c.expectation, "passed": c.passed,
                        "detail": c.detail} for c in self.checks],
            "warnings": list(self.warnings),
        }


def _folded(text: str) -> str:
    """Case, spaces and ``_``/``-`` do not matter when a persona is looked up: ``Free mail`` finds ``free_mail``."""
    return " ".join(text.replace("_", " ").replace("-", " ").lower().split())


def run_cases(model: ScoringModel, cases_path: str | Path, as_of: datetime | None = None, *,
              default_as_of: datetime | None = None, strict: bool = True) -> CaseReport:
    """Score every persona in the case file and check the expectations.

    Ages count back from ``as_of``; without it, from the file's ``as_of``, then ``default_as_of``.
    ``strict`` (the default) refuses expectations that can never hold; explaining a persona skips that.
    """
    data, locator = load_yaml(cases_path)
    return run_case_data(model, data, locator, as_of, default_as_of=default_as_of, strict=strict)


def run_case_text(model: ScoringModel, text: str, as_of: datetime | None = None, *,
                  name: str = "<cases>") -> CaseReport:
    data, locator = parse_yaml(text, Locator(name))
    return run_case_data(model, data, locator, as_of)


def run_case_data(model: ScoringModel, data: Any, locator: Locator, as_of: datetime | None = None, *,
                  default_as_of: datetime | None = None, strict: bool = True) -> CaseReport:
    if not isinstance(data, dict):
        raise locator.error("a case file is a mapping with 'personas' (and 'expect_order')", ())
    spec = validate(CaseFile, data, locator)
    moment = as_of or spec.as_of or default_as_of
    if moment is None:
        raise locator.error("no moment to measure ages from: set as_of in the file or pass one", ())
    chains = _check_ids(spec, locator)
    profiles = [build_profile(case, i, moment, locator) for i, case in enumerate(spec.personas)]
    rejected = [_rejected_at(case, i, moment, locator) for i, case in enumerate(spec.personas)]
    warnings: list[str] = []
    if strict:
        for i, (case, profile) in enumerate(zip(spec.personas, profiles, strict=True)):
            warnings += _check_possible(model, case, profile.person.lifecycle_stage, rejected[i], locator, i)
    scorer = Scorer(model)
    results = tuple(persona_result(model, case.id, case.name or case.id, scorer.score(profile, moment),
                                   profile.person.lifecycle_stage, when)
                    for case, profile, when in zip(spec.personas, profiles, rejected, strict=True))
    checks = [c for case, result in zip(spec.personas, results, strict=True)
              for c in _expectations(case.expect, result)]
    by_id = {r.id: r for r in results}
    checks += [c for chain in chains for c in _order_checks(chain, by_id)]
    return CaseReport(model.name, locator.file, moment, results, tuple(checks), tuple(warnings))


def persona_result(model: ScoringModel, pid: str, name: str, score: PersonScore, current: LifecycleStage | None,
                   rejected_at: datetime | None = None) -> PersonaResult:
    """A score with the stage the lifecycle policy gives it from ``current``, and why it stopped there."""
    policy = model.lifecycle_policy
    disqualified, engaged = score.disqualified is not None, score.last_engaged_at
    stage = apply_lifecycle_policy(current, score.stage, policy, disqualified=disqualified, rejected_at=rejected_at,
                                   last_engaged_at=engaged)
    note = lifecycle_note(current, score.stage, policy, disqualified=disqualified, rejected_at=rejected_at,
                          last_engaged_at=engaged)
    return PersonaResult(pid, name, score, current, stage, note, held_back(model.compiled.thresholds, score))


def explain_case(model: ScoringModel, cases_path: str | Path, wanted: str, as_of: datetime | None = None, *,
                 default_as_of: datetime | None = None) -> PersonaResult:
    """One persona of a case file, scored and placed by the model: what ``score explain --cases`` shows.

    Expectations are not judged here, so a persona can be explained while its file still fails.
    """
    report = run_cases(model, cases_path, as_of, default_as_of=default_as_of, strict=False)
    return report.persona(wanted)


def _check_ids(spec: CaseFile, locator: Locator) -> list[Chain]:
    seen: set[str] = set()
    for i, case in enumerate(spec.personas):
        if case.id in seen:
            raise locator.error(f"persona id {case.id!r} is used twice", ("personas", i, "id"))
        seen.add(case.id)
    return parse_chains(spec.expect_order, seen, locator)


def proposable_stages(model: ScoringModel) -> tuple[frozenset[LifecycleStage], LifecycleStage | None]:
    """The stages the model can propose, and the one it proposes for the disqualified (None: it has no
    disqualifiers)."""
    t = model.compiled.thresholds
    disqualified = t.disqualified_stage if model.compiled.disqualifiers else None
    stages = {t.base_stage, LifecycleStage.MQL, LifecycleStage.SQL}
    if disqualified is not None:
        stages.add(disqualified)
    return frozenset(stages), disqualified


def _check_possible(model: ScoringModel, case: PersonaCase, current: LifecycleStage | None,
                    rejected_at: datetime | None, locator: Locator, index: int) -> list[str]:
    """Refuse stage expectations no score could meet; warn about a negation or a set every score meets."""
    proposable, disqualified = proposable_stages(model)
    reachable = reachable_stages(current, proposable, model.lifecycle_policy, disqualified_stage=disqualified,
                                 rejected_at=rejected_at)
    base: PathKey = ("personas", index, "expect")
    warnings = []
    for key, wanted, possible, why in (
        ("proposed", case.expect.proposed, proposable, "the model only ever proposes"),
        ("stage", case.expect.stage, reachable, _reachable_why(current)),
    ):
        if wanted is None:
            continue
        if not wanted.allowed & possible:
            raise locator.error(f"expects {wanted.text}, which can never hold: {why} {stage_list(possible)}",
                                (*base, key))
        if possible <= wanted.allowed and (wanted.negated or len(wanted.stages) > 1):
            # "not sql" for a customer reads like a test of the model but tests nothing; a plain
            # "customer" for a customer states the policy on purpose, so it passes without a word.
            warning = locator.error(f"expects {wanted.text}, which holds whatever the score: {why} "
                                    f"{stage_list(possible)}", (*base, key))
            warnings.append(str(warning))
    return warnings


def _reachable_why(current: LifecycleStage | None) -> str:
    if current is None:
        return "with no current stage the model's proposal stands, and it only ever proposes"
    return f"from current stage {current.value} the lifecycle policy only ever gives"


def _rejected_at(case: PersonaCase, index: int, as_of: datetime, locator: Locator) -> datetime | None:
    if case.rejected is None:
        return None
    return _moment(case.rejected.age, case.rejected.at, as_of, locator, ("personas", index, "rejected"))


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
    return _moment(act.age, act.at, as_of, locator, path)


def _moment(age: Any, at: datetime | None, as_of: datetime, locator: Locator, path: PathKey) -> datetime:
    if (age is None) == (at is None):
        raise locator.error("give either 'age' (e.g. 3d, 2w) or 'at' (a timestamp)", path)
    return as_of - age if age is not None else at  # type: ignore[return-value]


def _expectations(expect: Expectation, result: PersonaResult) -> list[Check]:
    s = result.score
    checks = []
    if expect.stage is not None:
        checks.append(Check(result.id, f"stage is {expect.stage.text}", expect.stage.allows(result.final),
                            f"stage {result.final.value}"))
    if expect.proposed is not None:
        checks.append(Check(result.id, f"model proposes {expect.proposed.text}", expect.proposed.allows(s.stage),
                            f"proposes {s.stage.value}"))
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


def _order_checks(chain: Chain, results: dict[str, PersonaResult]) -> list[Check]:
    checks = []
    for higher, lower in pairwise(chain.ids):
        a, b = results[higher].score.total, results[lower].score.total
        checks.append(Check(chain.subject, f"{higher} ranks above {lower}", a > b, f"{a:.1f} vs {b:.1f}"))
    return checks
