"""One identity across CRMs: matching, the one-record-per-source rule, and the merge policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from crmbridge.cli import app
from crmbridge.errors import ConfigError
from crmbridge.identity import MatchKeys, Member, MergePolicy, company_name_key, match, merge
from crmbridge.model import Company, EntityType, LifecycleStage, Person
from crmbridge.store import Store

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def person(source: str, sid: str, email: str | None, at: datetime = T0, **kw) -> Person:
    return Person(source=source, source_id=sid, email=email, updated_at=at, **kw)


def company(source: str, sid: str, name: str, domain: str | None, **kw) -> Company:
    return Company(source=source, source_id=sid, name=name, domain=domain, updated_at=T0, **kw)


def test_the_same_email_in_two_crms_is_one_person_keeping_both_ids(store: Store) -> None:
    store.records.commit_page("hubspot", "contacts", EntityType.PERSON, [person("hubspot", "1", "ada@acme.example")])
    store.records.commit_page("pipedrive", "persons", EntityType.PERSON,
                              [person("pipedrive", "77", "ada@acme.example")])

    assert store.identities.count(EntityType.PERSON) == 1
    ((cid, members),) = list(store.identities.groups(EntityType.PERSON))
    assert {(m.source, m.source_id) for m in members} == {("hubspot", "1"), ("pipedrive", "77")}
    assert store.identities.canonical_id(EntityType.PERSON, "pipedrive", "77") == cid


def groups(store: Store, entity: EntityType) -> set[frozenset[tuple[str, str]]]:
    """Every identity as the set of its member records: what a user means by "the same company"."""
    return {frozenset((m.source, m.source_id) for m in members) for _, members in store.identities.groups(entity)}


def test_the_order_in_which_crms_are_read_does_not_matter(store: Store) -> None:
    store.records.commit_page("pipedrive", "persons", EntityType.PERSON,
                              [person("pipedrive", "77", "ada@acme.example")])
    store.records.commit_page("hubspot", "contacts", EntityType.PERSON, [person("hubspot", "1", "ada@acme.example"),
                                                                 person("hubspot", "2", "bob@acme.example")])
    assert groups(store, EntityType.PERSON) == {frozenset({("pipedrive", "77"), ("hubspot", "1")}),
                                                frozenset({("hubspot", "2")})}


def test_an_email_change_in_one_crm_does_not_create_a_second_person(store: Store) -> None:
    store.records.commit_page("hubspot", "contacts", EntityType.PERSON, [person("hubspot", "1", "ada@acme.example")])
    store.records.commit_page("pipedrive", "persons", EntityType.PERSON,
                              [person("pipedrive", "77", "ada@acme.example")])
    store.records.commit_page("hubspot", "contacts", EntityType.PERSON,
                              [person("hubspot", "1", "ada.lovelace@acme.example", at=T0 + timedelta(days=1))])

    assert store.identities.count(EntityType.PERSON) == 1
    assert store.identities.canonical_id(EntityType.PERSON, "hubspot", "1") == store.identities.canonical_id(
        EntityType.PERSON, "pipedrive", "77")


def test_duplicates_inside_one_crm_stay_separate_identities(store: Store) -> None:
    store.records.commit_page("hubspot", "contacts", EntityType.PERSON,
                              [person("hubspot", "1", "ada@acme.example"), person("hubspot", "2", "ada@acme.example")])
    store.records.commit_page("pipedrive", "persons", EntityType.PERSON,
                              [person("pipedrive", "77", "ada@acme.example")])
    assert store.identities.count(EntityType.PERSON) == 2


def test_companies_match_by_domain_then_by_name_but_never_by_free_mail(store: Store) -> None:
    store.records.commit_page("hubspot", "companies", EntityType.COMPANY, [
        company("hubspot", "c1", "Acme GmbH", "acme.example"),
        company("hubspot", "c2", "Northgate Logistics", None),
        company("hubspot", "c3", "Solo Consulting", "gmail.com"),
    ])
    store.records.commit_page("pipedrive", "organizations", EntityType.COMPANY, [
        company("pipedrive", "o1", "ACME", "acme.example"),
        company("pipedrive", "o2", "Northgate Logistics Ltd.", "northgate.example"),
        company("pipedrive", "o3", "Other Freelancer", "gmail.com"),
    ])
    pairs = {frozenset(m.source_id for m in members) for _, members in store.identities.groups(EntityType.COMPANY)}
    assert pairs == {frozenset({"c1", "o1"}), frozenset({"c2", "o2"}), frozenset({"c3"}), frozenset({"o3"})}


HUBSPOT = [company("hubspot", "c1", "Acme GmbH", "acme.example"),
           company("hubspot", "c2", "Northgate Logistics", "northgate.example"),
           company("hubspot", "c3", "Blue Harbor", "blueharbor.example"),
           company("hubspot", "c4", "Blue Harbor Inc", "blue-harbor.example"),
           company("hubspot", "c5", "Kestrel Labs", "kestrel.example")]
PIPEDRIVE = [company("pipedrive", "o1", "ACME", None),  # no website, a name unique on both sides
             company("pipedrive", "o2", "Northgate Logistics", "northgate-logistics.example"),  # another domain
             company("pipedrive", "o3", "Blue Harbor", None),  # two HubSpot companies bear the name
             company("pipedrive", "o5", "Kestrel Labs", "kestrel.example")]
EXPECTED = {frozenset({("hubspot", "c1"), ("pipedrive", "o1")}), frozenset({("hubspot", "c2")}),
            frozenset({("pipedrive", "o2")}), frozenset({("hubspot", "c3")}), frozenset({("hubspot", "c4")}),
            frozenset({("pipedrive", "o3")}), frozenset({("hubspot", "c5"), ("pipedrive", "o5")})}


@pytest.mark.parametrize("first", ["hubspot", "pipedrive"])
def test_companies_get_the_same_partners_whichever_crm_is_read_first(store: Store, first: str) -> None:
    pages = {"hubspot": ("companies", HUBSPOT), "pipedrive": ("organizations", PIPEDRIVE)}
    for source in (first, *(s for s in pages if s != first)):
        stream, records = pages[source]
        for record in records:  # a page each: every arrival order inside a CRM is as possible as another
            store.records.commit_page(source, stream, EntityType.COMPANY, [record])

    assert groups(store, EntityType.COMPANY) == EXPECTED
    (conflict,) = store.identities.name_conflicts()
    assert conflict.name == "blue harbor"
    assert [k.ref for k in conflict.records] == [("hubspot", "c3"), ("hubspot", "c4"), ("pipedrive", "o3")]


def test_a_name_link_is_undone_when_a_second_company_with_that_name_arrives(store: Store) -> None:
    store.records.commit_page("pipedrive", "organizations", EntityType.COMPANY, [PIPEDRIVE[2]])
    store.records.commit_page("hubspot", "companies", EntityType.COMPANY, [HUBSPOT[2]])
    assert frozenset({("hubspot", "c3"), ("pipedrive", "o3")}) in groups(store, EntityType.COMPANY)

    store.records.commit_page("hubspot", "companies", EntityType.COMPANY, [HUBSPOT[3]])
    assert groups(store, EntityType.COMPANY) == {frozenset({("hubspot", "c3")}), frozenset({("hubspot", "c4")}),
                                                 frozenset({("pipedrive", "o3")})}


def test_a_company_with_the_same_domain_takes_the_place_a_name_held(store: Store) -> None:
    store.records.commit_page("pipedrive", "organizations", EntityType.COMPANY, [PIPEDRIVE[0]])
    store.records.commit_page("hubspot", "companies", EntityType.COMPANY, [HUBSPOT[0]])
    store.records.commit_page("pipedrive", "organizations", EntityType.COMPANY,
                              [company("pipedrive", "o9", "Acme Europe", "acme.example")])
    assert groups(store, EntityType.COMPANY) == {frozenset({("hubspot", "c1"), ("pipedrive", "o9")}),
                                                 frozenset({("pipedrive", "o1")})}


def _replay(order: list[Company]) -> set[frozenset[tuple[str, str]]]:
    """The store's incremental matching, in memory: one record a page, as ``resolve`` applies it."""
    owner: dict[tuple[str, str], int] = {}
    keys: dict[tuple[str, str], MatchKeys] = {}
    for n, record in enumerate(order):
        k = MatchKeys.of(record)
        keys[k.ref] = k
        counts: dict[tuple[str, str], int] = {}
        for other in keys.values():
            if other.name:
                counts[(other.source, other.name)] = counts.get((other.source, other.name), 0) + 1
        decision = match([k], [Member(owner[ref], keys[ref]) for ref in owner], counts)
        for i, ref in enumerate(decision.detach):
            owner[ref] = 1000 * (n + 1) + i
        joined = decision.joins[k.source_id]
        if joined is not None and joined < 0:  # the new identity of a member set apart just now
            joined = owner[decision.detach[-joined - 1]]
        owner[k.ref] = joined or 1000 * (n + 1) + 999
    found: dict[int, set[tuple[str, str]]] = {}
    for ref, cid in owner.items():
        found.setdefault(cid, set()).add(ref)
    return {frozenset(g) for g in found.values()}


