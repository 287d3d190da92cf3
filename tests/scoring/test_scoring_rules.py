"""Every rule type of a scoring model, one behaviour at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from scoring_helpers import AS_OF, activity, company, days, minimal_with, person, sweet_spot_company, vp_sales

from crmbridge.model import ActivityKind, ActorKind, LifecycleStage
from crmbridge.scoring import Profile, Scorer, ScoringModel
from crmbridge.scoring.engine import held_back

K = ActivityKind


def run(model: ScoringModel, who=None, org=None, *acts, as_of=AS_OF):  # type: ignore[no-untyped-def]
    return Scorer(model).score(Profile(who or person(), org, acts), as_of)


def fired(result) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {r.rule: r.points for r in result.reasons}


# --- fit: the company ---------------------------------------------------------------------------

COMPANY_FIT = minimal_with("""
fit:
  company:
    - {id: target_industry, when: {industry: [software, it_services]}, points: 5}
    - {id: sweet_spot, when: {employees: {min: 50, max: 1000}}, points: 10}
    - {id: big_revenue, when: {annual_revenue: {min: 10000000}}, points: 4}
    - {id: dach, when: {country: [DE, AT, CH]}, points: 3}
    - {id: emea, when: {region: EMEA}, points: 2}
    - {id: crm_user, when: {technologies: [salesforce, hubspot]}, points: 3}
    - {id: full_stack, when: {technologies: {all_of: [aws, slack]}}, points: 1}
    - {id: tier_1, when: {tier: tier_1}, points: 6}
    - {id: segment, when: {custom.segment: enterprise}, points: 7}
    - {id: known_domain, when: {domain: {exists: true}}, points: 1}
""")


def test_company_fit_rules_read_every_firmographic_field() -> None:
    org = company(domain="acme.example", industry="software", employees=300, annual_revenue=2e7, country="DE",
                  region="EMEA", technologies=["slack", "salesforce", "aws"], tier="tier_1",
                  custom={"segment": "Enterprise"})
    result = run(COMPANY_FIT, person(), org)
    assert fired(result) == {"target_industry": 5, "sweet_spot": 10, "big_revenue": 4, "dach": 3, "emea": 2,
                             "crm_user": 3, "full_stack": 1, "tier_1": 6, "segment": 7, "known_domain": 1}
    assert result.fit == 42


def test_size_outside_the_sweet_spot_earns_nothing() -> None:
    for employees in (49, 1001, None):
        assert "sweet_spot" not in fired(run(COMPANY_FIT, person(), company(employees=employees)))


def test_company_fit_matches_case_insensitively() -> None:
    result = run(COMPANY_FIT, person(), company(industry="Software", country="de", region=" emea"))
    assert {"target_industry", "dach", "emea"} <= set(fired(result))


def test_a_person_without_a_company_gets_no_company_points() -> None:
    assert run(COMPANY_FIT, person(), None).fit == 0


# --- fit: the person ------------------------------------------------------------------------------

PERSON_FIT = minimal_with("""
personas:
  - role: decision_maker
    when:
      any:
        - seniority: [executive, vp]
        - title: {matches: ['\\bhead of\\b', '\\bchief\\b']}
  - role: champion
    when: {seniority: [director, manager], department: [sales, marketing]}
fit:
  person:
    - {id: decision_maker, when: {persona: decision_maker}, points: 10}
    - {id: champion, when: {persona: champion}, points: 5}
    - {id: revenue_team, when: {department: [sales, marketing]}, points: 2}
    - {id: not_it, when: {not: {department: it}}, points: 1}
    - {id: project_owner, when: {custom.role_in_project: owner}, points: 4}
