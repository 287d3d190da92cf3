"""Every score explains itself: the rules that fired, their decayed points, and what is still missing."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from rich.console import Console
from scoring_helpers import AS_OF, activity, days, person, sweet_spot_company, vp_sales

from crmbridge.model import ActivityKind as K
from crmbridge.scoring import AccountScorer, Profile, Scorer, ScoringModel
from crmbridge.scoring.explain import explain, render, render_account, render_score, render_score_json


def console() -> Console:
    return Console(file=io.StringIO(), width=200, record=True, color_system=None)


def test_the_table_shows_each_rule_its_points_and_decay(score) -> None:  # type: ignore[no-untyped-def]
    result = score(vp_sales(), sweet_spot_company(), activity(K.PAGE_VIEW, days(30), url="/pricing"),
                   activity(K.EMAIL_CLICK, days(1)))
    out = console()
    render_score(result, out)
    text = out.export_text()
    assert "maria@northwind.example" in text and "stage SQL" not in text and "stage MQL" in text
    assert "pricing_page" in text and "+5.0" in text and "+10.0" in text and "x0.50" in text
    assert "size_sweet_spot" in text and "What is missing" in text and "for SQL" in text


def test_a_disqualified_person_sees_why(score) -> None:  # type: ignore[no-untyped-def]
    out = console()
    render_score(score(vp_sales(email="x@rival-crm.example"), sweet_spot_company()), out)
    assert "Disqualified (competitor): works for a competitor" in out.export_text()


def test_an_sql_has_nothing_missing(score) -> None:  # type: ignore[no-untyped-def]
    out = console()
    render_score(score(vp_sales(), sweet_spot_company(), activity(K.FORM_SUBMISSION, form_name="Contact us")), out)
    assert "nothing: sales-ready" in out.export_text()


def test_the_json_form_carries_reasons_and_gaps(score) -> None:  # type: ignore[no-untyped-def]
    result = score(person(title="Analyst", seniority="senior"), None, activity(K.EMAIL_CLICK, days(0)))
    out = console()
    render_score_json(result, out)
    data = json.loads(out.export_text())
    assert data == explain(result) == json.loads(json.dumps(result.to_dict()))
    assert data["stage"] == "lead" and data["score"] == 5
    assert {r["rule"]: r["points"] for r in data["reasons"]} == {"influencer": 2.0, "email_click": 3.0}
    assert data["missing"][0] == {"stage": "mql", "measure": "fit", "have": 2.0, "need": 25.0,
                                  "text": "fit 2 of 25 (23 more)"}


def test_the_fingerprint_covers_exactly_what_is_written_back(scorer: Scorer) -> None:
    profile = Profile(vp_sales(), sweet_spot_company(), (activity(K.PAGE_VIEW, days(3), url="/pricing"),))
    now = scorer.score(profile, AS_OF)
    hour_later = scorer.score(profile, AS_OF + timedelta(hours=1))
    assert now.fingerprint == hour_later.fingerprint  # nothing written changes: no write
    with_guide = Profile(profile.person, profile.company,
                         (*profile.activities, activity(K.CONTENT_DOWNLOAD, content_type="buyers_guide")))
    assert scorer.score(with_guide, AS_OF).fingerprint != now.fingerprint
    assert now.writeback() == {"score": 49, "fit_score": 40, "engagement_score": 9, "stage": "mql",
                               "disqualified": None}


def test_an_account_explains_committee_coverage_and_surge(default_model: ScoringModel) -> None:
    scorer = Scorer(default_model)
    org = sweet_spot_company()
    people = [scorer.score(Profile(vp_sales(), org, (activity(K.EMAIL_CLICK, days(0)),) * 2), AS_OF)]
    account = AccountScorer(default_model).score(org, people, AS_OF)
    out = console()
    render_account(account, out)
    text = out.export_text()
    assert "Buying committee 1/4 (25%)" in text
    assert "✔ decision_maker" in text and "✘ champion" in text
    assert "Intent surge: no - no earlier score to compare with" in text


def test_one_entry_point_renders_either_form(score) -> None:  # type: ignore[no-untyped-def]
    result = score(vp_sales(), sweet_spot_company())
    table, as_json = console(), console()
    render(result, table)
    render(result, as_json, "json")
    assert "Rules that fired" in table.export_text()
    assert json.loads(as_json.export_text())["email"] == "maria@northwind.example"