@given(st.permutations(HUBSPOT + PIPEDRIVE))
def test_every_arrival_order_of_the_records_gives_the_same_identities(order: list[Company]) -> None:
    assert _replay(order) == EXPECTED


def test_matching_is_a_decision_over_keys_without_a_store() -> None:
    pending = [MatchKeys("pipedrive", "o1", domain=None, name="acme")]
    known = [Member(7, MatchKeys("hubspot", "c1", domain="acme.example", name="acme"))]
    assert match(pending, known, {("pipedrive", "acme"): 1, ("hubspot", "acme"): 1}).joins == {"o1": 7}
    assert match(pending, known, {("pipedrive", "acme"): 1, ("hubspot", "acme"): 2}).joins == {"o1": None}
    both = [MatchKeys("pipedrive", "o1", domain="acme.io", name="acme")]
    assert match(both, known, {("pipedrive", "acme"): 1, ("hubspot", "acme"): 1}).joins == {"o1": None}


def test_company_names_ignore_case_punctuation_and_legal_form() -> None:
    assert company_name_key("ACME, Inc.") == company_name_key("Acme Inc") == "acme"
    assert company_name_key("Northgate Logistics GmbH & Co. KG") == "northgate logistics"
    assert company_name_key(None) is None


def test_by_default_the_most_recently_updated_value_wins() -> None:
    old = person("hubspot", "1", "ada@acme.example", at=T0, title="Engineer")
    new = person("pipedrive", "77", "ada@acme.example", at=T0 + timedelta(days=3), title="VP Engineering")
    golden = merge(5, [old, new], MergePolicy())
    assert golden.title == "VP Engineering"
    assert golden.source_ids == {"hubspot": "1", "pipedrive": "77"}
    assert golden.source_id == "5"


