"""The seeded world: deterministic, realistic, and shaped for the personas the scoring model is tested on."""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmbridge.model import ActivityKind, LifecycleStage
from crmbridge.sandbox.world import (
    BEHAVIOUR_WINDOW_DAYS,
    COMPETITOR_DOMAINS,
    COUNTRY_BY_CODE,
    DAY_MS,
    DEPARTMENTS,
    FREE_MAIL_DOMAINS,
    INDUSTRIES,
    LEAD_STATUSES,
    REGIONS,
    SELLER_SITE,
    SENIORITIES,
    TECHNOLOGIES,
    TIERS,
    World,
    _Generator,
    generate_world,
)

ANCHOR = datetime(2026, 3, 2, tzinfo=UTC)


def fingerprint(world: World) -> str:
    digest = hashlib.sha256()
    for p in world.people:
        digest.update(f"{p.email}|{p.title}|{p.company}|{p.lifecycle}|{p.created_ms}|{p.updated_ms}".encode())
    for c in world.companies:
        digest.update(f"{c.domain}|{c.industry}|{c.employees}|{c.tier}|{c.renewal_date}".encode())
    for a in world.activities:
        digest.update(f"{a.kind}|{a.at_ms}|{a.person}|{a.deal}".encode())
    b = world.behaviours
    for column in (b.person, b.kind, b.at_ms, b.ref):
        digest.update(column.tobytes())
    return digest.hexdigest()


def fresh(seed: int, contacts: int, anchor: datetime = ANCHOR) -> World:
    """Bypass the cache, so determinism is tested on two independent generations."""
    return _Generator(seed, contacts, anchor).run()


def test_same_seed_size_and_anchor_give_the_same_world() -> None:
    assert fingerprint(fresh(5, 400)) == fingerprint(fresh(5, 400))


def test_a_different_seed_gives_a_different_world() -> None:
    assert fingerprint(fresh(5, 400)) != fingerprint(fresh(6, 400))


def test_generate_world_shares_one_world_per_seed_size_and_anchor() -> None:
    assert generate_world(3, 120, ANCHOR) is generate_world(3, 120, ANCHOR)
    assert generate_world(3, 120, ANCHOR) is not generate_world(3, 121, ANCHOR)


@pytest.fixture(scope="module")
def world() -> World:
    return fresh(42, 3000)


def test_population_has_the_requested_people_and_about_a_sixth_as_many_companies(world: World) -> None:
    assert len(world.people) == 3000
    assert [p.index for p in world.people] == list(range(3000))
    assert len(world.companies) == 500
    assert len(world.deals) == 150
    assert 10 <= len(world.owners) <= 14


def test_small_worlds_still_have_ten_companies() -> None:
    assert len(fresh(1, 12).companies) == 10


def test_every_value_comes_from_the_canonical_vocabularies(world: World) -> None:
    for c in world.companies:
        assert c.industry in INDUSTRIES
        assert c.country in COUNTRY_BY_CODE and c.region in REGIONS
        assert c.tier in (*TIERS, None)
        assert set(c.technologies) <= set(TECHNOLOGIES)
        assert all(t == t.lower() for t in c.technologies)
    for p in world.people:
        assert p.seniority in SENIORITIES and p.department in DEPARTMENTS
        assert p.lead_status in (*LEAD_STATUSES, None)
        assert p.country in COUNTRY_BY_CODE and p.region == COUNTRY_BY_CODE[p.country].region


def test_students_only_work_at_universities(world: World) -> None:
    students = [p for p in world.people if p.title == "Student"]
    assert students, "a world of 3000 has students"
    for p in students:
        assert p.seniority == "student"
        assert world.companies[p.company].is_university
        assert world.companies[p.company].industry == "education"


def test_a_share_of_people_write_from_free_mail(world: World) -> None:
    free = [p for p in world.people if p.email.rpartition("@")[2] in FREE_MAIL_DOMAINS]
    assert 0.05 < len(free) / len(world.people) < 0.25
    for p in world.people:
        domain = p.email.rpartition("@")[2]
        if domain not in FREE_MAIL_DOMAINS:
            assert domain == world.companies[p.company].domain


def test_emails_are_unique_and_lower_case_ascii(world: World) -> None:
    emails = [p.email for p in world.people]
    assert len(set(emails)) == len(emails)
    assert all(e.isascii() and e == e.lower() and e.count("@") == 1 for e in emails)


def test_competitors_universities_and_unservable_sizes_are_present(world: World) -> None:
    domains = {c.domain for c in world.companies}
    assert set(COMPETITOR_DOMAINS) <= domains
    assert any(c.is_university for c in world.companies)
    assert any(c.employees < 10 for c in world.companies), "some companies are too small to serve"
    assert any(c.employees > 10_000 for c in world.companies), "some are too big"
    assert any(c.tier == "tier_1" for c in world.companies)
    assert any(c.renewal_date is not None for c in world.companies)