""")


@pytest.mark.parametrize(("who", "persona", "points"), [
    (dict(title="Head of Marketing", seniority="director", department="marketing"), "decision_maker", 13),
    (dict(title="CEO", seniority="executive", department="executive"), "decision_maker", 11),
    (dict(title="Sales Manager", seniority="manager", department="sales"), "champion", 8),
    (dict(title="IT Manager", seniority="manager", department="it"), None, 0),
    (dict(title="Marketing Intern", seniority="intern", department="marketing"), None, 3),
])
def test_personas_come_from_title_seniority_and_department(who: dict, persona: str | None, points: int) -> None:
    result = run(PERSON_FIT, person(**who))
    assert result.persona == persona
    assert result.fit == points


def test_person_custom_fields_can_be_scored() -> None:
    result = run(PERSON_FIT, person(department="it", custom={"role_in_project": "owner"}))
    assert fired(result) == {"project_owner": 4}


# --- engagement -----------------------------------------------------------------------------------

ENGAGEMENT = minimal_with("""
engagement:
  - {id: contact_request, kind: form_submission, where: {form_name: ["Contact us", "Request a demo"]},
     points: 50, cap: 50, hand_raise: true, decay: none}
  - {id: any_form, kind: form_submission, points: 5, decay: none}
  - {id: pricing, kind: page_view, where: {url: {matches: '/pricing'}}, points: 10, cap: 20, decay: none}
  - {id: buyers_guide, kind: content_download, where: {content_type: buyers_guide}, points: 25, decay: none}
  - {id: click, kind: [email_click, email_reply], points: 3, cap: 9, decay: none}
  - {id: fading, kind: chat, points: 16, decay: {half_life: 10d}}
  - {id: short_lived, kind: meeting_booked, points: 20, decay: {expire_after: 30d}}
  - {id: seller_call, kind: call, actor: owner, points: 1, decay: none}
""")


def test_engagement_rules_match_kind_and_attributes() -> None:
    result = run(ENGAGEMENT, person(), None,
                 activity(K.FORM_SUBMISSION, form_name="Request a demo"),
                 activity(K.PAGE_VIEW, url="https://www.example.com/pricing"),
                 activity(K.PAGE_VIEW, url="https://www.example.com/blog/x"),
                 activity(K.CONTENT_DOWNLOAD, content_type="buyers_guide"),
                 activity(K.CONTENT_DOWNLOAD, content_type="guide"))
    assert fired(result) == {"contact_request": 50, "pricing": 10, "buyers_guide": 25}
    assert result.engagement == 85


def test_points_are_per_occurrence_up_to_the_rules_cap() -> None:
    clicks = [activity(K.EMAIL_CLICK, campaign=f"c{i}") for i in range(5)]
    result = run(ENGAGEMENT, person(), None, *clicks)
    reason = result.reasons.by_rule()["click"]
    assert (reason.points, reason.raw_points, reason.occurrences, reason.capped) == (9, 15, 5, True)


def test_one_rule_can_cover_several_kinds() -> None:
    result = run(ENGAGEMENT, person(), None, activity(K.EMAIL_CLICK), activity(K.EMAIL_REPLY))
    assert result.reasons.by_rule()["click"].occurrences == 2


def test_the_first_matching_rule_takes_the_activity() -> None:
    result = run(ENGAGEMENT, person(), None, activity(K.FORM_SUBMISSION, form_name="Contact us"),
                 activity(K.FORM_SUBMISSION, form_name="Newsletter signup"))
    assert fired(result) == {"contact_request": 50, "any_form": 5}


def test_half_life_halves_points() -> None:
    by_age = {d: run(ENGAGEMENT, person(), None, activity(K.CHAT, days(d))).engagement for d in (0, 10, 20)}
    assert by_age == {0: 16, 10: pytest.approx(8), 20: pytest.approx(4)}
    reason = run(ENGAGEMENT, person(), None, activity(K.CHAT, days(10))).reasons.by_rule()["fading"]
    assert (reason.raw_points, reason.decay) == (16, pytest.approx(0.5))


def test_decay_counts_whole_days_so_a_score_is_steady_within_a_day() -> None:
    early = run(ENGAGEMENT, person(), None, activity(K.CHAT, timedelta(days=10, hours=1)))
    late = run(ENGAGEMENT, person(), None, activity(K.CHAT, timedelta(days=10, hours=23)))
    assert early.engagement == late.engagement


def test_expired_occurrences_count_nothing_but_are_explained() -> None:
    result = run(ENGAGEMENT, person(), None, activity(K.MEETING_BOOKED, days(31)),
                 activity(K.MEETING_BOOKED, days(29)))
    reason = result.reasons.by_rule()["short_lived"]
    assert (reason.points, reason.occurrences, reason.expired) == (20, 1, 1)


def test_global_decay_applies_unless_a_rule_sets_its_own() -> None:
    model = minimal_with("""