def test_a_field_can_follow_a_source_priority_flags_any_and_stages_the_furthest(tmp_path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("default: most_recent\nfields:\n  person:\n    title: {strategy: priority, order: [hubspot]}\n"
                    "    unsubscribed: any\n    lifecycle_stage: max_stage\n")
    policy = MergePolicy.load(path)
    hub = person("hubspot", "1", "a@x.example", at=T0, title="CTO", unsubscribed=True,
                 lifecycle_stage=LifecycleStage.CUSTOMER)
    pipe = person("pipedrive", "7", "a@x.example", at=T0 + timedelta(days=1), title="Chief Technology Officer",
                  unsubscribed=False, lifecycle_stage=LifecycleStage.SQL)
    golden = merge(1, [hub, pipe], policy)
    assert golden.title == "CTO"
    assert golden.unsubscribed is True
    assert golden.lifecycle_stage is LifecycleStage.CUSTOMER


def test_a_bad_merge_policy_names_its_line(tmp_path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("fields:\n  person:\n    title: {strategy: newest}\n")
    with pytest.raises(ConfigError) as info:
        MergePolicy.load(path)
    assert info.value.line == 3 and "strategy must be one of" in str(info.value)


def test_a_single_record_identity_merges_like_a_multi_record_one() -> None:
    alone = person("hubspot", "1", "a@x.example", title="CTO", company_ids=["c9"], owner_id="7",
                   extra={"hs_x": "1"}, custom={"bant_budget": "approved"})
    golden = merge(3, [alone], MergePolicy())
    twice = merge(3, [alone, alone.model_copy(update={"source": "other"})], MergePolicy())
    assert golden.source_ids == {"hubspot": "1"} and golden.source_id == "3"
    assert (golden.company_ids, golden.owner_id, golden.extra) == ([], None, {})
    assert golden.custom == twice.custom == {"bant_budget": "approved"}
    assert golden.title == twice.title == "CTO"


def test_status_lists_the_company_names_held_apart_for_review(monkeypatch, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store(url) as store:
        store.records.commit_page("hubspot", "companies", EntityType.COMPANY, HUBSPOT)
        store.records.commit_page("pipedrive", "organizations", EntityType.COMPANY, PIPEDRIVE)
    monkeypatch.setenv("CRMBRIDGE_DATABASE_URL", url)

    shown = CliRunner().invoke(app, ["status"])
    listed = CliRunner().invoke(app, ["status", "--format", "json"])

    assert shown.exit_code == 0, shown.output
    assert "1 company name shared by several companies" in shown.output and "blue harbor" in shown.output
    assert json.loads(listed.output)["identity_review"] == [{"name": "blue harbor", "records": [
        ["hubspot", "c3", "blueharbor.example"], ["hubspot", "c4", "blue-harbor.example"], ["pipedrive", "o3", None]]}]


NAMES = ("acme", "blue harbor", "kestrel", "northgate")
DOMAINS = ("acme.example", "blueharbor.example", "kestrel.example", "northgate.example", "other.example")


@st.composite
def two_crms(draw: st.DrawFn) -> list[Company]:
    """Companies of two CRMs: names from a small pool (so they collide), a domain unique inside each CRM
    (shared across the two, as the same company's would be) or none."""
    records = []
    for source in ("hubspot", "pipedrive"):
        domains = draw(st.permutations(DOMAINS))
        for n in range(draw(st.integers(0, 5))):
            domain = domains[n] if draw(st.booleans()) else None
            records.append(company(source, f"{source[0]}{n}", draw(st.sampled_from(NAMES)).title(), domain))
    return records


@given(two_crms(), st.randoms(use_true_random=False))
def test_any_two_arrival_orders_of_any_companies_give_the_same_identities(records: list[Company], rnd) -> None:
    shuffled = list(records)
    rnd.shuffle(shuffled)
    assert _replay(records) == _replay(shuffled)
