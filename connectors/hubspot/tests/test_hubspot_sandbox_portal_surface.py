"""What a third-party HubSpot integration reads first, served as a real portal serves it: custom object
schemas (none), tickets and line items (empty but whole object types), the legacy v1 property routes,
and batch limits answered in HubSpot's error shape."""

from __future__ import annotations

from typing import Any

import pytest
from hubspot.crm.objects import PublicObjectSearchRequest


def test_a_portal_without_custom_objects_lists_no_schemas(client: Any, http: Any) -> None:
    answer = http("GET", "/crm/v3/schemas")
    assert (answer.status, answer.body) == (200, {"results": []})
    assert client.crm.schemas.core_api.get_all().results == []
    assert http("GET", "/crm/v3/schemas/2-1234567").status == 404


@pytest.mark.parametrize("object_type", ["tickets", "line_items"])
def test_tickets_and_line_items_are_empty_object_types_not_errors(client: Any, http: Any, object_type: str) -> None:
    assert http("GET", f"/crm/v3/objects/{object_type}").body == {"results": []}
    search = http("POST", f"/crm/v3/objects/{object_type}/search", {"limit": 10})
    assert (search.status, search.body["total"]) == (200, 0)
    batch = http("POST", f"/crm/v3/objects/{object_type}/batch/read", {"inputs": [{"id": "1"}], "properties": []})
    assert batch.status == 207 and batch.body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    properties = client.crm.properties.core_api.get_all(object_type).results
    assert {"hs_object_id", "createdate", "hs_lastmodifieddate"} <= {p.name for p in properties}


def test_a_ticket_can_be_created_linked_to_a_contact_and_read_back_through_associations(
        client: Any, hs: Any, http: Any) -> None:
    contact = hs.ids("contacts")[0]
    pipeline = client.crm.pipelines.pipelines_api.get_all("tickets").results[0]
    assert pipeline.label == "Support Pipeline" and pipeline.stages[0].label == "New"
    created = http("POST", "/crm/v3/objects/tickets", {
        "properties": {"subject": "Cannot log in", "hs_pipeline": pipeline.id,
                       "hs_pipeline_stage": pipeline.stages[0].id, "hs_ticket_priority": "HIGH"},
        "associations": [{"to": {"id": contact},
                          "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}]}]})
    assert created.status == 201, created.body
    ticket = created.body["id"]
    read = http("GET", f"/crm/v3/objects/contacts/{contact}?associations=tickets")
    assert read.status == 200
    assert [r["id"] for r in read.body["associations"]["tickets"]["results"]] == [ticket]
    v4 = http("POST", "/crm/v4/associations/contacts/tickets/batch/read", {"inputs": [{"id": contact}]})
    assert v4.status == 200 and v4.body["results"][0]["to"][0]["toObjectId"] == int(ticket)
    found = client.crm.objects.search_api.do_search("tickets", PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hs_ticket_priority", "operator": "EQ", "value": "HIGH"}]}]))
    assert [r.id for r in found.results] == [ticket]
    bad_stage = http("POST", "/crm/v3/objects/tickets", {"properties": {"subject": "x", "hs_pipeline_stage": "99"}})
    assert bad_stage.status == 400, "a stage the pipelines do not have is refused"


def test_associations_to_tickets_answer_instead_of_unable_to_infer_the_object_type(http: Any, hs: Any) -> None:
    for source in ("contacts", "companies", "deals"):
        answer = http("POST", f"/crm/v4/associations/{source}/tickets/batch/read",
                      {"inputs": [{"id": hs.ids(source)[0]}]})
        assert answer.status in (200, 207), (source, answer.body)
    listed = http("GET", "/crm/v3/objects/deals?associations=line_items,tickets&limit=5")
    assert listed.status == 200 and len(listed.body["results"]) == 5
    unknown = http("GET", "/crm/v3/objects/contacts?associations=widgets")
    assert unknown.status == 400 and "Unable to infer object type" in unknown.body["message"]


def test_the_legacy_companies_properties_route_answers_a_bare_list(http: Any) -> None:
    answer = http("GET", "/properties/v1/companies/properties")
    assert answer.status == 200 and isinstance(answer.body, list)
    domain = next(p for p in answer.body if p["name"] == "domain")
    assert domain["groupName"] and domain["type"] == "string" and isinstance(domain["createdAt"], int)
    assert http("GET", "/properties/v1/contacts/properties/named/email").body["name"] == "email"
    assert {g["name"] for g in http("GET", "/properties/v1/deals/groups").body} >= {"dealinformation"}
    assert http("GET", "/properties/v1/tickets/properties").status == 404


def test_a_batch_read_of_more_than_100_ids_fails_as_hubspot_does(http: Any, hs: Any) -> None:
    ids = hs.ids("contacts")[:101]
    answer = http("POST", "/crm/v3/objects/contacts/batch/read", {"inputs": [{"id": i} for i in ids]})
    assert answer.status == 400
    assert answer.body["status"] == "error" and answer.body["category"] == "VALIDATION_ERROR"
    assert "100" in answer.body["message"] and answer.body["correlationId"]
    assert http("POST", "/crm/v3/objects/contacts/batch/read",
                {"inputs": [{"id": i} for i in ids[:100]]}).status == 200


def test_id_property_must_name_a_unique_property(http: Any, hs: Any) -> None:
    email = hs.get("contacts", hs.ids("contacts")[0])["email"]
    by_email = http("GET", f"/crm/v3/objects/contacts/{email}?idProperty=email")
    assert by_email.status == 200 and by_email.body["id"] == hs.ids("contacts")[0]
    first_name = hs.get("contacts", hs.ids("contacts")[0])["firstname"]
    for answer in (http("GET", f"/crm/v3/objects/contacts/{first_name}?idProperty=firstname"),
                   http("POST", "/crm/v3/objects/contacts/batch/read",
                        {"idProperty": "firstname", "inputs": [{"id": first_name}]})):
        assert answer.status == 400 and answer.body["category"] == "VALIDATION_ERROR"
