"""Writes the sandbox refuses as Pipedrive does: bodies against its request schemas, ids that name nothing."""

from __future__ import annotations

import pytest
import requests

from crmbridge_pipedrive.sandbox import schemas

H = {"x-api-token": "sandbox"}


def call(server, method, path, body=None, headers=H):
    return requests.request(method, server.base_url("pipedrive") + path, json=body, headers=headers, timeout=10)


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/api/v2/persons", {"name": "Ada", "owner_id": "7"}, "owner_id: must be an integer"),
    ("/api/v2/persons", {"name": "Ada", "favourite_colour": "teal"}, "favourite_colour: is not an allowed field"),
    ("/api/v2/persons", {"emails": [{"value": "a@example.com"}]}, "name: is required"),
    ("/api/v2/deals", {"title": "Pilot", "value": "lots"}, "value: must be a number"),
    ("/api/v2/deals", {"title": "Pilot", "expected_close_date": "next week"}, "must be a date"),
    ("/api/v2/organizations", {"name": "Acme", "address": "1 Main St"}, "address: must be an object"),
    ("/api/v2/activities", {"subject": "Call", "done": "yes"}, "done: must be a boolean"),
    ("/api/v2/stages", {"name": "Qualified"}, "pipeline_id: is required"),
])
def test_a_body_pipedrives_schema_refuses_is_a_400_in_its_shape(sandbox_factory, path, body, message):
    server = sandbox_factory(contacts=50)
    before = server.vendor("pipedrive").state.counts()
    answer = call(server, "POST", path, body)
    assert answer.status_code == 400, answer.text
    refused = answer.json()
    assert refused["success"] is False and refused["code"] == "ERR_SCHEMA_VALIDATION_FAILED"
    assert message in refused["error"] and refused["data"] is None
    assert server.vendor("pipedrive").state.counts() == before  # nothing was made


def test_updates_are_checked_too(sandbox_factory):
    server = sandbox_factory(contacts=50)
    deal = server.vendor("pipedrive").state.live_ids("deals")[0]
    assert call(server, "PATCH", f"/api/v2/deals/{deal}", {"status": 3}).status_code == 400
    assert call(server, "PATCH", f"/api/v2/deals/{deal}", {"stage": 2}).status_code == 400
    assert call(server, "PATCH", f"/api/v2/deals/{deal}", {"title": "Renamed"}).status_code == 200


@pytest.mark.parametrize(("path", "body", "missing"), [
    ("/api/v2/deals", {"title": "Pilot", "stage_id": 99_999}, "Stage with id 99999 not found"),
    ("/api/v2/deals", {"title": "Pilot", "owner_id": 99_999}, "User with id 99999 not found"),
    ("/api/v2/deals", {"title": "Pilot", "org_id": 99_999}, "Organization with id 99999 not found"),
    ("/api/v2/deals", {"title": "Pilot", "person_id": 99_999}, "Person with id 99999 not found"),
    ("/api/v2/persons", {"name": "Ada", "org_id": 99_999}, "Organization with id 99999 not found"),
    ("/api/v2/activities", {"subject": "Call", "deal_id": 99_999}, "Deal with id 99999 not found"),
])
def test_ids_that_name_nothing_are_a_404(sandbox_factory, path, body, missing):
    server = sandbox_factory(contacts=50)
    answer = call(server, "POST", path, body)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == missing and answer.json()["success"] is False


def test_a_deal_moved_to_a_stage_of_another_pipeline_follows_it_and_a_mismatch_is_refused(sandbox_factory):
    server = sandbox_factory(contacts=50)
    state = server.vendor("pipedrive").state
    other = call(server, "POST", "/api/v2/pipelines", {"name": "Partners"}).json()["data"]
    stage = call(server, "POST", "/api/v2/stages", {"name": "Intro", "pipeline_id": other["id"]}).json()["data"]
    deal = state.live_ids("deals")[0]
    moved = call(server, "PATCH", f"/api/v2/deals/{deal}", {"stage_id": stage["id"]}).json()["data"]
    assert (moved["pipeline_id"], moved["stage_id"]) == (other["id"], stage["id"])
    refused = call(server, "PATCH", f"/api/v2/deals/{deal}", {"stage_id": stage["id"], "pipeline_id": 1})
    assert refused.status_code == 400


