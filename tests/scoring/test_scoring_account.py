"""Account (ABM) roll-up: engaged people, decision roles, committee coverage, stage and intent surge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from scoring_helpers import AS_OF, activity, days, person, sweet_spot_company

from crmbridge.model import ActivityKind as K
from crmbridge.scoring import AccountScorer, Profile, Scorer, ScoreSnapshot, ScoringModel, detect_surge
from crmbridge.scoring.account import AccountStage

ORG = sweet_spot_company()


def people_scores(model: ScoringModel, *profiles: tuple) -> list:  # type: ignore[type-arg]
    scorer = Scorer(model)
    return [scorer.score(Profile(who, ORG, tuple(acts)), AS_OF) for who, acts in profiles]


def clicks(n: int) -> list:  # type: ignore[type-arg]
    return [activity(K.EMAIL_CLICK, timedelta(0), campaign=f"c{i}") for i in range(n)]


CEO = person(email="ceo@northwind.example", title="CEO", seniority="executive", department="executive")
SALES_MANAGER = person(email="sm@northwind.example", title="Sales Manager", seniority="manager", department="sales")
ENGINEER = person(email="eng@northwind.example", title="Senior Engineer", seniority="senior", department="engineering")
JUNIOR = person(email="jr@northwind.example", title="Account Executive", seniority="entry", department="sales")


def test_an_account_with_known_but_silent_people_is_identified(default_model: ScoringModel) -> None:
    scores = people_scores(default_model, (CEO, []), (ENGINEER, []))
    account = AccountScorer(default_model).score(ORG, scores, AS_OF)
    assert (account.people, account.engaged_people, account.stage) == (2, 0, AccountStage.IDENTIFIED)
    assert account.score == 28  # the company's own fit


def test_engaged_people_in_decision_roles_and_committee_coverage(default_model: ScoringModel) -> None:
    scores = people_scores(default_model, (CEO, clicks(2)), (SALES_MANAGER, clicks(2)), (ENGINEER, clicks(1)),
                           (JUNIOR, clicks(3)))
    account = AccountScorer(default_model).score(ORG, scores, AS_OF)
    assert account.engaged_people == 3  # the engineer's single click is below the engaged minimum
    assert account.decision_people == 1
    assert account.covered_roles == ("decision_maker", "champion", "end_user")
    assert account.missing_roles == ("influencer",)
    assert account.coverage == pytest.approx(0.75)
    assert account.stage is AccountStage.DECISION_ENGAGED
    # company fit 28 + the three most engaged people (9 + 6 + 6) + 5 per covered role
    assert account.score == pytest.approx(28 + 21 + 15)


def test_a_person_answering_a_call_to_action_makes_the_account_respond(default_model: ScoringModel) -> None:
    scores = people_scores(default_model, (ENGINEER, [activity(K.CONTENT_DOWNLOAD, content_type="guide")]))
    assert AccountScorer(default_model).score(ORG, scores, AS_OF).stage is AccountStage.RESPONDING


def test_an_sql_makes_the_account_sales_ready(default_model: ScoringModel) -> None:
    scores = people_scores(default_model, (CEO, [activity(K.FORM_SUBMISSION, form_name="Contact us")]))
    assert AccountScorer(default_model).score(ORG, scores, AS_OF).stage is AccountStage.SALES_READY


def test_disqualified_people_do_not_count(default_model: ScoringModel) -> None:
    spy = person(email="spy@rival-crm.example", title="CEO", seniority="executive")
    scores = people_scores(default_model, (spy, clicks(5)))
    account = AccountScorer(default_model).score(ORG, scores, AS_OF)
    assert (account.people, account.engaged_people, account.covered_roles) == (1, 0, ())


def test_an_account_score_rising_within_the_window_is_a_surge(default_model: ScoringModel) -> None:
    scores = people_scores(default_model, (CEO, clicks(5)), (SALES_MANAGER, clicks(5)))
    history = [ScoreSnapshot(AS_OF - days(30), 28), ScoreSnapshot(AS_OF - days(10), 30)]
    account = AccountScorer(default_model).score(ORG, scores, AS_OF, history)
    assert account.surge.detected
    assert account.surge.baseline == ScoreSnapshot(AS_OF - days(30), 28)
    assert "within 14d" in account.surge.reason


def test_no_surge_without_an_earlier_score() -> None:
    surge = detect_surge(90, [], AS_OF, rise=20, window=days(14))
    assert not surge.detected and surge.reason == "no earlier score to compare with"


def test_a_slow_rise_outside_the_window_is_no_surge() -> None:
    history = [ScoreSnapshot(AS_OF - days(60), 10), ScoreSnapshot(AS_OF - days(20), 40),
               ScoreSnapshot(AS_OF - days(5), 45)]
    surge = detect_surge(50, history, AS_OF, rise=20, window=days(14))
    assert not surge.detected
    assert surge.rise == 10  # from the 40 that stood when the window opened


def test_snapshots_after_the_moment_are_ignored() -> None:
    history = [ScoreSnapshot(AS_OF + days(1), 0), ScoreSnapshot(AS_OF - days(3), 45)]
    assert not detect_surge(50, history, AS_OF, rise=20, window=days(14)).detected


def test_account_scores_explain_themselves_and_have_a_stable_fingerprint(default_model: ScoringModel) -> None:
    scores = people_scores(default_model, (CEO, clicks(2)))
    first = AccountScorer(default_model).score(ORG, scores, AS_OF)
    again = AccountScorer(default_model).score(ORG, scores, AS_OF)
    assert first.fingerprint == again.fingerprint
    data = first.to_dict()
    assert data["stage"] == "decision_engaged"
    assert {r["rule"] for r in data["reasons"]} >= {"size_sweet_spot", "person:ceo@northwind.example", "committee"}
