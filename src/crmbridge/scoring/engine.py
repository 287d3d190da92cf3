"""The scoring engine: a person's profile and a moment in, a ``PersonScore`` out, nothing else touched.

The hot loop works on compiled predicates and flat lists (no pydantic construction, no per-activity
dicts) because a full re-score runs it for every person in the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from crmbridge.model import Activity, ActivityKind, ActorKind, Company, LifecycleStage, Person
from crmbridge.scoring.conditions import Facts, normalise
from crmbridge.scoring.lifecycle import stage_name
from crmbridge.scoring.memo import AtomMask, remember
from crmbridge.scoring.model import ScoringModel
from crmbridge.scoring.result import Gap, PersonScore, Reason, Reasons
from crmbridge.scoring.rules import CompiledModel, Disqualifier, EngagementRule, Thresholds

# CRMs and this host do not share a clock: an activity stamped up to this far after ``as_of`` still
# counts (at full value), so a fresh contact request is never lost to a few seconds of skew.
CLOCK_SKEW_SECONDS = 300.0
SKEW = timedelta(seconds=CLOCK_SKEW_SECONDS)

_OWNER = ActorKind.OWNER
_FORM = ActivityKind.FORM_SUBMISSION
_SQL = LifecycleStage.SQL
_MQL = LifecycleStage.MQL


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything the engine reads about one person: who they are, where they work, what they did."""

    person: Person
    company: Company | None = None
    activities: Sequence[Activity] = field(default_factory=tuple)


class _Who(NamedTuple):
    """What a person's and company's attributes alone decide."""

    persona: str | None
    fit: float
    reasons: tuple[Reason, ...]
    disqualifier: Disqualifier | None
    mql_requirement: bool
    matched: tuple[int, ...]  # the fit rules behind ``reasons``, by position in the model
    disqualifier_index: int  # the disqualifier's position in the model, -1 for none


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SKEW_US = SKEW // _US
_DAY_US = timedelta(days=1) // _US
_NEVER_US = timedelta.max // _US  # beyond any age


def micros(at: datetime) -> int:
    """A moment as whole microseconds since the epoch: exact, as ``datetime`` arithmetic is."""
    return (at - _EPOCH) // _US


class Digest(NamedTuple):
    """A profile as the engine reads it, with time left out: who the person is (persona, fit,
    disqualifier), which engagement rule each activity met and when, and the qualifying answers on offer.

    ``Scorer.score(profile, t)`` is ``Scorer.evaluate(Scorer.digest(profile), t)``: a digest kept beside
    a stored score (``to_json``/``from_json``) lets a daily re-score, where only time moved, score a
    person without reading their records again, with the same result to the last bit.
    """

    email: str | None
    who: _Who
    hits: Sequence[int]  # flat pairs in activity order: engagement rule index, microseconds since the epoch
    forms: Sequence[tuple[int, Mapping[str, Any]]]  # (microseconds, answers) of form submissions with answers
    answers: Mapping[str, Any]  # the person's own qualifying answers (CRM fields among the model's keys)


_new = tuple.__new__  # builds named tuples without their Python-level __new__: the hot path makes many


class _Tally(NamedTuple):
    """Per engagement rule (by index): occurrences, summed decay factors, expired occurrences."""

    fired: list[int]
    counts: list[int]
    factors: list[float]
    expired: list[int]


class _Engagement(NamedTuple):
    points: float
    tally: _Tally | None
    hand_raise: bool
    responded: bool
    last_engaged_at: datetime | None


_NO_ENGAGEMENT = _Engagement(0.0, None, False, False, None)