decay: {half_life: 30d, expire_after: 90d}
engagement:
  - {id: click, kind: email_click, points: 8}
  - {id: chat, kind: chat, points: 8, decay: none}
""")
    result = run(model, person(), None, activity(K.EMAIL_CLICK, days(30)), activity(K.CHAT, days(300)))
    assert fired(result) == {"click": pytest.approx(4), "chat": 8}
    assert run(model, person(), None, activity(K.EMAIL_CLICK, days(91))).engagement == 0


def test_seller_activities_are_not_the_leads_engagement_unless_a_rule_says_so() -> None:
    result = run(ENGAGEMENT, person(), None, activity(K.EMAIL_CLICK, actor=ActorKind.OWNER),
                 activity(K.CALL), activity(K.CALL))
    assert fired(result) == {"seller_call": 2}


def test_activities_after_the_scoring_moment_do_not_count() -> None:
    tomorrow = activity(K.CONTENT_DOWNLOAD, -days(1), content_type="buyers_guide")
    assert run(ENGAGEMENT, person(), None, tomorrow).engagement == 0


def test_a_few_minutes_of_clock_skew_does_not_lose_a_contact_request() -> None:
    just_now = activity(K.FORM_SUBMISSION, -timedelta(minutes=2), form_name="Contact us")
    result = run(ENGAGEMENT, person(), None, just_now)
    assert result.hand_raise and result.engagement == 50


def test_last_engaged_at_is_the_latest_scored_activity() -> None:
    result = run(ENGAGEMENT, person(), None, activity(K.EMAIL_CLICK, days(5)), activity(K.PAGE_VIEW, days(2),
                 url="/pricing"), activity(K.PAGE_VIEW, days(1), url="/blog"))
    assert result.last_engaged_at == AS_OF - days(2)


def test_unusual_attribute_values_are_matched_without_error() -> None:
    model = minimal_with("""
engagement:
  - {id: tagged, kind: page_view, where: {tags: hot}, points: 4, decay: none}
""")
    result = run(model, person(), None, activity(K.PAGE_VIEW, tags=["cold", "hot"]),
                 activity(K.PAGE_VIEW, tags={"nested": True}), activity(K.PAGE_VIEW))
    assert fired(result) == {"tagged": 4}


# --- qualifying answers ---------------------------------------------------------------------------

QUALIFYING = minimal_with("""
qualifying:
  - {id: current, answer: project_status, values: [current], points: 10}
  - {id: budget, answer: bant_budget, values: [approved, planned], points: 5}
  - {id: not_relevant, answer: project_status, values: [not_relevant], points: -10}
