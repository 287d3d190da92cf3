"""One identity across CRMs: matching, the one-record-per-source rule, and the merge policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crmbridge.errors import ConfigError
from crmbridge.identity import MergePolicy, company_name_key, merge
from crmbridge.model import Company, EntityType, LifecycleStage, Person
from crmbridge.store import Store

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def person(source: str, sid: str, email: str | None, at: datetime = T0, **kw) -> Person:
    return Person(source=source, source_id=sid, email=email, updated_at=at, **kw)


def company(source: str, sid: str, name: str, domain: str | None, **kw) -> Company:
    return Company(source=source, source_id=sid, name=name, domain=domain, updated_at=T0, **kw)


def test_the_same_email_in_two_crms_is_one_person_keeping_both_ids(store: Store) -> None:
    store.commit_page("hubspot", "contacts", EntityType.PERSON, [person("hubspot", "1", "ada@acme.example")])
    store.commit_page("pipedrive", "persons", EntityType.PERSON, [person("pipedrive", "77", "ada@acme.example")])

    assert store.identity_count(EntityType.PERSON) == 1
    ((cid, members),) = list(store.identities(EntityType.PERSON))
    assert {(m.source, m.source_id) for m in members} == {("hubspot", "1"), ("pipedrive", "77")}
    assert store.canonical_id(EntityType.PERSON, "pipedrive", "77") == cid


def test_the_order_in_which_crms_are_read_does_not_matter(store: Store) -> None:
    store.commit_page("pipedrive", "persons", EntityType.PERSON, [person("pipedrive", "77", "ada@acme.example")])
    store.commit_page("hubspot", "contacts", EntityType.PERSON, [person("hubspot", "1", "ada@acme.example")])
    assert store.identity_count(EntityType.PERSON) == 1


def test_an_email_change_in_one_crm_does_not_create_a_second_person(store: Store) -> None:
    store.commit_page("hubspot", "contacts", EntityType.PERSON, [person("hubspot", "1", "ada@acme.example")])
    store.commit_page("pipedrive", "persons", EntityType.PERSON, [person("pipedrive", "77", "ada@acme.example")])
    store.commit_page("hubspot", "contacts", EntityType.PERSON,
                      [person("hubspot", "1", "ada.lovelace@acme.example", at=T0 + timedelta(days=1))])

    assert store.identity_count(EntityType.PERSON) == 1
    assert store.canonical_id(EntityType.PERSON, "hubspot", "1") == store.canonical_id(
        EntityType.PERSON, "pipedrive", "77")


def test_duplicates_inside_one_crm_stay_separate_identities(store: Store) -> None:
    store.commit_page("hubspot", "contacts", EntityType.PERSON,
                      [person("hubspot", "1", "ada@acme.example"), person("hubspot", "2", "ada@acme.example")])
    store.commit_page("pipedrive", "persons", EntityType.PERSON, [person("pipedrive", "77", "ada@acme.example")])
    assert store.identity_count(EntityType.PERSON) == 2


def test_companies_match_by_domain_then_by_name_but_never_by_free_mail(store: Store) -> None:
    store.commit_page("hubspot", "companies", EntityType.COMPANY, [
        company("hubspot", "c1", "Acme GmbH", "acme.example"),
        company("hubspot", "c2", "Northgate Logistics", None),
        company("hubspot", "c3", "Solo Consulting", "gmail.com"),
    ])
    store.commit_page("pipedrive", "organizations", EntityType.COMPANY, [
        company("pipedrive", "o1", "ACME", "acme.example"),
        company("pipedrive", "o2", "Northgate Logistics Ltd.", "northgate.example"),
        company("pipedrive", "o3", "Other Freelancer", "gmail.com"),
    ])
    pairs = {frozenset(m.source_id for m in members) for _, members in store.identities(EntityType.COMPANY)}
    assert frozenset({"c1", "o1"}) in pairs
    assert frozenset({"c2", "o2"}) in pairs
    assert frozenset({"c3"}) in pairs and frozenset({"o3"}) in pairs


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