def test_records_made_without_an_owner_belong_to_the_requesting_user(sandbox_factory):
    server = sandbox_factory(contacts=50, tokens=("admin-token", "second-token"))
    state = server.vendor("pipedrive").state
    admin, second = list(state.users)[:2]
    made = call(server, "POST", "/api/v2/persons", {"name": "Ada"}, {"x-api-token": "admin-token"}).json()["data"]
    assert made["owner_id"] == admin
    deal = call(server, "POST", "/api/v2/deals", {"title": "Pilot"}, {"x-api-token": "second-token"}).json()["data"]
    assert deal["owner_id"] == second
    given = call(server, "POST", "/api/v2/organizations", {"name": "Acme", "owner_id": second},
                 {"x-api-token": "admin-token"}).json()["data"]
    assert given["owner_id"] == second


def test_v1_writes_are_checked_against_the_v1_schemas(sandbox_factory):
    server = sandbox_factory(contacts=50)
    state = server.vendor("pipedrive").state
    person = state.live_ids("persons")[0]
    bad_field = call(server, "POST", "/v1/personFields", {"name": "Tier", "field_type": "colour"})
    assert bad_field.status_code == 400 and bad_field.json()["errorCode"] == 400
    merge = call(server, "PUT", f"/v1/persons/{person}/merge", {"merge_with_id": str(person + 1)})
    assert merge.status_code == 400 and "merge_with_id: must be an integer" in merge.json()["error"]
    lead = call(server, "POST", "/v1/leads", {"title": "Lead", "person_id": 99_999})
    assert lead.status_code == 404
    made = call(server, "POST", "/v1/leads", {"title": "Lead", "person_id": person})
    assert made.status_code == 201 and made.json()["data"]["owner_id"] == next(iter(state.users))


def test_the_packaged_schemas_are_the_ones_in_pipedrives_openapi_files(openapi):
    """The snapshot an installed sandbox falls back on says what the OpenAPI files say."""
    import orjson

    assert schemas.extract({"v1": openapi("v1"), "v2": openapi("v2")}) == orjson.loads(schemas.SNAPSHOT.read_bytes())


def test_our_writer_sends_only_what_pipedrive_accepts(sandbox_factory, connect):
    """Setup, new persons and organizations, person fields and a deal: each through the checking sandbox."""
    from crmbridge.writeback.contract import DealDraft, PersonDraft, PersonUpdate, ProvisionSpec

    server = sandbox_factory(contacts=50)
    state = server.vendor("pipedrive").state
    writer = connect(server).writer()
    provisioned = writer.provision(ProvisionSpec())
    drafts = [PersonDraft("dana.kim@acme-robotics.example", "Dana", "Kim", "CTO", "+1 555 0100",
                          "Acme Robotics", "acme-robotics.example")]
    (person_id, org_id), = writer.ensure_people(drafts).values()
    made = state.get("persons", int(person_id))
    assert made["owner_id"] == state.admin_id and made["emails"][0]["value"] == drafts[0].email
    assert state.get("organizations", int(org_id))["name"] == "Acme Robotics"
    written = writer.write_people([PersonUpdate(person_id, {"score": 72.5, "lifecycle_stage": "MQL"})],
                                  provisioned.field_keys)
    assert written.written == [person_id] and not written.failed
    deal = writer.create_deal(DealDraft("cb-1", "Acme Robotics: Dana Kim", provisioned.pipeline_id,
                                        provisioned.stage_id, person_id, org_id, None, "Score 72",
                                        provisioned.field_keys))
    row = state.get("deals", int(deal.id))
    assert str(row["stage_id"]) == provisioned.stage_id and row["owner_id"] == state.admin_id
