"""The mapping engine: vendor records become canonical ones, and a bad mapping is caught at load time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from crmbridge.connectors import RawRecord
from crmbridge.errors import ConfigError
from crmbridge.mapping import MappingError, SourceMapping
from crmbridge.model import ActivityKind, ActorKind, LifecycleStage

HUBSPOT = Path(__file__).resolve().parents[1] / "mappings" / "hubspot.yaml"


@pytest.fixture(scope="module")
def hubspot() -> SourceMapping:
    return SourceMapping.load(HUBSPOT)


def contact(**props) -> RawRecord:
    base = {"email": " Ada.Lovelace@Example.COM ", "firstname": "Ada", "lastname": "Lovelace",
            "country": "Germany", "lifecyclestage": "marketingqualifiedlead", "hs_email_optout": "false",
            "lastmodifieddate": "2026-01-05T09:30:00.123Z", "createdate": "1735689600000",
            "project_status": "Current", "hs_analytics_source": "ORGANIC_SEARCH"}
    base.update(props)
    return RawRecord("contacts", "101", base, {"companies": ["7", "8"]})


def test_a_hubspot_contact_becomes_a_canonical_person(hubspot: SourceMapping) -> None:
    person = hubspot.mapper("contacts").map(contact())

    assert person.source == "hubspot" and person.source_id == "101"
    assert person.email == "ada.lovelace@example.com"
    assert (person.country, person.region) == ("DE", "EMEA")
    assert person.lifecycle_stage is LifecycleStage.MQL
    assert person.company_ids == ["7", "8"]
    assert person.custom["project_status"] == "current"
    assert person.unsubscribed is False
    assert person.updated_at == datetime(2026, 1, 5, 9, 30, 0, 123000, tzinfo=UTC)
    assert person.created_at == datetime(2025, 1, 1, tzinfo=UTC)


def test_properties_the_mapping_does_not_name_are_kept_verbatim(hubspot: SourceMapping) -> None:
    person = hubspot.mapper("contacts").map(contact())
    assert person.extra == {"hs_analytics_source": "ORGANIC_SEARCH"}


def test_a_gated_guide_form_submission_is_a_content_download_with_its_type(hubspot: SourceMapping) -> None:
    raw = RawRecord("web_events", "ev-1", {"eventType": "e_submitted_form", "occurredAt": "2026-01-02T10:00:00Z",
                                           "form_name": "Buyer's guide: choosing a CRM", "hs_url": "https://x"},
                    {"contacts": ["101"]})
    activity = hubspot.mapper("web_events").map(raw)
    assert activity.kind is ActivityKind.CONTENT_DOWNLOAD
    assert activity.attributes["content_type"] == "buyers_guide"
    assert activity.actor is ActorKind.PERSON
    assert activity.person_ids == ["101"]


def test_a_contact_us_submission_stays_a_form_submission(hubspot: SourceMapping) -> None:
    raw = RawRecord("web_events", "ev-2", {"eventType": "e_submitted_form", "occurredAt": "2026-01-02T10:00:00Z",
                                           "form_name": "Contact us"}, {"contacts": ["101"]})
    activity = hubspot.mapper("web_events").map(raw)
    assert activity.kind is ActivityKind.FORM_SUBMISSION
    assert activity.attributes["form_name"] == "Contact us"
    assert "content_type" not in activity.attributes


def test_a_meeting_booked_on_a_scheduling_page_is_the_leads_own_action(hubspot: SourceMapping) -> None:
    booked = RawRecord("meetings", "m1", {"hs_timestamp": "2026-01-02T10:00:00Z",
                                          "hs_meeting_source": "MEETINGS_PUBLIC"}, {"contacts": ["101"]})
    logged = RawRecord("meetings", "m2", {"hs_timestamp": "2026-01-02T10:00:00Z",
                                          "hs_meeting_source": "CRM_UI", "hubspot_owner_id": "9"}, {})
    mapper = hubspot.mapper("meetings")
    assert mapper.map(booked).kind is ActivityKind.MEETING_BOOKED
    assert mapper.map(booked).actor is ActorKind.PERSON
    assert mapper.map(logged).kind is ActivityKind.MEETING
    assert mapper.map(logged).actor is ActorKind.OWNER


def test_company_domains_are_normalised_from_domain_or_website(hubspot: SourceMapping) -> None:
    mapper = hubspot.mapper("companies")
    a = mapper.map(RawRecord("companies", "1", {"domain": "WWW.Acme.example", "industry": "COMPUTER_SOFTWARE",
                                                "numberofemployees": "250", "tech_stack": "AWS;Slack"}))
    b = mapper.map(RawRecord("companies", "2", {"website": "https://www.acme.example/about",
                                                "industry": "SOMETHING_NEW"}))
    assert a.domain == b.domain == "acme.example"
    assert (a.industry, b.industry) == ("software", "other")
    assert a.employees == 250 and a.technologies == ["aws", "slack"]


def test_a_record_with_an_unreadable_value_is_reported_not_stored_wrong(hubspot: SourceMapping) -> None:
    good = contact()
    bad = RawRecord("contacts", "102", {"email": "x@y.example", "lastmodifieddate": "next tuesday"})
    mapped, failed = hubspot.map_all([good, bad])
    assert [p.source_id for p in mapped] == ["101"]
    ((raw, error),) = failed
    assert raw.id == "102" and error.field == "updated_at"
    assert isinstance(error, MappingError)


def _bad(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        SourceMapping.from_text(text, name="mappings/bad.yaml")
    return info.value


def test_an_unknown_canonical_field_is_named_with_file_line_and_key() -> None:
    err = _bad("source: crm\nstreams:\n  contacts:\n    entity: person\n    fields:\n      emial: email\n")
    assert (err.file, err.line, err.key) == ("mappings/bad.yaml", 6, "streams.contacts.fields.emial")
    assert "no field 'emial'" in str(err)


def test_an_unknown_transform_is_rejected() -> None:
    err = _bad("source: crm\nstreams:\n  contacts:\n    entity: person\n    fields:\n"
               "      email: {from: email, transform: emale}\n")
    assert err.line == 6 and "unknown transform 'emale'" in str(err)


def test_a_lifecycle_value_that_does_not_exist_is_rejected_before_any_sync() -> None:
    err = _bad("source: crm\nstreams:\n  contacts:\n    entity: person\n    fields:\n"
               "      lifecycle_stage:\n        from: stage\n        values:\n          hot: super_sql\n")
    assert err.line == 9 and err.key == "streams.contacts.fields.lifecycle_stage.values.hot"


def test_an_activity_stream_must_say_what_kind_and_when() -> None:
    err = _bad("source: crm\nstreams:\n  calls:\n    entity: activity\n    fields:\n      subject: title\n")
    assert "'kind' and 'occurred_at'" in str(err)


def test_an_unknown_entity_is_rejected() -> None:
    err = _bad("source: crm\nstreams:\n  contacts:\n    entity: people\n    fields: {}\n")
    assert err.line == 4 and "entity must be one of" in str(err)


def test_a_yes_or_no_setting_that_is_neither_is_rejected_not_read_as_true() -> None:
    err = _bad("source: crm\nstreams:\n  contacts:\n    entity: person\n    fields:\n"
               "      lifecycle_stage:\n        from: stage\n        values: {hot: sql}\n"
               "        passthrough: sometimes\n")
    assert (err.line, err.key) == (9, "streams.contacts.fields.lifecycle_stage.passthrough")
    assert err.message == "expected true or false, got 'sometimes'"


@pytest.mark.parametrize("version", ["2", "'1'", "true"])
def test_only_known_mapping_versions_are_read(version: str) -> None:
    err = _bad(f"source: crm\nversion: {version}\nstreams:\n  contacts:\n    entity: person\n")
    assert (err.line, err.key) == (2, "version") and err.message.startswith("unknown mapping version")


def test_invalid_yaml_points_at_its_line() -> None:
    err = _bad("source: crm\nstreams:\n  contacts: [\n")
    assert err.file == "mappings/bad.yaml" and err.line is not None


def test_custom_fields_named_by_label_resolve_against_the_crm_catalog() -> None:
    text = ("source: crm\nstreams:\n  deals:\n    entity: deal\n    fields: {name: title}\n"
            "    custom:\n      budget: {label: Budget confirmed, transform: boolean}\n")
    mapping = SourceMapping.from_text(text, catalogs={"deals": {"Budget confirmed": "9f1c" * 10}})
    deal = mapping.mapper("deals").map(RawRecord("deals", "5", {"title": "Big", "9f1c" * 10: "yes"}))
    assert deal.custom == {"budget": True}
    assert deal.extra == {}

    with pytest.raises(ConfigError, match="no custom field labelled 'Budget confirmed'"):
        SourceMapping.from_text(text, catalogs={"deals": {}})


def test_date_only_fields_stay_on_their_day(hubspot: SourceMapping) -> None:
    company = hubspot.mapper("companies").map(RawRecord("companies", "1", {"renewal_date": "2026-03-01"}))
    assert company.custom["renewal_date"] == date(2026, 3, 1)
