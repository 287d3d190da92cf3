"""The scoring model file: its YAML schema, validated once with errors that name file, line and key.

``ScoringModel.load(path)`` reads and validates a model and compiles its rules into plain predicates
(see ``rules``); the engine only ever sees the compiled form.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from crmbridge.errors import ConfigError
from crmbridge.model import ActivityKind
from crmbridge.scoring.durations import format_duration, parse_duration
from crmbridge.scoring.lifecycle import LifecyclePolicy
from crmbridge.scoring.rules import compile_model
from crmbridge.yamlconf import Locator, load_yaml, parse_yaml, validate

Duration = Annotated[timedelta, BeforeValidator(lambda v: v if isinstance(v, timedelta) else parse_duration(v)),
                     PlainSerializer(format_duration)]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64,
                              description="lower-case id: letters, digits, _ . -")]
Condition = dict[str, Any]


def _as_kinds(value: Any) -> list[ActivityKind]:
    # One validator instead of a pydantic union, so an error's key stays "engagement.N.kind".
    values = value if isinstance(value, list) else [value]
    known = {kind.value for kind in ActivityKind}
    if not values:
        raise ValueError("name at least one activity kind")
    for item in values:
        if not isinstance(item, str) or item not in known:
            raise ValueError(f"unknown activity kind {item!r} (known: {', '.join(sorted(known))})")
    return [ActivityKind(item) for item in values]


def _scalars(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("expected a list of plain values")
    for item in value:
        if not isinstance(item, str | int | float | bool):
            raise ValueError(f"expected plain values (text, number, true/false), got {item!r}")
    return value


def _decay(value: Any) -> Any:
    # "none" switches decay off for one rule: a decay with neither a half-life nor an expiry.
    return {} if isinstance(value, str) and value.strip().lower() == "none" else value


Kinds = Annotated[list[ActivityKind], BeforeValidator(_as_kinds)]
Scalars = Annotated[list[Any], BeforeValidator(_scalars)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecaySpec(_Spec):
    """How engagement points fade: halve every ``half_life``; count nothing older than ``expire_after``."""

    half_life: Duration | None = None
    expire_after: Duration | None = None


class FitRuleSpec(_Spec):
    id: RuleId
    description: str | None = None
    when: Condition
    points: float


class PersonaSpec(_Spec):
    role: RuleId
    description: str | None = None
    when: Condition


class DisqualifierSpec(_Spec):
    id: RuleId
    reason: str = Field(min_length=1)
    when: Condition


class EngagementRuleSpec(_Spec):
    id: RuleId
    description: str | None = None
    kind: Kinds
    where: Condition | None = None
    points: float
    cap: float | None = Field(default=None, gt=0, description="most points this rule can give, decayed")
    decay: Annotated[DecaySpec | None, BeforeValidator(_decay)] = Field(
        default=None, description="replaces the global decay; 'none' turns decay off for this rule")
    hand_raise: bool = False
    call_to_action: bool = False
    actor: Literal["person", "owner", "any"] = "person"


class QualifyingRuleSpec(_Spec):
    id: RuleId
    description: str | None = None
    answer: str = Field(min_length=1, description="key in person.custom or in a form's answers")
    values: Scalars = Field(min_length=1)
    points: float


class FitSpec(_Spec):
    company: list[FitRuleSpec] = Field(default_factory=list)
    person: list[FitRuleSpec] = Field(default_factory=list)


class MqlSpec(_Spec):
    fit_min: float
    when: Condition | None = None


class SqlSpec(_Spec):
    total_min: float
    engagement_min: float = Field(gt=0, description="no lead becomes SQL on demographics alone")
    fit_min: float | None = None
    requires_fit: bool = Field(default=True, description="an SQL, by score or hand-raise, also meets the "
                               "MQL's fit (mql.fit_min and mql.when): every SQL fits the ICP")


class HandRaiseSpec(_Spec):
    stage: Literal["mql", "sql"] | None = "sql"
    fit_min: float | None = None


class ThresholdsSpec(_Spec):
    mql: MqlSpec
    sql: SqlSpec
    hand_raise: HandRaiseSpec = HandRaiseSpec()
    base_stage: Literal["subscriber", "lead"] = "lead"
    disqualified_stage: Literal["subscriber", "lead", "other"] = "lead"


class RecycleSpec(_Spec):
    enabled: bool = False
    to: Literal["lead", "mql"] = "lead"


class LifecycleSpec(_Spec):
    allow_downgrade: bool = Field(default=False, description="let lead/MQL/SQL follow the score down")
    demote_disqualified: bool = True
    recycle_rejected: RecycleSpec = RecycleSpec()


class SalesReadySpec(_Spec):
    score_min: float | None = None
    committee_min: int = Field(default=0, ge=0)


class SurgeSpec(_Spec):
    rise: float = Field(gt=0)
    window: Duration


class AccountSpec(_Spec):
    engaged_min: float = Field(default=5, gt=0, description="engagement points that make a person engaged")
    decision_roles: list[RuleId] = Field(default_factory=lambda: ["decision_maker"])
    committee: list[RuleId] = Field(default_factory=lambda: ["decision_maker", "champion", "influencer",
                                                             "end_user"], min_length=3, max_length=6)
    top_people: int = Field(default=3, ge=1)
    points_per_role: float = 5
    sales_ready: SalesReadySpec = SalesReadySpec()
    surge: SurgeSpec = SurgeSpec(rise=20, window=timedelta(days=14))


class ModelSpec(_Spec):
    version: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str | None = None
    lists: dict[str, Scalars] = Field(default_factory=dict)
    decay: DecaySpec = DecaySpec()
    personas: list[PersonaSpec] = Field(default_factory=list)
    fit: FitSpec = FitSpec()
    engagement: list[EngagementRuleSpec] = Field(default_factory=list)
    qualifying: list[QualifyingRuleSpec] = Field(default_factory=list)
    negative: list[FitRuleSpec] = Field(default_factory=list)
    disqualifiers: list[DisqualifierSpec] = Field(default_factory=list)
    thresholds: ThresholdsSpec
    lifecycle: LifecycleSpec = LifecycleSpec()
    account: AccountSpec = AccountSpec()


class ScoringModel:
    """A validated, compiled scoring model. Build it with ``load``, ``from_text`` or ``from_dict``."""

    def __init__(self, spec: ModelSpec, locator: Locator | None = None) -> None:
        self.spec = spec
        self.source = locator.file if locator else "<model>"
        self.compiled = compile_model(spec, locator or Locator("<model>"))

    @classmethod
    def load(cls, path: str | Path) -> ScoringModel:
        data, locator = load_yaml(path)
        return cls._from_data(data, locator)

    @classmethod
    def from_text(cls, text: str, name: str = "<model>") -> ScoringModel:
        data, locator = parse_yaml(text, Locator(name))
        return cls._from_data(data, locator)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoringModel:
        return cls._from_data(data, Locator("<model>"))

    @classmethod
    def _from_data(cls, data: Any, locator: Locator) -> ScoringModel:
        if not isinstance(data, dict):
            raise ConfigError("a scoring model is a YAML mapping (name, fit, engagement, thresholds, ...)",
                              file=locator.file, line=locator.line(()))
        return cls(validate(ModelSpec, data, locator), locator)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def sql_threshold(self) -> float:
        return self.spec.thresholds.sql.total_min

    @property
    def lifecycle_policy(self) -> LifecyclePolicy:
        return self.compiled.lifecycle

    @property
    def fingerprint(self) -> str:
        """A stable id of the model's content, for recording which model produced a score."""
        canonical = json.dumps(self.spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()

    def __repr__(self) -> str:
        return f"ScoringModel(name={self.name!r}, source={self.source!r})"