""")


def test_qualifying_answers_in_the_crm_earn_points() -> None:
    result = run(QUALIFYING, person(custom={"project_status": "current", "bant_budget": "Planned"}))
    assert fired(result) == {"current": 10, "budget": 5}
    assert result.qualifying == 15


def test_qualifying_answers_given_in_a_form_count_too() -> None:
    form = activity(K.FORM_SUBMISSION, form_name="Contact us", answers={"project_status": "current"})
    assert fired(run(QUALIFYING, person(), None, form)) == {"current": 10}


def test_the_latest_form_answer_wins() -> None:
    old = activity(K.FORM_SUBMISSION, days(30), answers={"project_status": "current"})
    new = activity(K.FORM_SUBMISSION, days(2), answers={"project_status": "not_relevant"})
    assert fired(run(QUALIFYING, person(), None, new, old)) == {"not_relevant": -10}


def test_the_crm_field_wins_over_a_form_answer() -> None:
    form = activity(K.FORM_SUBMISSION, answers={"project_status": "not_relevant"})
    assert fired(run(QUALIFYING, person(custom={"project_status": "current"}), None, form)) == {"current": 10}


# --- negative rules and disqualifiers ---------------------------------------------------------------

def test_default_negative_rules(score) -> None:  # type: ignore[no-untyped-def]
    student = score(person(email="kim@gmail.com", title="Student", seniority="student", unsubscribed=True,
                           bounced=True), company(employees=8))
    assert fired(student) == {"student": -30, "free_mail": -10, "unsubscribed": -10, "bounced": -20,
                              "small_company": -10}
    assert all(r.category == "negative" for r in student.reasons)


def test_a_competitor_is_disqualified_even_when_raising_a_hand(score) -> None:  # type: ignore[no-untyped-def]
    result = score(vp_sales(email="spy@rival-crm.example"), sweet_spot_company(),
                   activity(K.FORM_SUBMISSION, form_name="Contact us"))
    assert result.hand_raise
    assert result.disqualified == "works for a competitor"
    assert result.disqualified_by == "competitor"
    assert result.stage is LifecycleStage.LEAD
    assert result.missing[0].measure == "disqualified"


def test_a_hand_raiser_from_a_company_too_small_to_serve_is_not_sales_ready(score) -> None:  # type: ignore[no-untyped-def]
    result = score(vp_sales(), sweet_spot_company(employees=3), activity(K.FORM_SUBMISSION, form_name="Contact us"))
    assert result.disqualified_by == "too_small_to_serve"
    assert result.stage is not LifecycleStage.SQL


# --- thresholds and stages ------------------------------------------------------------------------

def test_playbook_weights_in_the_default_model(score) -> None:  # type: ignore[no-untyped-def]
    acts = [activity(K.FORM_SUBMISSION, timedelta(0), form_name="Contact us"),
            activity(K.EMAIL_OPEN, timedelta(0)), activity(K.EMAIL_CLICK, timedelta(0)),
            activity(K.PAGE_VIEW, timedelta(0), url="https://www.example.com/product/scoring"),
            activity(K.CONTENT_DOWNLOAD, timedelta(0), content_type="guide"),
            activity(K.CONTENT_DOWNLOAD, timedelta(0), content_type="buyers_guide")]
    points = fired(score(person(title="Analyst", seniority="senior", department="finance",
                                custom={"project_status": "current"}),
                         company(employees=200), *acts))
    assert points == {"size_sweet_spot": 10, "influencer": 2, "contact_request": 50, "email_open": 0,
                      "email_click": 3, "product_page": 5, "top_of_funnel_guide": 10, "buyers_guide": 25,
                      "project_current": 10}


def test_fit_alone_makes_an_mql_not_an_sql(score) -> None:  # type: ignore[no-untyped-def]
    result = score(vp_sales(custom={"bant_budget": "approved", "bant_need": "confirmed",
                                    "bant_timeline": "this_quarter"}), sweet_spot_company())
    assert result.total >= 50
    assert result.stage is LifecycleStage.MQL
    assert [g.text for g in result.missing if g.measure == "engagement"] == ["engagement 0 of 10 (10 more)"]


def test_enough_points_and_engagement_make_an_sql(score) -> None:  # type: ignore[no-untyped-def]
    result = score(vp_sales(), sweet_spot_company(), activity(K.CONTENT_DOWNLOAD, content_type="buyers_guide"))
    assert result.stage is LifecycleStage.SQL
    assert result.missing == ()


def test_a_contact_request_from_the_icp_qualifies_directly(score) -> None:  # type: ignore[no-untyped-def]
    result = score(vp_sales(), sweet_spot_company(employees=60),
                   activity(K.FORM_SUBMISSION, form_name="Request a demo"))
    assert result.hand_raise and result.stage is LifecycleStage.SQL


def test_a_contact_request_from_outside_the_icp_is_held_at_mql(default_model, score) -> None:  # type: ignore[no-untyped-def]
    result = score(person(email="sean@gmx.de", title="Analyst", seniority="senior"), None,
                   activity(K.FORM_SUBMISSION, form_name="Request a demo"))
    assert result.hand_raise and result.fit == -8
    assert result.stage is LifecycleStage.MQL
    assert held_back(default_model.compiled.thresholds, result) == \
        "held at MQL: fit -8 < 25 required for SQL (thresholds.sql.requires_fit)"
    assert result.missing[0].text == "fit -8 of 25 (33 more)"  # for SQL: first what blocks it


def test_university_staff_are_no_sql_however_active(default_model, score) -> None:  # type: ignore[no-untyped-def]
    university = company(domain="univ-example.edu", industry="education", employees=4000, region="EMEA")
    result = score(person(email="prof@univ-example.edu", title="Professor", seniority="senior",
                          department="education"), university,
                   activity(K.FORM_SUBMISSION, days(1), form_name="Contact us"),
                   *[activity(K.CONTENT_DOWNLOAD, days(i), content_type="buyers_guide") for i in (1, 2)])
    assert result.fit == -23 and result.total >= 50 and result.engagement >= 10
    assert result.stage is LifecycleStage.MQL
    assert held_back(default_model.compiled.thresholds, result) == \
        "held at MQL: fit -23 < 25 required for SQL (thresholds.sql.requires_fit)"


def test_sql_without_the_fit_requirement_is_a_setting() -> None:
    lenient = minimal_with("""
