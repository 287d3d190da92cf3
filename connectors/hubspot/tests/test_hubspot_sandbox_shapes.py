"""Raw answers carry the same members as HubSpot's own bodies (the keys of its published examples)."""

from __future__ import annotations

from typing import Any

RECORD_KEYS = {"id", "properties", "createdAt", "updatedAt", "archived"}
BATCH_KEYS = {"status", "results", "startedAt", "completedAt"}
BATCH_ERROR_KEYS = {"status", "category", "message", "context"}


def test_list_and_search_pages(http: Any) -> None:
    listed = http("GET", "/crm/v3/objects/contacts?limit=2&properties=email").body
    assert set(listed) == {"results", "paging"}
    assert set(listed["paging"]["next"]) == {"after", "link"}
    assert set(listed["results"][0]) == RECORD_KEYS
    found = http("POST", "/crm/v3/objects/contacts/search", {"limit": "2", "properties": ["email"]}).body
    assert set(found) == {"total", "results", "paging"}
    assert set(found["paging"]["next"]) == {"after"}
    assert set(found["results"][0]) == RECORD_KEYS | {"url"}
    assert found["results"][0]["url"].endswith(f"/record/0-1/{found['results'][0]['id']}")


def test_batch_partial_success_and_error_bodies(http: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[0]
    partial = http("POST", "/crm/v3/objects/contacts/batch/update", {"inputs": [
        {"id": contact_id, "properties": {"firstname": "Siena (updated)"}},
        {"id": "unknownIdentifier888", "properties": {"firstname": "x"}}]})
    assert partial.status == 207
    assert set(partial.body) == BATCH_KEYS | {"errors", "numErrors"}
    assert set(partial.body["errors"][0]) == BATCH_ERROR_KEYS
    assert set(partial.body["results"][0]) == RECORD_KEYS | {"url"}
    invalid = http("POST", "/crm/v3/objects/contacts/batch/create", {"inputs": [
        {"properties": {"first000name": "x", "last000name": "y"}}]})
    assert invalid.status == 400
    assert set(invalid.body) == {"status", "message", "correlationId", "errors", "category"}
    assert set(invalid.body["errors"][0]) == {"message", "code", "context"}
    duplicate = http("POST", "/crm/v3/objects/contacts/batch/update", {"inputs": [
        {"id": "123456", "properties": {}}, {"id": "123456", "properties": {}}]})
    assert set(duplicate.body) == {"status", "message", "correlationId", "context", "category"}
    taken = hs.get("contacts", contact_id)["email"]
    conflict = http("POST", "/crm/v3/objects/contacts", {"properties": {"email": taken}})
    assert set(conflict.body) == {"status", "message", "correlationId", "category"}


def test_association_batch_read_body(http: Any, hs: Any) -> None:
    lonely = next(c for c in hs.ids("contacts") if not hs.associations("contacts", c, "companies"))
    linked = next(c for c in hs.ids("contacts") if hs.associations("contacts", c, "companies"))
    answer = http("POST", "/crm/v4/associations/contacts/companies/batch/read",
                  {"inputs": [{"id": linked}, {"id": lonely}]})
    assert answer.status == 207
    assert set(answer.body) == BATCH_KEYS | {"errors", "numErrors"}
    row = answer.body["results"][0]
    assert set(row) == {"from", "to"} and set(row["to"][0]) == {"toObjectId", "associationTypes"}
    assert isinstance(row["to"][0]["toObjectId"], int)
    assert set(row["to"][0]["associationTypes"][0]) == {"category", "typeId", "label"}
    assert set(answer.body["errors"][0]) == BATCH_ERROR_KEYS | {"subCategory"}
    assert set(answer.body["errors"][0]["context"]) == {"fromObjectId", "fromObjectType", "toObjectType"}


def test_metadata_bodies(http: Any) -> None:
    stage = http("GET", "/crm/v3/pipelines/deals/default").body["stages"][0]
    assert set(stage) == {"label", "displayOrder", "metadata", "id", "createdAt", "updatedAt", "writePermissions",
                          "archived"}
    prop = http("GET", "/crm/v3/properties/contacts/email").body
    assert {"name", "label", "type", "fieldType", "description", "groupName", "options", "displayOrder",
            "calculated", "externalOptions", "hasUniqueValue", "hidden", "modificationMetadata", "formField",
            "dataSensitivity", "createdAt", "updatedAt"} <= set(prop)
    group = http("POST", "/crm/v3/properties/contacts/groups",
                 {"name": "integrationcreatedproperties", "label": "Integration Created Properties"})
    assert group.status == 201 and set(group.body) == {"name", "label", "displayOrder", "archived"}
    account = http("GET", "/account-info/v3/details").body
    assert set(account) == {"portalId", "accountType", "timeZone", "companyCurrency", "additionalCurrencies",
                            "utcOffset", "utcOffsetMilliseconds", "uiDomain", "dataHostingLocation"}
    form = http("GET", "/marketing/v3/forms?limit=1").body["results"][0]
    assert set(form) == {"id", "name", "createdAt", "updatedAt", "archived", "fieldGroups", "configuration",
                         "displayOptions", "legalConsentOptions", "formType"}
    event = http("GET", "/events/v3/events?objectType=contact&eventType=e_visited_page&limit=1").body
    assert set(event["results"][0]) == {"objectType", "objectId", "eventType", "occurredAt", "id", "properties"}
    assert {"hs_url", "hs_page_title", "hs_referrer"} <= set(event["results"][0]["properties"])
