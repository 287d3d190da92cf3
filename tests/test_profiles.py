"""Profiles for scoring: one merged person, their company, and the activities of all their records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crmbridge.model import Activity, ActivityKind, Company, EntityType, Person
from crmbridge.profiles import ProfileReader
from crmbridge.store import Store

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _seed(store: Store) -> None:
    store.records.commit_page("hubspot", "companies", EntityType.COMPANY, [
        Company(source="hubspot", source_id="c1", name="Acme", domain="acme.example", employees=250)])
    store.records.commit_page("pipedrive", "organizations", EntityType.COMPANY,
                              [Company(source="pipedrive", source_id="o1", name="ACME GmbH", domain="acme.example")])
    store.records.commit_page("hubspot", "contacts", EntityType.PERSON, [
        Person(source="hubspot", source_id="p1", email="ada@acme.example", company_ids=["c1"], updated_at=T0),
        Person(source="hubspot", source_id="p2", email="bob@acme.example", company_ids=["c1"], updated_at=T0)])
    store.records.commit_page("pipedrive", "persons", EntityType.PERSON, [
        Person(source="pipedrive", source_id="9", email="ada@acme.example", title="CTO", company_ids=["o1"],
               updated_at=T0 + timedelta(days=1))])
    store.records.commit_page("hubspot", "web_events", EntityType.ACTIVITY, [
        Activity(source="hubspot", source_id="e1", kind=ActivityKind.PAGE_VIEW, occurred_at=T0, person_ids=["p1"]),
        Activity(source="hubspot", source_id="e2", kind=ActivityKind.PAGE_VIEW, occurred_at=T0, person_ids=["p2"])])
    store.records.commit_page("pipedrive", "activities", EntityType.ACTIVITY, [
        Activity(source="pipedrive", source_id="a1", kind=ActivityKind.CALL, occurred_at=T0 + timedelta(hours=1),
                 person_ids=["9"])])


def test_a_person_in_two_crms_is_one_profile_with_both_crms_activities(store: Store) -> None:
    _seed(store)
    reader = ProfileReader(store)
    (ada,) = reader.by_email("ada@acme.example")

    assert ada.profile.person.source_ids == {"hubspot": "p1", "pipedrive": "9"}
    assert ada.profile.person.title == "CTO"
    assert [a.source_id for a in ada.profile.activities] == ["e1", "a1"]
    assert ada.profile.company is not None and ada.profile.company.employees == 250
    assert ada.profile.company.source_ids == {"hubspot": "c1", "pipedrive": "o1"}


def test_reading_everyone_yields_each_identity_once(store: Store) -> None:
    _seed(store)
    everyone = [p for batch in ProfileReader(store).all(batch=1) for p in batch]
    assert sorted(p.profile.person.email for p in everyone) == ["ada@acme.example", "bob@acme.example"]
    assert len({p.person_id for p in everyone}) == 2


def test_archived_activities_do_not_count(store: Store) -> None:
    _seed(store)
    store.records.commit_page("hubspot", "web_events", EntityType.ACTIVITY, [], archived_ids=["e1"])
    (ada,) = ProfileReader(store).by_email("ada@acme.example")
    assert [a.source_id for a in ada.profile.activities] == ["a1"]


def test_a_chunk_builds_the_golden_record_merge_builds(store: Store) -> None:
    """A re-score copies a one-record identity's person itself; it must be ``merge``'s golden record."""
    from crmbridge.identity import merge
    from crmbridge.profiles import _golden
    from crmbridge.store.decode import DECODERS

    full = Person(source="hubspot", source_id="p7", email="eve@acme.example", title="VP Sales", company_ids=["c1"],
                  owner_id="u1", merged_ids=["p6"], custom={"bant_budget": "approved"}, extra={"hs_x": 1},
                  updated_at=T0, lifecycle_stage="lead")
    for person in (full, Person(source="pipedrive", source_id="3")):
        decoded = DECODERS[Person](person.model_dump_json())
        assert isinstance(decoded, Person)
        golden, expected = _golden(42, decoded), merge(42, [decoded], ProfileReader(store).policy)
        assert golden.__dict__ == expected.__dict__
        assert golden.model_fields_set == expected.model_fields_set
        assert golden == expected


def test_a_rescore_chunk_reads_the_profiles_reading_everyone_gives(store: Store) -> None:
    _seed(store)
    store.records.commit_page("hubspot", "web_events", EntityType.ACTIVITY, [], archived_ids=["e1"])
    reader = ProfileReader(store)
    everyone = {p.person_id: p for batch in reader.all() for p in batch}
    chunked = {p.person_id: p for batch, _ in reader.chunks() for p in batch}
    assert chunked.keys() == everyone.keys()
    for pid, p in chunked.items():
        assert p.profile.person == everyone[pid].profile.person
        assert p.profile.company == everyone[pid].profile.company
        assert [_read(a) for a in p.profile.activities] == [_read(a) for a in everyone[pid].profile.activities]


def _read(a: object) -> tuple[object, ...]:
    """What scoring reads of an activity (record or scoring fact)."""
    return tuple(getattr(a, name) for name in ("source", "source_id", "kind", "occurred_at", "actor", "subject",
                                               "owner_id", "attributes"))