engagement:
  - {id: demo, kind: form_submission, points: 60, hand_raise: true}
""").spec.model_dump(exclude_unset=True)
    lenient["thresholds"]["sql"]["requires_fit"] = False
    strict = minimal_with("""
engagement:
  - {id: demo, kind: form_submission, points: 60, hand_raise: true}
""")
    demo = activity(K.FORM_SUBMISSION)
    assert run(strict, person(), None, demo).stage is LifecycleStage.MQL
    assert run(ScoringModel.from_dict(lenient), person(), None, demo).stage is LifecycleStage.SQL


def test_the_fit_an_sql_needs_is_the_larger_minimum() -> None:
    model = minimal_with("""
fit:
  company:
    - {id: big, when: {employees: {min: 100}}, points: 20}
engagement:
  - {id: views, kind: page_view, points: 60}
""").spec.model_dump(exclude_unset=True)
    model["thresholds"]["sql"]["fit_min"] = 30
    sized = ScoringModel.from_dict(model)
    result = run(sized, person(), company(employees=500), activity(K.PAGE_VIEW))
    assert result.stage is LifecycleStage.MQL
    assert [g.text for g in result.missing] == ["fit 20 of 30 (10 more)", "or a hand-raise (e.g. a contact request)"]
    assert held_back(sized.compiled.thresholds, result) == \
        "held at MQL: fit 20 < 30 required for SQL (thresholds.sql.fit_min)"


def test_a_lead_learns_what_is_missing_for_mql_and_sql(score) -> None:  # type: ignore[no-untyped-def]
    result = score(person(title="Analyst", seniority="senior"), company(employees=200),
                   activity(K.EMAIL_CLICK, timedelta(0)))
    assert result.stage is LifecycleStage.LEAD
    assert [(g.stage.value, g.text) for g in result.missing] == [
        ("mql", "fit 12 of 25 (13 more)"),
        ("sql", "fit 12 of 25 (13 more)"),  # an SQL needs the MQL's fit too (thresholds.sql.requires_fit)
        ("sql", "total 15 of 50 (35 more)"),
        ("sql", "engagement 3 of 10 (7 more)"),
        ("sql", "or a hand-raise (e.g. a contact request)"),
    ]


def test_an_mql_requirement_beyond_fit_points() -> None:
    model = minimal_with("""
fit:
  company:
    - {id: big, when: {employees: {min: 100}}, points: 20}
""").spec.model_dump(exclude_unset=True)
    model["thresholds"]["mql"]["when"] = {"company.region": "EMEA"}
    strict = ScoringModel.from_dict(model)
    assert run(strict, person(), company(employees=500, region="NA")).stage is LifecycleStage.LEAD
    assert run(strict, person(), company(employees=500, region="EMEA")).stage is LifecycleStage.MQL
    gap = run(strict, person(), company(employees=500, region="NA")).missing[0]
    assert gap.measure == "requirement"


def test_as_of_must_carry_a_time_zone(scorer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="time zone"):
        scorer.score(Profile(person()), AS_OF.replace(tzinfo=None))


def test_as_of_in_another_zone_gives_the_same_score(scorer) -> None:  # type: ignore[no-untyped-def]
    from datetime import timezone

    profile = Profile(vp_sales(), sweet_spot_company(), (activity(K.PAGE_VIEW, days(3), url="/pricing"),))
    berlin = AS_OF.astimezone(timezone(timedelta(hours=1)))
    assert scorer.score(profile, berlin).total == scorer.score(profile, AS_OF).total
