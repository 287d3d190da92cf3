"""Invariants of the scoring engine, checked on generated people, companies and activities."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scoring_helpers import AS_OF, EXAMPLES, activity, company, person

from crmbridge.model import ActivityKind, LifecycleStage
from crmbridge.scoring import LifecyclePolicy, Profile, Scorer, ScoringModel, apply_lifecycle_policy
from crmbridge.scoring.engine import held_back

MODEL = ScoringModel.load(EXAMPLES / "default.yaml")
SCORER = Scorer(MODEL)  # shared on purpose: its memos must never change a result
K = ActivityKind
PROFILE_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

seniorities = st.sampled_from([None, "executive", "vp", "director", "manager", "senior", "entry", "intern",
                               "student"])
departments = st.sampled_from([None, "sales", "marketing", "it", "engineering", "finance", "operations", "hr",
                               "executive", "education", "other"])
titles = st.sampled_from([None, "VP Sales", "Head of Marketing", "Student", "Marketing Intern", "CEO",
                          "IT Manager", "Analyst"])
domains = st.sampled_from(["acme.example", "gmail.com", "web.de", "rival-crm.example", "northwind.example"])
answers = st.fixed_dictionaries({}, optional={
    "bant_budget": st.sampled_from(["approved", "planned", "none"]),
    "bant_authority": st.sampled_from(["decision_maker", "influencer", "none"]),
    "bant_need": st.sampled_from(["confirmed", "exploring", "none"]),
    "bant_timeline": st.sampled_from(["this_quarter", "this_year", "later", "none"]),
    "project_status": st.sampled_from(["current", "researching", "not_relevant"]),
})

people = st.builds(
    lambda title, seniority, department, domain, unsub, bounced, custom: person(
        email=f"someone@{domain}", title=title, seniority=seniority, department=department,
        unsubscribed=unsub, bounced=bounced, custom=custom),
    titles, seniorities, departments, domains, st.booleans(), st.booleans(), answers)

companies = st.none() | st.builds(
    lambda industry, employees, region, tier, tech, domain: company(
        industry=industry, employees=employees, region=region, tier=tier, technologies=tech, domain=domain),
    st.sampled_from([None, "software", "retail", "banking", "education"]),
    st.none() | st.integers(min_value=0, max_value=50_000),
    st.sampled_from([None, "EMEA", "NA", "APAC", "LATAM"]),
    st.sampled_from([None, "tier_1", "tier_2", "tier_3"]),
    st.lists(st.sampled_from(["salesforce", "hubspot", "slack", "aws"]), max_size=3, unique=True),
    domains,
)

ages = st.integers(min_value=0, max_value=400 * 24).map(lambda hours: timedelta(hours=hours))

# Activities every default rule scores positively (or at zero): no careers page, no form answers.
positive_activities = st.one_of(
    st.builds(lambda a, u: activity(K.PAGE_VIEW, a, url=u), ages,
              st.sampled_from(["https://www.example.com/pricing", "/product/scoring", "/customers/acme",
                               "/blog/mql", "/about"])),
    st.builds(lambda a, t: activity(K.CONTENT_DOWNLOAD, a, content_type=t), ages,
              st.sampled_from(["guide", "buyers_guide", "ebook", "case_study"])),
    st.builds(lambda a, f: activity(K.FORM_SUBMISSION, a, form_name=f), ages,
              st.sampled_from(["Contact us", "Request a demo", "Newsletter signup", "Webinar registration"])),
    st.builds(lambda a, k: activity(k, a), ages,
              st.sampled_from([K.EMAIL_OPEN, K.EMAIL_CLICK, K.EMAIL_REPLY, K.MEETING_BOOKED, K.CHAT, K.CALL])),
)
any_activities = st.one_of(
    positive_activities,
    st.builds(lambda a: activity(K.PAGE_VIEW, a, url="/careers/sdr"), ages),
    st.builds(lambda a, v: activity(K.FORM_SUBMISSION, a, form_name="Contact us", answers={"project_status": v}),
              ages, st.sampled_from(["current", "researching", "not_relevant"])),
)


def score(who, org, acts, as_of=AS_OF):  # type: ignore[no-untyped-def]
    return SCORER.score(Profile(who, org, tuple(acts)), as_of)


@PROFILE_SETTINGS
@given(people, companies, st.lists(any_activities, max_size=12), positive_activities)
def test_a_positive_activity_never_lowers_a_score(who, org, acts, extra) -> None:  # type: ignore[no-untyped-def]
    before = score(who, org, acts)
    after = score(who, org, [*acts, extra])
    assert after.total >= before.total - 1e-9
    assert after.engagement >= before.engagement - 1e-9


@PROFILE_SETTINGS
@given(people, companies, st.lists(positive_activities, max_size=12),
       st.integers(min_value=0, max_value=500 * 24))
def test_decay_only_ever_lowers_engagement_as_time_passes(who, org, acts, hours) -> None:  # type: ignore[no-untyped-def]
    now = score(who, org, acts)
    later = score(who, org, acts, as_of=AS_OF + timedelta(hours=hours))
    assert later.engagement <= now.engagement + 1e-9
    for reason in later.reasons:
        assert 0.0 <= reason.decay <= 1.0


@PROFILE_SETTINGS
@given(people, companies, st.lists(any_activities, max_size=12))
def test_a_disqualified_person_never_reaches_sql(who, org, acts) -> None:  # type: ignore[no-untyped-def]
    result = score(who, org, acts)
    if result.disqualified is not None:
        assert result.stage is not LifecycleStage.SQL
        assert apply_lifecycle_policy(LifecycleStage.MQL, result.stage, MODEL.lifecycle_policy,
                                      disqualified=True) is not LifecycleStage.SQL


@PROFILE_SETTINGS
@given(people, companies)
def test_fit_alone_never_reaches_sql(who, org) -> None:  # type: ignore[no-untyped-def]
    result = score(who, org, [])
    assert result.stage is not LifecycleStage.SQL
    assert result.engagement == 0


@PROFILE_SETTINGS
@given(people, companies, st.lists(any_activities, max_size=12),
       st.sampled_from([LifecycleStage.OPPORTUNITY, LifecycleStage.CUSTOMER, LifecycleStage.EVANGELIST]),
       st.booleans(), st.booleans(), st.booleans())
def test_customers_are_never_downgraded(who, org, acts, owned, down, recycle, rejected) -> None:  # type: ignore[no-untyped-def]
    result = score(who, org, acts)
    policy = LifecyclePolicy(allow_downgrade=down, recycle_rejected=recycle)
    stage = apply_lifecycle_policy(owned, result.stage, policy, disqualified=result.disqualified is not None,
                                   rejected_at=AS_OF if rejected else None, last_engaged_at=result.last_engaged_at)
    assert stage is owned


@PROFILE_SETTINGS
@given(people, companies, st.lists(any_activities, max_size=12))
def test_a_score_is_a_pure_function_of_data_model_and_moment(who, org, acts) -> None:  # type: ignore[no-untyped-def]
    warm = score(who, org, acts)
    cold = Scorer(MODEL).score(Profile(who, org, tuple(acts)), AS_OF)  # fresh memos
    assert warm == cold
    assert warm.fingerprint == cold.fingerprint
    assert list(warm.reasons) == list(cold.reasons)


@PROFILE_SETTINGS
@given(people, companies, st.lists(any_activities, max_size=12))
def test_every_sql_meets_the_icp_fit_an_mql_needs(who, org, acts) -> None:  # type: ignore[no-untyped-def]
    result = score(who, org, acts)
    if result.stage is LifecycleStage.SQL:
        assert result.fit >= MODEL.spec.thresholds.mql.fit_min
    elif held_back(MODEL.compiled.thresholds, result) is not None:  # held: it qualified but for its fit
        assert result.fit < MODEL.spec.thresholds.mql.fit_min
        assert result.hand_raise or (result.total >= 50 and result.engagement >= 10)


@PROFILE_SETTINGS
@given(people, companies, st.lists(any_activities, max_size=12), st.integers(min_value=-2, max_value=500 * 24))
def test_a_kept_digest_scores_as_the_profile_it_was_made_from_at_any_later_moment(  # type: ignore[no-untyped-def]
        who, org, acts, hours) -> None:
    """What a daily re-score relies on: a digest written as text and read back by another scorer (another
    process, a day later) gives the score the profile gives, reasons and fingerprint included."""
    profile = Profile(who, org, tuple(acts))
    text = SCORER.dump(SCORER.digest(profile))
    later = AS_OF + timedelta(hours=hours)
    kept = Scorer(MODEL).evaluate(Scorer(MODEL).load(text), later)
    direct = SCORER.score(profile, later)
    assert kept == direct
    assert kept.fingerprint == direct.fingerprint
    assert list(kept.reasons) == list(direct.reasons) and kept.missing == direct.missing