def test_lifecycle_stages_are_mostly_lead_or_subscriber(world: World) -> None:
    stages = Counter(p.lifecycle for p in world.people)
    early = stages[LifecycleStage.LEAD] + stages[LifecycleStage.SUBSCRIBER]
    assert early / len(world.people) > 0.7
    assert stages[LifecycleStage.OPPORTUNITY] and stages[LifecycleStage.CUSTOMER]


def test_some_people_answered_the_qualifying_questions(world: World) -> None:
    answered = [p for p in world.people if p.bant_budget is not None]
    assert 0.05 < len(answered) / len(world.people) < 0.4
    assert any(p.project_status == "current" for p in world.people)
    assert sum(p.unsubscribed for p in world.people) and sum(p.bounced for p in world.people)


def test_behaviour_is_skewed_most_people_quiet_a_few_very_active(world: World) -> None:
    b = world.behaviours
    counts = [len(b.of(p.index)) for p in world.people]
    quiet = sum(1 for n in counts if n <= 1)
    assert quiet / len(counts) > 0.4
    assert max(counts) >= 30
    assert len(b) == sum(counts)


def test_behaviours_are_ordered_within_the_window_before_the_anchor(world: World) -> None:
    b = world.behaviours
    anchor = int(ANCHOR.timestamp() * 1000)
    earliest = anchor - (BEHAVIOUR_WINDOW_DAYS + 1) * DAY_MS
    for person in world.people:
        times = [b.at_ms[i] for i in b.of(person.index)]
        assert times == sorted(times)
        assert all(earliest <= t < anchor for t in times)
        assert all(b.person[i] == person.index for i in b.of(person.index))
        if times:
            assert person.created_ms <= times[0] and person.updated_ms >= times[-1]


def test_behaviours_cover_pages_forms_and_email_on_the_sellers_assets(world: World) -> None:
    b = world.behaviours
    kinds = Counter(b.kind)
    assert all(kinds[k] for k in range(4))
    assert all(p.url.startswith(SELLER_SITE + "/") for p in world.pages)
    sections = {world.pages[b.ref[i]].section for i in range(len(b)) if b.kind[i] == 0}
    assert {"pricing", "product", "blog", "customers", "careers"} <= sections
    submitted = {world.forms[b.ref[i]].kind for i in range(len(b)) if b.kind[i] == 1}
    assert {"contact", "demo", "guide", "buyers_guide", "ebook", "case_study"} <= submitted
    assert len({f.guid for f in world.forms}) == len(world.forms)


def test_sales_activities_point_at_real_people_companies_deals_and_owners(world: World) -> None:
    kinds = Counter(a.kind for a in world.activities)
    for kind in (ActivityKind.CALL, ActivityKind.EMAIL_SENT, ActivityKind.EMAIL_REPLY, ActivityKind.MEETING,
                 ActivityKind.NOTE, ActivityKind.TASK):
        assert kinds[kind], kind
    for a in world.activities:
        assert 0 <= a.owner < len(world.owners)
        assert a.person < len(world.people) and a.company < len(world.companies) and a.deal < len(world.deals)
        if a.kind is ActivityKind.TASK and a.status == "completed":
            assert a.completed_ms is not None
    assert any(a.booked_by_lead for a in world.activities if a.kind is ActivityKind.MEETING)


def test_deals_sit_on_companies_with_their_people_and_set_lifecycle(world: World) -> None:
    for d in world.deals:
        company = world.companies[d.company]
        assert set(d.people) <= set(company.people)
        stage = world.pipelines[d.pipeline].stages[d.stage]
        if stage.won:
            assert company.lifecycle is LifecycleStage.CUSTOMER
            assert all(world.people[p].lifecycle.rank >= LifecycleStage.CUSTOMER.rank for p in d.people)


def test_owners_have_teams_time_zones_and_some_are_inactive(world: World) -> None:
    assert sum(not o.active for o in world.owners) == 2
    assert {world.teams[o.team].name for o in world.owners} >= {"EMEA Sales", "NA Sales", "SDR"}
    assert all("/" in o.timezone for o in world.owners)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), contacts=st.integers(1, 250),
       days=st.integers(0, 3650))
def test_invariants_hold_for_any_seed_and_size(seed: int, contacts: int, days: int) -> None:
    world = fresh(seed, contacts, datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=days))
    anchor = world.anchor_ms
    assert len(world.people) == contacts
    assert len({p.email for p in world.people}) == contacts
    assert all(p.created_ms <= p.updated_ms <= anchor for p in world.people)
    assert all(c.created_ms <= c.updated_ms <= anchor for c in world.companies)
    assert all(t < anchor for t in world.behaviours.at_ms)
    assert world.behaviours.start[-1] == len(world.behaviours)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CRMBRIDGE_SLOW_TESTS"), reason="set CRMBRIDGE_SLOW_TESTS=1 to run")
def test_a_hundred_thousand_people_generate() -> None:
    started = time.perf_counter()
    world = fresh(1, 100_000)
    print(f"generated 100k people in {time.perf_counter() - started:.1f}s, {len(world.behaviours)} behaviours")
    assert len(world.people) == 100_000
