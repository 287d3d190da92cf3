"""Memos make re-scores fast and must never change a result."""

from __future__ import annotations

import pytest
from scoring_helpers import AS_OF, activity, company, minimal_with, person

from crmbridge.model import ActivityKind as K
from crmbridge.scoring import Profile, Scorer
from crmbridge.scoring import memo as memo_module

MODEL = minimal_with("""
fit:
  person:
    - {id: big_budget, when: {custom.budget: {min: 1}}, points: 5}
    - {id: flagged, when: {custom.flag: true}, points: 3}
  company:
    - {id: crm, when: {technologies: salesforce}, points: 2}
engagement:
  - {id: pricing, kind: page_view, where: {url: {matches: pricing}}, points: 10, decay: none}
  - {id: tagged, kind: page_view, where: {tags: hot}, points: 1, decay: none}
""")


def totals(scorer: Scorer, profiles: list[Profile]) -> list[float]:
    return [scorer.score(p, AS_OF).total for p in profiles]


def test_equal_but_different_values_are_not_confused() -> None:
    scorer = Scorer(MODEL)
    # True == 1 in Python, yet only the number 1 passes "min: 1", and only True is "true".
    number = scorer.score(Profile(person(custom={"budget": 1, "flag": 1})), AS_OF)
    boolean = scorer.score(Profile(person(custom={"budget": True, "flag": True})), AS_OF)
    assert number.reasons.by_rule().keys() == {"big_budget", "flagged"}
    assert boolean.reasons.by_rule().keys() == {"flagged"}
    assert Scorer(MODEL).score(Profile(person(custom={"budget": True, "flag": True})), AS_OF) == boolean


def test_list_values_are_memoised_by_content() -> None:
    scorer = Scorer(MODEL)
    with_crm = scorer.score(Profile(person(), company(technologies=["slack", "salesforce"])), AS_OF)
    without = scorer.score(Profile(person(), company(technologies=["slack"])), AS_OF)
    assert (with_crm.fit, without.fit) == (2, 0)


def test_a_full_memo_starts_over_without_changing_results(monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = [Profile(person(custom={"budget": i % 3}), company(technologies=["salesforce"] * (i % 2)),
                        (activity(K.PAGE_VIEW, url=f"/pricing/{i % 7}"), activity(K.PAGE_VIEW, tags=["hot"])))
                for i in range(60)]
    expected = totals(Scorer(MODEL), profiles)
    monkeypatch.setattr(memo_module, "MEMO_LIMIT", 4)
    tiny = Scorer(MODEL)
    assert totals(tiny, profiles) == expected
    assert totals(tiny, profiles[::-1]) == expected[::-1]
