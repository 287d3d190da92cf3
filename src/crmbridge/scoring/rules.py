"""Rules compiled from a validated model: small frozen records holding plain predicates and numbers.

Compilation happens once per model; it also checks what a schema cannot (unique ids, known personas,
known lists, negative rules that really are negative) and reports those at file, line and key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from crmbridge.model import ActivityKind, LifecycleStage
from crmbridge.scoring.conditions import Atom, Field, Predicate, Scope, compile_condition, normalise
from crmbridge.scoring.lifecycle import LifecyclePolicy
from crmbridge.scoring.memo import remember
from crmbridge.yamlconf import Locator, PathKey

if TYPE_CHECKING:
    from crmbridge.scoring.model import DecaySpec, EngagementRuleSpec, ModelSpec

NEVER = timedelta.max
DECAY_TABLE_DAYS = 3651


@dataclass(frozen=True, slots=True)
class PersonaRule:
    """Assigns a buying-committee role (decision maker, champion, ...) from title/seniority/department."""

    role: str
    description: str
    test: Predicate


@dataclass(frozen=True, slots=True)
class FitRule:
    """Points for who the person is or where they work; ``category`` is company, person or negative."""

    id: str
    description: str
    category: str
    points: float
    test: Predicate


@dataclass(frozen=True, slots=True)
class Disqualifier:
    id: str
    reason: str
    test: Predicate


@dataclass(frozen=True, slots=True)
class EngagementRule:
    """Points per matching activity, fading with whole days of age and capped per rule.

    ``decay[d]`` is the factor for an occurrence ``d`` full days old (``half_life_days`` beyond the
    table); an empty table means no decay. Whole days keep a score steady within a day, so decay
    causes at most one write-back a day.
    """

    index: int
    id: str
    description: str
    points: float
    cap: float | None
    decay: tuple[float, ...]
    half_life_days: float | None
    expire_after: timedelta  # NEVER when occurrences never expire
    hand_raise: bool
    call_to_action: bool
    counts_person: bool
    counts_seller: bool
    test: Predicate | None


class KindRules:
    """The engagement rules for one activity kind, with a memo of which rule each activity shape meets.

    An activity's rule depends only on the few values the rules read (its URL, form name, content
    type, whether a seller did it), so the first-match walk runs once per distinct shape; the memo is
    bounded and never changes a result. There is one memo for the lead's own activities and one for
    sellers'; the key is None when the rules read nothing, ``attributes[attribute]`` when they read
    one attribute, else the tuple ``general(activity)``.
    """

    __slots__ = ("attribute", "by_person", "by_seller", "general", "rules")

    def __init__(self, rules: tuple[EngagementRule, ...], fields: list[Field]) -> None:
        self.rules = rules
        # One memo per actor, keyed by the shape without the seller flag: no key tuple per activity.
        self.by_person: dict[Any, Hit | None] = {}
        self.by_seller: dict[Any, Hit | None] = {}
        self.attribute: str | None = None
        self.general: Callable[[Any], Any] | None = None
        if len(fields) == 1 and fields[0].attribute:
            self.attribute = fields[0].attribute
        elif fields:
            getters = [f.get for f in fields]
            self.general = lambda act: tuple([g(act) for g in getters])

    def key(self, activity: Any, attributes: Mapping[str, Any]) -> Any:
        if self.attribute is not None:
            return attributes.get(self.attribute)
        return None if self.general is None else self.general(activity)

    def first_match(self, activity: Any, seller: bool) -> EngagementRule | None:
        for rule in self.rules:
            if not (rule.counts_seller if seller else rule.counts_person):
                continue
            if rule.test is None or rule.test(activity):
                return rule
        return None

    def hit(self, activity: Any, seller: bool) -> Hit | None:
        rule = self.first_match(activity, seller)
        return None if rule is None else Hit(rule.index, rule.expire_after, rule.decay, rule.points > 0)

    def learn(self, activity: Any, attributes: Mapping[str, Any], seller: bool) -> Hit | None:
        found = self.hit(activity, seller)
        remember(self.by_seller if seller else self.by_person, self.key(activity, attributes), found)
        return found


class Hit(NamedTuple):
    """What the engine needs of the rule an activity met, unpacked in one step in the hot loop."""

    index: int
    expire_after: timedelta
    decay: tuple[float, ...]
    positive: bool


@dataclass(frozen=True, slots=True)
class QualifyingRule:
    """Points for a qualifying answer (BANT, "this is current for us") in the CRM or a form."""

    id: str
    description: str
    answer: str
    values: frozenset[Any]
    points: float


@dataclass(frozen=True, slots=True)
class Thresholds:
    mql_fit_min: float
    mql_test: Predicate | None
    sql_total_min: float
    sql_engagement_min: float
    sql_fit_min: float | None
    sql_requires_fit: bool
    sql_fit_need: float | None  # the fit an SQL needs, for "what is missing": the larger of both minimums
    hand_raise_stage: LifecycleStage | None
    hand_raise_fit_min: float | None
    base_stage: LifecycleStage
    disqualified_stage: LifecycleStage


@dataclass(frozen=True, slots=True)
class AccountSettings:
    engaged_min: float
    decision_roles: frozenset[str]
    committee: tuple[str, ...]
    top_people: int
    points_per_role: float
    sales_ready_score_min: float | None
    sales_ready_committee_min: int
    surge_rise: float
    surge_window: timedelta


@dataclass(frozen=True, slots=True)
class CompiledModel:
    personas: tuple[PersonaRule, ...]
    fit_rules: tuple[FitRule, ...]
    company_rules: tuple[FitRule, ...]
    disqualifiers: tuple[Disqualifier, ...]
    engagement: tuple[EngagementRule, ...]
    by_kind: Mapping[str, KindRules]
    qualifying: tuple[QualifyingRule, ...]
    answer_keys: tuple[str, ...]  # in model order, each once
    thresholds: Thresholds
    lifecycle: LifecyclePolicy
    account: AccountSettings
    person_atoms: tuple[Atom, ...]


def compile_model(spec: ModelSpec, locator: Locator) -> CompiledModel:
    lists = {name: frozenset(normalise(v) for v in values) for name, values in spec.lists.items()}
    _check_unique_ids(spec, locator)
    atoms: list[Atom] = []  # shared by every person-level scope, so one mask covers them all

    def scope(default: str) -> Scope:
        return Scope(default, lists, locator, atoms=atoms)

    personas = _personas(spec, Scope("person", lists, locator, persona_allowed=False, atoms=atoms))
    company = _fit_rules(spec.fit.company, "company", ("fit", "company"), scope("company"))
    person = _fit_rules(spec.fit.person, "person", ("fit", "person"), scope("person"))
    negative = _negative_rules(spec, scope("person"))
    scopes = [Scope("activity", lists, locator) for _ in spec.engagement]
    engagement = tuple(_engagement_rule(i, r, spec.decay, scopes[i]) for i, r in enumerate(spec.engagement))
    return CompiledModel(
        personas=personas,
        fit_rules=company + person + negative,
        company_rules=company,
        disqualifiers=tuple(
            Disqualifier(d.id, d.reason, compile_condition(d.when, ("disqualifiers", i, "when"), scope("person")))
            for i, d in enumerate(spec.disqualifiers)
        ),
        engagement=engagement,
        by_kind=_index_by_kind(spec, engagement, scopes),
        qualifying=tuple(
            QualifyingRule(q.id, q.description or _describe(q.id), q.answer,
                           frozenset(normalise(v) for v in q.values), q.points)
            for q in spec.qualifying
        ),
        answer_keys=tuple(dict.fromkeys(q.answer for q in spec.qualifying)),
        thresholds=_thresholds(spec, scope("person")),
        lifecycle=_policy(spec),
        account=_account(spec, [p.role for p in personas], locator),
        person_atoms=tuple(atoms),
    )


def _describe(rule_id: str) -> str:
    return rule_id.replace("_", " ").capitalize()


def _check_unique_ids(spec: ModelSpec, locator: Locator) -> None:
    sections: list[tuple[PathKey, list[Any]]] = [
        (("fit", "company"), list(spec.fit.company)), (("fit", "person"), list(spec.fit.person)),
        (("negative",), list(spec.negative)), (("engagement",), list(spec.engagement)),
        (("qualifying",), list(spec.qualifying)), (("disqualifiers",), list(spec.disqualifiers)),
    ]
    seen: dict[str, PathKey] = {}
    for base, rules in sections:
        for i, rule in enumerate(rules):
            if rule.id in seen:
                first = ".".join(str(p) for p in seen[rule.id])
                raise locator.error(f"duplicate rule id {rule.id!r} (first used at {first})", (*base, i, "id"))
            seen[rule.id] = (*base, i, "id")


def _personas(spec: ModelSpec, scope: Scope) -> tuple[PersonaRule, ...]:
    locator = scope.locator
    roles: set[str] = set()
    out = []
    for i, p in enumerate(spec.personas):
        if p.role in roles:
            raise locator.error(f"persona role {p.role!r} is defined twice", ("personas", i, "role"))
        roles.add(p.role)
        out.append(PersonaRule(p.role, p.description or _describe(p.role),
                               compile_condition(p.when, ("personas", i, "when"), scope)))
    return tuple(out)


def _fit_rules(rules: list[Any], category: str, base: PathKey, scope: Scope) -> tuple[FitRule, ...]:
    return tuple(
        FitRule(r.id, r.description or _describe(r.id), category, r.points,
                compile_condition(r.when, (*base, i, "when"), scope))
        for i, r in enumerate(rules)
    )


def _negative_rules(spec: ModelSpec, scope: Scope) -> tuple[FitRule, ...]:
    for i, rule in enumerate(spec.negative):
        if rule.points >= 0:
            raise scope.locator.error("a negative rule must take points away (points < 0)",
                                      ("negative", i, "points"))
    return _fit_rules(list(spec.negative), "negative", ("negative",), scope)


def _engagement_rule(index: int, rule: EngagementRuleSpec, default: DecaySpec, scope: Scope) -> EngagementRule:
    decay = rule.decay if rule.decay is not None else default
    half_life = decay.half_life if decay else None
    expire = decay.expire_after if decay else None
    test = None
    if rule.where is not None:
        test = compile_condition(rule.where, ("engagement", index, "where"), scope)
    return EngagementRule(
        index=index,
        id=rule.id,
        description=rule.description or _describe(rule.id),
        points=rule.points,
        cap=rule.cap,
        decay=_decay_table(half_life, expire) if rule.points else (),  # worth nothing: nothing to fade
        half_life_days=half_life / timedelta(days=1) if half_life else None,
        expire_after=expire if expire else NEVER,
        hand_raise=rule.hand_raise,
        call_to_action=rule.call_to_action or rule.hand_raise,
        counts_person=rule.actor in ("person", "any"),
        counts_seller=rule.actor in ("owner", "any"),
        test=test,
    )


def _decay_table(half_life: timedelta | None, expire: timedelta | None) -> tuple[float, ...]:
    """Decay factors by whole days of age, up to the expiry (or ten years) - a list look-up per activity."""
    if not half_life:
        return ()
    days = half_life / timedelta(days=1)
    horizon = min(expire.days + 1, DECAY_TABLE_DAYS) if expire else DECAY_TABLE_DAYS
    return tuple(0.5 ** (age / days) for age in range(horizon))


def _index_by_kind(spec: ModelSpec, rules: tuple[EngagementRule, ...], scopes: list[Scope]) -> dict[str, KindRules]:
    """Rules per activity kind, in model order, so an activity only meets the rules that can match it."""
    index: dict[str, list[EngagementRule]] = {}
    fields: dict[str, dict[str, Field]] = {}
    for rule_spec, rule, scope in zip(spec.engagement, rules, scopes, strict=True):
        for kind in rule_spec.kind:
            index.setdefault(ActivityKind(kind).value, []).append(rule)
            fields.setdefault(ActivityKind(kind).value, {}).update(scope.used)
    return {kind: KindRules(tuple(found), list(fields[kind].values())) for kind, found in index.items()}


def _thresholds(spec: ModelSpec, scope: Scope) -> Thresholds:
    t = spec.thresholds
    mql_test = None
    if t.mql.when is not None:
        mql_test = compile_condition(t.mql.when, ("thresholds", "mql", "when"), scope)
    return Thresholds(
        mql_fit_min=t.mql.fit_min,
        mql_test=mql_test,
        sql_total_min=t.sql.total_min,
        sql_engagement_min=t.sql.engagement_min,
        sql_fit_min=t.sql.fit_min,
        sql_requires_fit=t.sql.requires_fit,
        sql_fit_need=_sql_fit_need(t.sql.fit_min, t.mql.fit_min if t.sql.requires_fit else None),
        hand_raise_stage=LifecycleStage(t.hand_raise.stage) if t.hand_raise.stage else None,
        hand_raise_fit_min=t.hand_raise.fit_min,
        base_stage=LifecycleStage(t.base_stage),
        disqualified_stage=LifecycleStage(t.disqualified_stage),
    )


def _sql_fit_need(*minimums: float | None) -> float | None:
    given = [m for m in minimums if m is not None]
    return max(given) if given else None


def _policy(spec: ModelSpec) -> LifecyclePolicy:
    lc = spec.lifecycle
    return LifecyclePolicy(
        allow_downgrade=lc.allow_downgrade,
        demote_disqualified=lc.demote_disqualified,
        recycle_rejected=lc.recycle_rejected.enabled,
        recycle_to=LifecycleStage(lc.recycle_rejected.to),
    )


def _account(spec: ModelSpec, roles: list[str], locator: Locator) -> AccountSettings:
    a = spec.account
    committee, decision = tuple(a.committee), frozenset(a.decision_roles)
    if "account" in spec.model_fields_set:
        for key in ("committee", "decision_roles"):
            for i, role in enumerate(getattr(a, key)):
                if role not in roles:
                    known = ", ".join(sorted(roles)) or "none defined"
                    raise locator.error(f"unknown persona role {role!r} (personas: {known})", ("account", key, i))
    else:
        # Without an account section the committee is simply the model's personas.
        committee = tuple(roles[:6])
        decision = frozenset(r for r in a.decision_roles if r in roles) or frozenset(roles[:1])
    return AccountSettings(
        engaged_min=a.engaged_min,
        decision_roles=decision,
        committee=committee,
        top_people=a.top_people,
        points_per_role=a.points_per_role,
        sales_ready_score_min=a.sales_ready.score_min,
        sales_ready_committee_min=a.sales_ready.committee_min,
        surge_rise=a.surge.rise,
        surge_window=a.surge.window,
    )