class Scorer:
    """Scores profiles against one model. Holds no state between calls but rule memos; safe to share."""

    def __init__(self, model: ScoringModel) -> None:
        self.model = model
        compiled: CompiledModel = model.compiled
        self._personas = compiled.personas
        self._fit_rules = compiled.fit_rules
        self._disqualifiers = compiled.disqualifiers
        self._by_kind = compiled.by_kind
        self._engagement_rules = compiled.engagement
        self._qualifying = compiled.qualifying
        self._answer_set = frozenset(compiled.answer_keys)
        # (answer, value) -> the qualifying rules it satisfies, by their position in the model.
        self._answer_index: dict[tuple[str, Any], list[int]] = {}
        for i, rule in enumerate(compiled.qualifying):
            for value in rule.values:
                self._answer_index.setdefault((rule.answer, value), []).append(i)
        self._thresholds = compiled.thresholds
        # Per engagement rule: expiry (microseconds; NEVER beyond any age), decay table, positive points.
        self._timing = tuple((r.expire_after // _US, r.decay, r.points > 0) for r in compiled.engagement)
        self._mask = AtomMask(compiled.person_atoms)
        self._who_memo: dict[int, _Who] = {}
        self._loaded: dict[tuple[Any, ...], _Who] = {}

    def score(self, profile: Profile, as_of: datetime) -> PersonScore:
        """The score of ``profile`` as of ``as_of`` (time-zone aware); a pure function of both and the model."""
        return self.evaluate(self.digest(profile), as_of)

    def digest(self, profile: Profile) -> Digest:
        """What ``evaluate`` reads of ``profile``: everything a score depends on but the moment."""
        person = profile.person
        who = self._who(person, profile.company)
        hits: list[int] = []
        keep = hits.append
        forms: list[tuple[int, Mapping[str, Any]]] = []
        collect = bool(self._qualifying)
        by_kind = self._by_kind
        epoch, us = _EPOCH, _US
        for act in profile.activities:
            # The record's __dict__ once, then plain dict reads: model attribute look-ups cost more.
            fields = act.__dict__
            kind = fields["kind"]
            attributes = fields["attributes"]
            if kind is _FORM and collect and "answers" in attributes:
                answers = attributes["answers"]
                if answers.__class__ is dict or isinstance(answers, Mapping):
                    forms.append((micros(fields["occurred_at"]), answers))
            group = by_kind.get(kind)
            if group is None:
                continue
            seller = fields["actor"] is _OWNER
            attribute = group.attribute
            try:
                memo = group.by_seller if seller else group.by_person
                if attribute is not None:
                    hit = memo[attributes.get(attribute)]
                else:
                    hit = memo[None if group.general is None else group.general(act)]
            except KeyError:
                hit = group.learn(act, attributes, seller)
            except TypeError:  # a list or dict among the values read: decide without the memo
                hit = group.hit(act, seller)
            if hit is not None:
                keep(hit[0])
                keep((fields["occurred_at"] - epoch) // us)  # micros(), inline: it runs per activity
        answers: dict[str, Any] = {}
        custom = person.custom
        if custom and collect:
            for key in self._answer_set.intersection(custom):
                value = custom[key]
                if value is not None and value != "":
                    answers[key] = value
        return _new(Digest, (person.email, who, tuple(hits), tuple(forms), answers))

    def dump(self, digest: Digest) -> str:
        """A digest as JSON text, to keep beside the stored score (``load`` reads it back)."""
        who = digest.who
        return orjson.dumps([digest.email, who.persona, who.fit, who.matched, who.disqualifier_index,
                             who.mql_requirement, digest.hits, digest.forms, digest.answers]).decode()

    def load(self, text: str | bytes) -> Digest:
        """The digest ``dump`` wrote, for this scorer's model (a digest names rules by position)."""
        email, persona, fit, matched, disqualifier, mql, hits, forms, answers = orjson.loads(text)
        key = (persona, fit, tuple(matched), disqualifier, mql)
        who = self._loaded.get(key)
        if who is None:
            who = self.who(persona, fit, key[2], disqualifier, mql)
            remember(self._loaded, key, who)
        return _new(Digest, (email, who, hits, [(at, a) for at, a in forms] if forms else (), answers))

    def evaluate(self, digest: Digest, as_of: datetime) -> PersonScore:
        """The score of a digested profile as of ``as_of`` (time-zone aware)."""
        if as_of.tzinfo is not UTC:
            if as_of.tzinfo is None:
                raise ValueError("as_of must carry a time zone")
            as_of = as_of.astimezone(UTC)
        persona, fit, fit_reasons, rule, mql_requirement, _, _ = digest.who
        now = micros(as_of)
        points, tally, hand_raise, responded, last_engaged = self._engagement(digest.hits, as_of, now)
        if digest.answers or digest.forms:
            qualifying, answered = self._qualify(digest.answers, digest.forms, now)
        else:
            qualifying, answered = 0.0, ()
        if tally is None:
            reasons = Reasons(fit_reasons + answered)
        else:
            reasons = Reasons(fit_reasons, _explain, (self._engagement_rules, tally, answered))
        total = fit + points + qualifying
        reason = rule.reason if rule is not None else None
        stage, missing = decide(self._thresholds, fit, points, total, hand_raise, reason, mql_requirement)
        return _new(PersonScore, (
            digest.email, as_of, total, fit, points, qualifying, stage, reason,
            rule.id if rule is not None else None, hand_raise, responded, persona, reasons, missing, last_engaged,
        ))

    def score_many(self, profiles: Iterable[Profile], as_of: datetime) -> Iterator[PersonScore]:
        """Score a stream lazily, so a full re-score holds one profile at a time."""
        score = self.score
        for profile in profiles:
            yield score(profile, as_of)

    def _who(self, person: Person, company: Company | None) -> _Who:
        """Persona, fit and disqualifier: memoised per atom mask, computed by the rules on a miss."""
        mask = self._mask(person, company)
        try:
            return self._who_memo[mask]
        except KeyError:
            pass
        facts = Facts(person, company)
        facts.persona = self._persona(facts)
        matched: list[int] = []
        fit = self._fit(facts, matched)
        mql_test = self._thresholds.mql_test
        disqualifier = self._disqualifier(facts)
        who = self.who(facts.persona, fit, tuple(matched),
                       -1 if disqualifier is None else self._disqualifiers.index(disqualifier),
                       mql_test is None or mql_test(facts))
        remember(self._who_memo, mask, who)
        return who

    def who(self, persona: str | None, fit: float, matched: tuple[int, ...], disqualifier: int,
            mql_requirement: bool) -> _Who:
        """What the attributes decided, from the positions of the rules that held (as a digest keeps it)."""
        rules = self._fit_rules
        reasons = tuple(Reason(r.id, r.description, r.category, r.points, r.points, 1.0)
                        for r in (rules[i] for i in matched))
        return _Who(persona, fit, reasons, self._disqualifiers[disqualifier] if disqualifier >= 0 else None,
                    mql_requirement, matched, disqualifier)

    def _persona(self, facts: Facts) -> str | None:
        for rule in self._personas:
            if rule.test(facts):
                return rule.role
        return None

    def _disqualifier(self, facts: Facts) -> Disqualifier | None:
        for rule in self._disqualifiers:
            if rule.test(facts):
                return rule
        return None

    def _fit(self, facts: Facts, matched: list[int]) -> float:
        fit = 0.0
        for i, rule in enumerate(self._fit_rules):
            if rule.test(facts):
                fit += rule.points
                matched.append(i)
        return fit

    def _engagement(self, hits: Sequence[int], as_of: datetime, now: int) -> _Engagement:
        """Each rule's occurrences and summed decay factors, from a digest's hits (``now`` is ``as_of``
        in microseconds; ages are whole microseconds, as ``datetime`` arithmetic makes them).

        One long loop on purpose: it runs for every activity of every person, and each helper call or
        attribute look-up saved here is a measurable share of a full re-score.
        """
        if not hits:
            return _NO_ENGAGEMENT
        table = self._timing
        size = len(table)
        counts, factors, expired = [0] * size, [0.0] * size, [0] * size
        fired: list[int] = []
        freshest = _NEVER_US
        skew, day = -_SKEW_US, _DAY_US
        it = iter(hits)
        for i, at in zip(it, it, strict=True):
            age = now - at
            if age < skew:
                continue  # after as_of (beyond clock skew): not part of this score
            expire_after, decay, positive = table[i]
            if i not in fired:
                fired.append(i)
            if age > expire_after:
                expired[i] += 1
                continue
            counts[i] += 1
            if decay:  # days is negative within the clock skew: full value
                days = age // day
                factors[i] += decay[days] if 0 <= days < len(decay) else _faded(self._engagement_rules[i], days)
            else:
                factors[i] += 1.0
            if positive and age < freshest:
                freshest = age
        if not fired:
            return _NO_ENGAGEMENT
        fired.sort()
        tally = _new(_Tally, (fired, counts, factors, expired))
        points, hand_raise, responded = _engagement_points(self._engagement_rules, tally)
        last = as_of - timedelta(microseconds=freshest) if freshest != _NEVER_US else None
        return _new(_Engagement, (points, tally, hand_raise, responded, last))

    def _qualify(self, answers: Mapping[str, Any], forms: Sequence[tuple[int, Mapping[str, Any]]],
                 now: int) -> tuple[float, tuple[Reason, ...]]:
        """Points for qualifying answers, from the CRM's fields or the latest form that gave them."""
        index = self._answer_index
        matched: list[int] = []
        for key, value in _answers(answers, forms, now, self._answer_set).items():
            for item in value if isinstance(value, list | tuple) else (value,):
                try:
                    matched += index.get((key, normalise(item)), ())
                except TypeError:  # an unhashable answer matches no listed value
                    continue
        if not matched:
            return 0.0, ()
        points = 0.0
        reasons = []
        for i in sorted(set(matched)):  # model order, whatever order the answers came in
            rule = self._qualifying[i]
            points += rule.points
            reasons.append(Reason(rule.id, rule.description, "qualifying", rule.points, rule.points, 1.0))
        return points, tuple(reasons)


def _faded(rule: EngagementRule, days: int) -> float:
    """The decay factor outside the rule's table: full value within the clock skew, else computed."""
    if days <= 0 or rule.half_life_days is None:
        return 1.0
    return 0.5 ** (days / rule.half_life_days)


def _capped(rule: EngagementRule, factors: float) -> tuple[float, bool]:
    """A rule's points over its occurrences' summed decay factors, within its cap."""
    value = rule.points * factors
    cap = rule.cap
    if cap is not None and (value > cap or value < -cap):
        return (cap if value > 0 else -cap), True
    return value, False


def _engagement_points(rules: tuple[EngagementRule, ...], tally: _Tally) -> tuple[float, bool, bool]:
    """Engagement points after caps, and whether a hand was raised or a call-to-action answered."""
    total = 0.0
    hand_raise = responded = False
    factors, counts = tally.factors, tally.counts
    for i in tally.fired:
        rule = rules[i]
        value = rule.points * factors[i]
        cap = rule.cap  # inline rather than _capped(): this runs for every fired rule of every person
        total += value if cap is None or -cap <= value <= cap else (cap if value > 0 else -cap)
        if counts[i] and rule.call_to_action:
            responded = True
            hand_raise = hand_raise or rule.hand_raise
    return total, hand_raise, responded


def _explain(fit: tuple[Reason, ...], rules: tuple[EngagementRule, ...], tally: _Tally,
             answered: tuple[Reason, ...]) -> tuple[Reason, ...]:
    """All reasons of a score, in model order; engagement ones are built here, on first use."""
    engaged = []
    for i in tally.fired:
        rule, count = rules[i], tally.counts[i]
        value, capped = _capped(rule, tally.factors[i])
        engaged.append(Reason(rule.id, rule.description, "engagement", value, rule.points * count,
                              tally.factors[i] / count if count else 1.0, count, capped, tally.expired[i]))
    return fit + tuple(engaged) + answered


def _answers(own: Mapping[str, Any], forms: Sequence[tuple[int, Mapping[str, Any]]], now: int,
             keys: frozenset[str]) -> dict[str, Any]:
    """Qualifying answers: the CRM's own field wins; a form's answer fills the gap, the latest form first."""
    found = dict(own)
    latest: dict[str, tuple[int, Any]] = {}
    horizon = now + _SKEW_US
    for at, answers in forms:
        if at > horizon:
            continue
        for key, value in answers.items():
            if key in keys and key not in found and value is not None and value != "":
                seen = latest.get(key)
                if seen is None or at > seen[0]:
                    latest[key] = (at, value)
    for key, (_, value) in latest.items():
        found[key] = value
    return found


_HAND_RAISE_GAP = Gap(_SQL, "hand_raise", note="or a hand-raise (e.g. a contact request)")
_REQUIREMENT_GAP = Gap(_MQL, "requirement", note="the model's MQL requirement (thresholds.mql.when) is not met")
_SQL_REQUIREMENT_GAP = Gap(_SQL, "requirement",
                           note="the MQL requirement (thresholds.mql.when), which an SQL must meet too")


def decide(t: Thresholds, fit: float, engagement: float, total: float, hand_raise: bool,
           disqualified: str | None, mql_requirement: bool = True) -> tuple[LifecycleStage, tuple[Gap, ...]]:
    """The stage the model proposes, and what is missing before the next one.

    With ``sql.requires_fit`` an SQL (by score or by hand-raise) must also meet the MQL's fit: one
    comparison already made for MQL, so the check costs nothing measurable.
    """
    if disqualified is not None:
        return t.disqualified_stage, (Gap(_SQL, "disqualified", note=f"disqualified: {disqualified}"),)
    raised = hand_raise and t.hand_raise_stage is not None and (
        t.hand_raise_fit_min is None or fit >= t.hand_raise_fit_min)
    mql = fit >= t.mql_fit_min and mql_requirement
    sql = (total >= t.sql_total_min and engagement >= t.sql_engagement_min
           and (t.sql_fit_min is None or fit >= t.sql_fit_min))
    if (sql or (raised and t.hand_raise_stage is _SQL)) and (mql or not t.sql_requires_fit):
        return _SQL, ()
    gaps = [] if mql or raised else _mql_gaps(t, fit, mql_requirement)
    need = t.sql_fit_need  # first: without it, neither points nor a hand-raise make an SQL
    if need is not None and fit < need:
        gaps.append(_new(Gap, (_SQL, "fit", fit, need, "")))
    if t.sql_requires_fit and not mql_requirement:
        gaps.append(_SQL_REQUIREMENT_GAP)
    if total < t.sql_total_min:
        gaps.append(_new(Gap, (_SQL, "total", total, t.sql_total_min, "")))
    if engagement < t.sql_engagement_min:
        gaps.append(_new(Gap, (_SQL, "engagement", engagement, t.sql_engagement_min, "")))
    if t.hand_raise_stage is not None and not hand_raise:
        gaps.append(_HAND_RAISE_GAP)
    return (_MQL if mql or raised else t.base_stage), tuple(gaps)


def held_back(t: Thresholds, score: PersonScore) -> str | None:
    """Which fit rule kept a person from SQL though their score or hand-raise qualified, in words.

    E.g. ``held at MQL: fit 0 < 25 required for SQL (thresholds.sql.requires_fit)``; None when nothing
    did (an SQL, a disqualified person, or one whose points and hand-raise do not qualify anyway).
    Mirrors ``decide``; only explanations call it.
    """
    if score.stage is _SQL or score.disqualified is not None:
        return None
    fit = score.fit
    by_score = score.total >= t.sql_total_min and score.engagement >= t.sql_engagement_min
    by_hand = score.hand_raise and t.hand_raise_stage is _SQL
    blockers: list[str] = []
    shared = _requires_fit_blockers(t, score) if by_score or by_hand else []
    if by_score and t.sql_fit_min is not None and fit < t.sql_fit_min:
        blockers.append(f"fit {_num(fit)} < {_num(t.sql_fit_min)} required for SQL (thresholds.sql.fit_min)")
    if by_hand and t.hand_raise_fit_min is not None and fit < t.hand_raise_fit_min:
        blockers.append(f"fit {_num(fit)} < {_num(t.hand_raise_fit_min)} required for a hand-raise to count "
                        "(thresholds.hand_raise.fit_min)")
    blockers += shared
    if not blockers:
        return None
    return f"held at {stage_name(score.stage)}: " + "; ".join(dict.fromkeys(blockers))


def _requires_fit_blockers(t: Thresholds, score: PersonScore) -> list[str]:
    if not t.sql_requires_fit:
        return []
    found = []
    if score.fit < t.mql_fit_min:
        found.append(f"fit {_num(score.fit)} < {_num(t.mql_fit_min)} required for SQL (thresholds.sql.requires_fit)")
    if any(g.measure == "requirement" for g in score.missing):
        found.append("the MQL requirement (thresholds.mql.when) is not met, and an SQL must meet it "
                     "(thresholds.sql.requires_fit)")
    return found


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _mql_gaps(t: Thresholds, fit: float, mql_requirement: bool) -> list[Gap]:
    gaps = []
    if fit < t.mql_fit_min:
        gaps.append(_new(Gap, (_MQL, "fit", fit, t.mql_fit_min, "")))
    if not mql_requirement:
        gaps.append(_REQUIREMENT_GAP)
    return gaps
