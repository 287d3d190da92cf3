"""CRM objects through the real hubspot-api-client: lists, reads, writes, batches, archives and merges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    PublicMergeInput,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException, NotFoundException
from hubspot.crm.objects import PublicObjectSearchRequest

OBJECT_TYPES = ("contacts", "companies", "deals", "calls", "emails", "meetings", "notes", "tasks")


def error_body(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def search_ids(client: Any, object_type: str, filters: list[dict[str, Any]]) -> list[str]:
    page = client.crm.objects.search_api.do_search(
        object_type, PublicObjectSearchRequest(filter_groups=[{"filters": filters}], limit=200))
    return [r.id for r in page.results]


# -- lists -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("object_type", OBJECT_TYPES)
def test_every_object_type_lists_into_the_sdk_models(client: Any, hs: Any, all_pages: Any, object_type: str) -> None:
    others = [t for t in ("contacts", "companies", "deals") if t != object_type]
    records = all_pages(client.crm.objects.basic_api.get_page, object_type=object_type, limit=100,
                        associations=others)
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)) == hs.count(object_type), "every live record exactly once"
    assert ids == sorted(ids, key=int), "lists are ordered by id"
    assert all(r.id.isdigit() and r.created_at and r.updated_at and r.archived is False for r in records)
    assert all(r.properties["hs_object_id"] == r.id for r in records)


def test_listing_returns_hubspots_default_properties_when_none_are_asked(client: Any) -> None:
    page = client.crm.contacts.basic_api.get_page(limit=3)
    assert set(page.results[0].properties) == {"createdate", "email", "firstname", "hs_object_id",
                                               "lastmodifieddate", "lastname"}
    page = client.crm.companies.basic_api.get_page(limit=3)
    assert set(page.results[0].properties) == {"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"}


def test_asked_properties_come_back_with_nulls_for_empty_values(client: Any) -> None:
    page = client.crm.contacts.basic_api.get_page(limit=100, properties=["bant_budget", "jobtitle", "nonexistent"])
    props = [r.properties for r in page.results]
    assert all("bant_budget" in p and "jobtitle" in p for p in props)
    assert any(p["bant_budget"] is None for p in props)
    assert all("nonexistent" not in p for p in props), "unknown names are left out, as HubSpot does"


def test_inline_associations_use_the_v3_shape_with_primary_and_unlabeled_types(
        client: Any, hs: Any, all_pages: Any) -> None:
    contacts = all_pages(client.crm.contacts.basic_api.get_page, limit=100, associations=["companies", "deals"])
    with_company = [c for c in contacts if c.associations and "companies" in c.associations]
    assert with_company
    for contact in with_company:
        rows = contact.associations["companies"].results
        assert {r.type for r in rows} <= {"contact_to_company", "contact_to_company_unlabeled"}
        assert sum(r.type == "contact_to_company" for r in rows) == 1, "exactly one primary company"
        assert {r.id for r in rows} == set(hs.associations("contacts", contact.id, "companies"))
    dealt = [c for c in contacts if c.associations and "deals" in c.associations]
    assert dealt and all(r.type == "contact_to_deal" for c in dealt for r in c.associations["deals"].results)


def test_a_limit_above_one_hundred_is_refused_with_hubspots_validation_error(http: Any) -> None:
    answer = http("GET", "/crm/v3/objects/contacts?limit=101")
    assert answer.status == 400
    assert answer.body["status"] == "error" and answer.body["category"] == "VALIDATION_ERROR"
    assert "limit" in answer.body["message"] and answer.body["correlationId"]


def test_an_unknown_object_type_answers_like_hubspot(http: Any) -> None:
    answer = http("GET", "/crm/v3/objects/butterflies")
    assert answer.status == 400
    assert answer.body["message"] == "Unable to infer object type from: butterflies"


def test_requests_without_a_bearer_token_get_hubspots_401(client: Any, http: Any) -> None:
    answer = http("GET", "/crm/v3/objects/contacts", token=None)
    assert answer.status == 401
    assert answer.body["category"] == "INVALID_AUTHENTICATION"
    assert answer.body["message"].startswith("Authentication credentials not found")


def test_a_token_the_sandbox_does_not_know_gets_hubspots_401(http: Any) -> None:
    answer = http("GET", "/crm/v3/objects/contacts", token="pat-na1-somebody-elses")
    assert answer.status == 401 and answer.body["category"] == "INVALID_AUTHENTICATION"
    assert http("GET", "/crm/v3/objects/contacts").status == 200


def test_the_sandbox_accepts_the_tokens_it_was_given_and_no_others(make_sandbox: Any) -> None:
    _, _, http = make_sandbox(contacts=20, hubspot_token="pat-legacy")
    assert http("GET", "/crm/v3/objects/contacts", token="another").status == 401
    assert http("GET", "/crm/v3/objects/contacts", token="pat-legacy").status == 200
    assert http("GET", "/crm/v3/objects/contacts", token="sandbox").status == 200


SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "contracts" / "hubspot" / "samples"


def test_a_token_without_the_scope_a_call_needs_gets_hubspots_403(make_sandbox: Any) -> None:
    _, _, http = make_sandbox(contacts=20, hubspot_token_scopes={"pat-contacts": ["crm.objects.contacts.read"]})
    read = http("GET", "/crm/v3/objects/contacts", token="pat-contacts")
    assert read.status == 200
    for method, path, body in [("GET", "/crm/v3/objects/deals", None),
                               ("PATCH", f"/crm/v3/objects/contacts/{read.body['results'][0]['id']}",
                                {"properties": {"jobtitle": "CFO"}}),
                               ("GET", "/crm/v3/schemas", None)]:
        answer = http(method, path, body, token="pat-contacts")
        assert answer.status == 403, path
        assert answer.body["category"] == "MISSING_SCOPES"
        assert answer.body["message"] == "One or more of the following scopes are required."
        assert answer.body["context"]["requiredGranularScopes"]
    sample = SAMPLES / "metadata-err-schemas-scope.json"
    if sample.exists():  # the same keys as HubSpot's own answer
        expected = json.loads(sample.read_text())
        assert set(answer.body) == set(expected) and set(answer.body["context"]) == set(expected["context"])
    assert http("GET", "/crm/v3/objects/deals", token="sandbox").status == 200, "default tokens hold every scope"


def test_reading_associations_needs_the_scopes_of_both_ends(make_sandbox: Any) -> None:
    server, _, http = make_sandbox(contacts=20, hubspot_token_scopes={
        "pat-contacts": ["crm.objects.contacts.read"],
        "pat-both": ["crm.objects.contacts.read", "crm.objects.companies.read"]})
    contact = server.vendor("hubspot").ids("contacts")[0]
    path, body = "/crm/v4/associations/contacts/companies/batch/read", {"inputs": [{"id": contact}]}
    refused = http("POST", path, body, token="pat-contacts")
    assert refused.status == 403 and refused.body["context"]["requiredGranularScopes"] == [
        "crm.objects.companies.read"]
    assert http("POST", path, body, token="pat-both").status in (200, 207)


# -- single records ----------------------------------------------------------------------------------------


def test_values_are_rendered_in_hubspots_vocabulary(client: Any) -> None:
    companies = client.crm.companies.basic_api.get_page(
        limit=100, properties=["industry", "country", "numberofemployees", "hs_is_target_account", "tech_stack",
                               "renewal_date", "annualrevenue"]).results
    props = [c.properties for c in companies]
    industries = {p["industry"] for p in props} - {None}
    assert industries and all(i.isupper() for i in industries)
    assert {p["country"] for p in props} & {"United States", "Germany", "United Kingdom"}
    assert all(p["numberofemployees"].isdigit() for p in props)
    assert {p["hs_is_target_account"] for p in props} <= {"true", "false"}
    renewals = [p["renewal_date"] for p in props if p["renewal_date"]]
    assert renewals and all(len(d) == 10 and d[4] == "-" for d in renewals), "date-only values are YYYY-MM-DD"
    stacks = [p["tech_stack"] for p in props if p["tech_stack"]]
    assert stacks and all(s == s.lower() for s in stacks)
    contact = client.crm.contacts.basic_api.get_page(limit=1, properties=["createdate"]).results[0]
    stamp = contact.properties["createdate"]
    assert len(stamp) == 24 and stamp.endswith("Z") and stamp[19] == ".", "ISO with milliseconds"


def test_read_by_id_and_by_email(client: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[5]
    email = hs.get("contacts", contact_id)["email"]
    by_id = client.crm.contacts.basic_api.get_by_id(contact_id, properties=["email"])
    by_email = client.crm.contacts.basic_api.get_by_id(email.upper(), id_property="email")
    assert by_id.id == by_email.id == contact_id
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id("999")


def test_create_with_an_association_then_read_it_back(client: Any, hs: Any) -> None:
    company_id = hs.ids("companies")[0]
    created = client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "new.lead@example.org", "firstname": "New", "bant_budget": "approved"},
        associations=[{"to": {"id": company_id},
                       "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]))
    assert created.properties["email"] == "new.lead@example.org"
    assert created.properties["createdate"] == created.properties["lastmodifieddate"]
    assert hs.get("contacts", created.id)["lifecyclestage"] == "lead", "HubSpot's default for new contacts"
    assert hs.associations("contacts", created.id, "companies") == [company_id]
    assert created.id in hs.associations("companies", company_id, "contacts")


def test_creating_a_contact_with_a_taken_email_is_a_conflict(client: Any, hs: Any, http: Any) -> None:
    email = hs.get("contacts", hs.ids("contacts")[0])["email"]
    answer = http("POST", "/crm/v3/objects/contacts", {"properties": {"email": email.upper()}})
    assert answer.status == 409
    assert answer.body["category"] == "CONFLICT"
    assert answer.body["message"] == f"Contact already exists. Existing ID: {hs.ids('contacts')[0]}"


def test_update_changes_values_and_stamps_last_modified(client: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[3]
    before = hs.get("contacts", contact_id)["lastmodifieddate"]
    updated = client.crm.contacts.basic_api.update(contact_id, SimplePublicObjectInput(
        properties={"jobtitle": "Chief Revenue Officer", "project_status": "current"}))
    assert updated.properties["jobtitle"] == "Chief Revenue Officer"
    after = hs.get("contacts", contact_id)
    assert after["project_status"] == "current"
    assert after["lastmodifieddate"] > before


def test_an_update_that_changes_nothing_keeps_last_modified(client: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[3]
    record = hs.get("contacts", contact_id)
    client.crm.contacts.basic_api.update(contact_id, SimplePublicObjectInput(
        properties={"firstname": record["firstname"]}))
    assert hs.get("contacts", contact_id)["lastmodifieddate"] == record["lastmodifieddate"]


def test_invalid_values_are_refused_with_hubspots_property_errors(http: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[0]
    answer = http("PATCH", f"/crm/v3/objects/contacts/{contact_id}",
                  {"properties": {"first000name": "x", "lifecyclestage": "hot", "hs_object_id": "1"}})
    assert answer.status == 400 and answer.body["category"] == "VALIDATION_ERROR"
    codes = {e["code"]: e["context"]["propertyName"][0] for e in answer.body["errors"]}
    assert codes == {"PROPERTY_DOESNT_EXIST": "first000name", "INVALID_OPTION": "lifecyclestage",
                     "READ_ONLY_VALUE": "hs_object_id"}
    assert answer.body["message"].startswith("Property values were not valid: [{")


def test_a_date_only_value_must_be_midnight_utc(http: Any, hs: Any) -> None:
    company_id = hs.ids("companies")[0]
    midnight = http("PATCH", f"/crm/v3/objects/companies/{company_id}", {"properties": {"renewal_date": 1767225600000}})
    assert midnight.status == 200 and hs.get("companies", company_id)["renewal_date"] == "2026-01-01"
    noon = http("PATCH", f"/crm/v3/objects/companies/{company_id}", {"properties": {"renewal_date": 1767268800000}})
    assert noon.status == 400 and noon.body["errors"][0]["code"] == "INVALID_DATE"


def test_lifecycle_stage_only_moves_forward_unless_cleared_first(client: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[0]
    hs.update("contacts", contact_id, {"lifecyclestage": "opportunity"})
    client.crm.contacts.basic_api.update(contact_id, SimplePublicObjectInput(properties={"lifecyclestage": "lead"}))
    assert hs.get("contacts", contact_id)["lifecyclestage"] == "opportunity"
    client.crm.contacts.basic_api.update(contact_id, SimplePublicObjectInput(properties={"lifecyclestage": ""}))
    client.crm.contacts.basic_api.update(contact_id, SimplePublicObjectInput(properties={"lifecyclestage": "lead"}))
    assert hs.get("contacts", contact_id)["lifecyclestage"] == "lead"


def test_deal_stage_sets_the_closed_flags(client: Any, hs: Any) -> None:
    deal_id = hs.ids("deals")[0]
    client.crm.deals.basic_api.update(deal_id, SimplePublicObjectInput(properties={"dealstage": "closedwon"}))
    deal = hs.get("deals", deal_id)
    assert (deal["hs_is_closed"], deal["hs_is_closed_won"]) == ("true", "true")
    answer = client.crm.deals.basic_api.get_by_id(deal_id, properties=["dealstage", "pipeline"])
    assert answer.properties["pipeline"] == "default"


# -- archive ---------------------------------------------------------------------------------------------------


def test_archived_records_leave_lists_and_search_and_appear_in_the_archived_list(
        client: Any, hs: Any, all_pages: Any) -> None:
    victim = hs.ids("contacts")[10]
    live_before = hs.count("contacts")
    client.crm.contacts.basic_api.archive(victim)
    live = [r.id for r in all_pages(client.crm.contacts.basic_api.get_page, limit=100)]
    assert victim not in live and len(live) == live_before - 1 == hs.count("contacts")
    archived = all_pages(client.crm.contacts.basic_api.get_page, limit=100, archived=True)
    assert [r.id for r in archived] == [victim]
    assert archived[0].archived is True and archived[0].archived_at is not None
    assert victim not in search_ids(client, "contacts", [{"propertyName": "hs_object_id", "operator": "EQ",
                                                          "value": victim}])
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id(victim)
    assert client.crm.contacts.basic_api.get_by_id(victim, archived=True).archived is True


def test_an_archived_records_links_are_hidden_from_the_other_side(hs: Any) -> None:
    company_id = next(c for c in hs.ids("companies") if hs.associations("companies", c, "contacts"))
    contact_id = hs.associations("companies", company_id, "contacts")[0]
    hs.archive("contacts", contact_id)
    assert contact_id not in hs.associations("companies", company_id, "contacts")


# -- batch -----------------------------------------------------------------------------------------------------


def test_batch_read_answers_207_with_the_ids_it_could_not_find(client: Any, hs: Any) -> None:
    ids = hs.ids("contacts")[:3]
    answer = client.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in [*ids, "404404"]], properties=["email"],
        properties_with_history=[]))
    assert sorted(r.id for r in answer.results) == sorted(ids)
    assert answer.num_errors == 1
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    assert answer.errors[0].context["ids"] == ["404404"]


def test_batch_read_by_email(client: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[7]
    email = hs.get("contacts", contact_id)["email"]
    answer = client.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=email)], id_property="email", properties=["email"],
        properties_with_history=[]))
    assert [r.id for r in answer.results] == [contact_id]


def test_batches_above_one_hundred_inputs_are_refused(http: Any) -> None:
    inputs = [{"id": str(i)} for i in range(101)]
    for action in ("read", "update", "archive"):
        answer = http("POST", f"/crm/v3/objects/contacts/batch/{action}", {"inputs": inputs})
        assert answer.status == 400, action
        assert answer.body["category"] == "VALIDATION_ERROR"


def test_batch_update_with_duplicate_ids_is_refused_like_hubspot(http: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[0]
    answer = http("POST", "/crm/v3/objects/contacts/batch/update", {"inputs": [
        {"id": contact_id, "properties": {"firstname": "A"}}, {"id": contact_id, "properties": {"firstname": "B"}}]})
    assert answer.status == 400
    assert answer.body["message"] == f"Duplicate IDs found in batch input: [{contact_id}]. IDs must be unique"
    assert answer.body["context"] == {"ids": [contact_id]}


def test_batch_update_applies_what_it_can_and_reports_the_rest(client: Any, hs: Any) -> None:
    ids = hs.ids("contacts")[:2]
    answer = client.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
        SimplePublicObjectBatchInput(id=ids[0], properties={"hs_lead_status": "CONNECTED"}),
        SimplePublicObjectBatchInput(id=ids[1], properties={"hs_lead_status": "CONNECTED"}),
        SimplePublicObjectBatchInput(id="unknownIdentifier888", properties={"hs_lead_status": "CONNECTED"})]))
    assert sorted(r.id for r in answer.results) == sorted(ids)
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    assert answer.errors[0].context["ids"] == ["unknownIdentifier888"]
    assert all(hs.get("contacts", i)["hs_lead_status"] == "CONNECTED" for i in ids)


def test_batch_update_with_an_unknown_property_changes_nothing(http: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[0]
    before = hs.get("contacts", contact_id)
    answer = http("POST", "/crm/v3/objects/contacts/batch/update", {"inputs": [
        {"id": contact_id, "properties": {"firstname": "Changed", "last000name": "x"}}]})
    assert answer.status == 400
    assert answer.body["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert hs.get("contacts", contact_id) == before


def test_batch_create_reports_an_existing_email_as_a_conflict(client: Any, hs: Any) -> None:
    taken_id = hs.ids("contacts")[0]
    taken = hs.get("contacts", taken_id)["email"]
    answer = client.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        SimplePublicObjectBatchInputForCreate(properties={"email": "fresh@example.org", "firstname": "Fresh"},
                                              associations=[]),
        SimplePublicObjectBatchInputForCreate(properties={"email": taken}, associations=[])]))
    assert [r.properties["email"] for r in answer.results] == ["fresh@example.org"]
    assert answer.errors[0].category == "CONFLICT"
    assert answer.errors[0].context["existingId"] == [taken_id]


def test_batch_upsert_by_email_updates_known_and_creates_new_contacts(client: Any, hs: Any) -> None:
    known_id = hs.ids("contacts")[1]
    known = hs.get("contacts", known_id)["email"]
    before = hs.count("contacts")
    answer = client.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        SimplePublicObjectBatchInputUpsert(id=known, id_property="email", properties={"bant_need": "confirmed"}),
        SimplePublicObjectBatchInputUpsert(id="brand.new@example.org", id_property="email",
                                           properties={"firstname": "Brand"})]))
    by_new = {r.new: r for r in answer.results}
    assert by_new[False].id == known_id and by_new[True].properties["email"] == "brand.new@example.org"
    assert hs.count("contacts") == before + 1
    assert hs.get("contacts", known_id)["bant_need"] == "confirmed"


def test_batch_archive_archives_every_input(client: Any, hs: Any) -> None:
    ids = hs.ids("deals")[:3]
    client.crm.deals.batch_api.archive(BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=i)
                                                                              for i in ids]))
    assert hs.count("deals", archived=True) == 3
    assert set(hs.ids("deals", archived=True)) == set(ids)


# -- merge -----------------------------------------------------------------------------------------------------


def test_a_merge_makes_a_new_contact_that_both_old_ids_lead_to(client: Any, hs: Any, http: Any,
                                                                all_pages: Any) -> None:
    with_company = [c for c in hs.ids("contacts") if hs.associations("contacts", c, "companies")]
    primary_id, merged_id = with_company[0], with_company[1]
    linked = set(hs.associations("contacts", primary_id, "companies")) | set(
        hs.associations("contacts", merged_id, "companies"))
    before = hs.get("contacts", primary_id)
    count = hs.count("contacts")

    result = client.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=primary_id,
                                                                  object_id_to_merge=merged_id))

    new_id = result.id
    assert new_id not in (primary_id, merged_id), "HubSpot gives the merged record a new id"
    listed = [r.id for r in all_pages(client.crm.contacts.basic_api.get_page, limit=100)]
    assert new_id in listed and primary_id not in listed and merged_id not in listed
    assert hs.count("contacts") == count - 1
    for old in (primary_id, merged_id):  # a GET of either old id answers with the new record
        survivor = client.crm.contacts.basic_api.get_by_id(old, properties=["hs_merged_object_ids", "email"])
        assert survivor.id == new_id
        assert set(survivor.properties["hs_merged_object_ids"].split(";")) == {primary_id, merged_id}
        assert survivor.properties["email"] == before["email"], "the primary's values win"
    batch = http("POST", "/crm/v3/objects/contacts/batch/read",
                 {"inputs": [{"id": primary_id}, {"id": merged_id}], "properties": ["email"]})
    assert batch.status == 200 and [r["id"] for r in batch.body["results"]] == [new_id]
    assert set(hs.associations("contacts", new_id, "companies")) == linked
    assert hs.associations("contacts", primary_id, "companies") == []
    assert hs.count("contacts", archived=True) == 0, "a merge is not an archive"


def test_a_merged_contact_is_searchable_only_under_its_new_id(client: Any, hs: Any) -> None:
    primary_id, merged_id = hs.ids("contacts")[:2]
    new_id = hs.merge("contacts", primary_id, merged_id)
    found = search_ids(client, "contacts", [{"propertyName": "hs_object_id", "operator": "IN",
                                             "values": [primary_id, merged_id, new_id]}])
    assert found == [new_id]


def test_merging_companies_moves_their_contacts_to_the_new_company(client: Any, hs: Any) -> None:
    companies = [c for c in hs.ids("companies") if hs.associations("companies", c, "contacts")]
    primary_id, merged_id = companies[0], companies[1]
    moved = hs.associations("companies", merged_id, "contacts")
    new_id = client.crm.companies.basic_api.merge(PublicMergeInput(primary_object_id=primary_id,
                                                                   object_id_to_merge=merged_id)).id
    assert set(moved) <= set(hs.associations("companies", new_id, "contacts"))
    assert all(new_id in hs.associations("contacts", c, "companies") for c in moved)
    assert hs.get("companies", merged_id)["hs_object_id"] == new_id


def test_merging_deals_lists_both_old_ids(client: Any, hs: Any) -> None:
    primary_id, merged_id = hs.ids("deals")[:2]
    new_id = hs.merge("deals", primary_id, merged_id)
    assert set(hs.get("deals", primary_id)["hs_merged_object_ids"].split(";")) == {primary_id, merged_id}
    assert hs.get("deals", new_id)["hs_object_id"] == new_id


def test_merging_an_unknown_record_is_not_found(http: Any, hs: Any) -> None:
    answer = http("POST", "/crm/v3/objects/contacts/merge",
                  {"primaryObjectId": hs.ids("contacts")[0], "objectIdToMerge": "123"})
    assert answer.status == 404 and answer.body["category"] == "OBJECT_NOT_FOUND"


@pytest.mark.parametrize(("path", "body"), [
    ("/crm/v3/objects/contacts/batch/read", {"inputs": [1, 2]}),
    ("/crm/v3/objects/contacts/batch/update", {"inputs": "all"}),
    ("/crm/v3/objects/contacts", {"properties": "email=x"}),
    ("/crm/v3/objects/contacts/search", {"filterGroups": [{"filters": ["email"]}]}),
    ("/crm/v4/associations/contacts/companies/batch/read", {"inputs": [None]}),
])
def test_bodies_of_the_wrong_shape_get_400_not_500(http: Any, path: str, body: Any) -> None:
    answer = http("POST", path, body)
    assert answer.status == 400
    assert answer.body["category"] == "VALIDATION_ERROR"
