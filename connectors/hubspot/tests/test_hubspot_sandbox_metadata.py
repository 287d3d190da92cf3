"""Owners, pipelines, properties, forms, web-analytics events, associations v4 and bulk touches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicDefaultAssociationMultiPost,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.objects import PublicObjectSearchRequest
from hubspot.crm.pipelines import PipelineInput, PipelineStageInput
from hubspot.crm.properties import (
    BatchInputPropertyCreate,
    OptionInput,
    PropertyCreate,
    PropertyGroupCreate,
    PropertyUpdate,
)
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


# -- owners ----------------------------------------------------------------------------------------------------


def test_owners_list_active_sellers_and_archived_lists_the_inactive(client: Any) -> None:
    active = client.crm.owners.owners_api.get_page(limit=500).results
    inactive = client.crm.owners.owners_api.get_page(limit=500, archived=True).results
    assert len(active) + len(inactive) == 12 and len(inactive) == 2
    assert all(o.archived for o in inactive) and not any(o.archived for o in active)
    teams = {t.name for o in active for t in o.teams}
    assert {"EMEA Sales", "NA Sales", "SDR"} <= teams
    assert all(o.type == "PERSON" and o.email and o.user_id for o in active)


def test_owners_page_and_filter_by_email(client: Any, all_pages: Any) -> None:
    paged = all_pages(client.crm.owners.owners_api.get_page, limit=4)
    assert len(paged) == len({o.id for o in paged}) == 10
    one = client.crm.owners.owners_api.get_page(email=paged[3].email.upper()).results
    assert [o.id for o in one] == [paged[3].id]
    assert client.crm.owners.owners_api.get_by_id(paged[0].id).email == paged[0].email


def test_owners_refuse_a_limit_above_five_hundred(http: Any) -> None:
    assert http("GET", "/crm/v3/owners?limit=501").status == 400


def test_records_reference_owners_that_exist(client: Any, hs: Any) -> None:
    owners = {o.id for o in client.crm.owners.owners_api.get_page(limit=500).results} | \
        {o.id for o in client.crm.owners.owners_api.get_page(limit=500, archived=True).results}
    referenced = {hs.get("contacts", i).get("hubspot_owner_id") for i in hs.ids("contacts")} - {None}
    assert referenced and referenced <= owners


# -- pipelines -------------------------------------------------------------------------------------------------


def test_deal_pipelines_have_hubspots_default_stages(client: Any, hs: Any) -> None:
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals").results
    default = next(p for p in pipelines if p.id == "default")
    assert [s.id for s in default.stages][-2:] == ["closedwon", "closedlost"]
    assert default.stages[-2].metadata == {"isClosed": "true", "probability": "1.0"}
    stage_ids = {s.id for p in pipelines for s in p.stages}
    assert {hs.get("deals", d)["dealstage"] for d in hs.ids("deals")} <= stage_ids
    assert client.crm.pipelines.pipelines_api.get_by_id("deals", "default").label == "Sales Pipeline"


def test_a_sales_ready_stage_can_be_added_and_used(client: Any, hs: Any) -> None:
    stage = client.crm.pipelines.pipeline_stages_api.create("deals", "default", PipelineStageInput(
        label="Sales-ready leads", display_order=0, metadata={"probability": "0.1"}))
    assert stage.label == "Sales-ready leads" and stage.metadata["isClosed"] == "false"
    stages = client.crm.pipelines.pipeline_stages_api.get_all("deals", "default").results
    assert stage.id in {s.id for s in stages}
    deal_id = hs.create("deals", {"dealname": "Hand-off", "dealstage": stage.id, "pipeline": "default"})
    assert hs.get("deals", deal_id)["hs_is_closed"] == "false"
    with pytest.raises(Exception) as twice:
        client.crm.pipelines.pipeline_stages_api.create("deals", "default", PipelineStageInput(
            label="Sales-ready leads", display_order=0, metadata={"probability": "0.1"}))
    assert twice.value.status == 409


def test_a_pipeline_can_be_created_with_its_stages(client: Any) -> None:
    created = client.crm.pipelines.pipelines_api.create("deals", PipelineInput(
        label="Inbound", display_order=3, stages=[PipelineStageInput(label="New", display_order=0,
                                                                      metadata={"probability": "0.1"})]))
    assert [s.label for s in created.stages] == ["New"]
    assert created.id in {p.id for p in client.crm.pipelines.pipelines_api.get_all("deals").results}


def test_an_unknown_stage_is_refused_on_write(http: Any, hs: Any) -> None:
    answer = http("PATCH", f"/crm/v3/objects/deals/{hs.ids('deals')[0]}", {"properties": {"dealstage": "nope"}})
    assert answer.status == 400 and answer.body["errors"][0]["code"] == "INVALID_OPTION"


# -- properties -------------------------------------------------------------------------------------------------


def test_properties_describe_the_qualifying_questions_with_labels(client: Any) -> None:
    props = {p.name: p for p in client.crm.properties.core_api.get_all("contacts").results}
    for name in ("email", "lifecyclestage", "hs_lead_status", "hs_seniority", "hs_role", "hubspot_owner_id",
                 "bant_budget", "bant_authority", "bant_need", "bant_timeline", "project_status",
                 "hs_merged_object_ids", "hs_email_optout", "hs_email_hard_bounce_reason_enum"):
        assert name in props, name
    project = props["project_status"]
    assert project.type == "enumeration" and project.group_name == "lead_qualification"
    assert {o.value: o.label for o in project.options}["current"] == "This is current for us"
    assert props["lifecyclestage"].modification_metadata.read_only_definition is True
    one = client.crm.properties.core_api.get_by_name("companies", "tech_stack")
    assert one.field_type == "checkbox" and "salesforce" in {o.value for o in one.options}
    renewal = client.crm.properties.core_api.get_by_name("companies", "renewal_date")
    assert (renewal.type, renewal.field_type) == ("date", "date")


def test_every_object_types_properties_deserialise(client: Any) -> None:
    for object_type in ("contacts", "companies", "deals", "calls", "emails", "meetings", "notes", "tasks"):
        props = client.crm.properties.core_api.get_all(object_type).results
        names = {p.name for p in props}
        assert {"hs_object_id", "hubspot_owner_id"} <= names, object_type
        groups = client.crm.properties.groups_api.get_all(object_type).results
        assert {p.group_name for p in props} <= {g.name for g in groups}, object_type


def test_custom_properties_are_created_and_then_writable(client: Any, hs: Any) -> None:
    client.crm.properties.groups_api.create("contacts", PropertyGroupCreate(name="crmbridge", label="crmbridge"))
    created = client.crm.properties.core_api.create("contacts", PropertyCreate(
        name="crmbridge_score", label="Lead score", type="number", field_type="number", group_name="crmbridge"))
    assert created.name == "crmbridge_score" and created.modification_metadata.archivable is True
    contact_id = hs.ids("contacts")[0]
    hs.update("contacts", contact_id, {"crmbridge_score": "57"})
    page = client.crm.contacts.basic_api.get_page(limit=1, properties=["crmbridge_score"])
    assert page.results[0].properties["crmbridge_score"] == "57"
    with pytest.raises(PropertiesApiException) as again:
        client.crm.properties.core_api.create("contacts", PropertyCreate(
            name="crmbridge_score", label="Lead score", type="number", field_type="number", group_name="crmbridge"))
    assert again.value.status == 409 and "OBJECT_ALREADY_EXISTS" in again.value.body


def test_batch_property_creation_reports_existing_names(client: Any) -> None:
    answer = client.crm.properties.batch_api.create("contacts", BatchInputPropertyCreate(inputs=[
        PropertyCreate(name="crmbridge_stage", label="Stage", type="enumeration", field_type="select",
                       group_name="contactinformation",
                       options=[OptionInput(label="SQL", value="sql", hidden=False, display_order=0)]),
        PropertyCreate(name="email", label="Email", type="string", field_type="text",
                       group_name="contactinformation"),
    ]))
    assert [p.name for p in answer.results] == ["crmbridge_stage"]
    assert answer.errors[0].category == "OBJECT_ALREADY_EXISTS" and answer.errors[0].context == {"name": ["email"]}


def test_a_custom_property_can_be_updated(client: Any) -> None:
    updated = client.crm.properties.core_api.update("contacts", "project_status", PropertyUpdate(
        label="Project status (updated)"))
    assert updated.label == "Project status (updated)"
    assert "current" in {o.value for o in updated.options}


# -- forms and events -------------------------------------------------------------------------------------------


def test_forms_page_into_the_sdk_models(client: Any, all_pages: Any) -> None:
    forms = all_pages(client.marketing.forms.forms_api.get_page, limit=5)
    names = {f.name for f in forms}
    assert {"Contact us", "Request a demo", "Newsletter signup", "Webinar registration"} <= names
    assert any(n.startswith("Guide: ") for n in names) and any(n.startswith("Buyer's guide: ") for n in names)
    assert all(len(f.id) == 36 and f.form_type == "hubspot" for f in forms)


def test_a_contacts_events_page_completely_in_time_order(client: Any, hs: Any, all_pages: Any) -> None:
    world = hs.world
    busiest = max(world.people, key=lambda p: len(world.behaviours.of(p.index)))
    contact_id = hs.ids("contacts")[busiest.index]
    events = all_pages(client.events.events_api.get_page, object_type="contact", object_id=contact_id, limit=7)
    assert len(events) == len({e.id for e in events}) == len(world.behaviours.of(busiest.index))
    stamps = [e.occurred_at for e in events]
    assert stamps == sorted(stamps)
    assert all(e.object_id == contact_id and e.object_type == "CONTACT" for e in events)


def test_event_types_filter_and_carry_their_properties(client: Any, hs: Any) -> None:
    forms = {f.id for f in client.marketing.forms.forms_api.get_page(limit=50).results}
    submitted = client.events.events_api.get_page(object_type="contact", event_type="e_submitted_form",
                                                  limit=100).results
    assert submitted and all(e.event_type == "e_submitted_form" for e in submitted)
    assert {e.properties["hs_form_id"] for e in submitted} <= forms
    views = client.events.events_api.get_page(object_type="contact", event_type="e_visited_page", limit=20).results
    assert all(e.properties["hs_url"].startswith("https://www.") and "hs_page_title" in e.properties for e in views)
    clicks = client.events.events_api.get_page(object_type="contact", event_type="e_clicked_email", limit=20).results
    assert clicks and all(e.properties["hs_email_campaign_id"] and e.properties["hs_url"] for e in clicks)


def test_events_across_all_contacts_respect_the_time_window(client: Any, hs: Any) -> None:
    b = hs.world.behaviours
    times = sorted(b.at_ms)
    low, high = times[len(times) // 3], times[len(times) // 2]
    after = datetime.fromtimestamp(low / 1000).astimezone()
    before = datetime.fromtimestamp(high / 1000).astimezone()
    seen, cursor = [], None
    while True:
        kwargs = {"after": cursor} if cursor else {}
        page = client.events.events_api.get_page(object_type="contact", occurred_after=after,
                                                 occurred_before=before, limit=100, **kwargs)
        seen.extend(page.results)
        if not page.paging:
            break
        cursor = page.paging.next.after
    expected = sum(1 for t in b.at_ms if low <= t <= high)
    assert len(seen) == len({e.id for e in seen}) == expected


def test_events_refuse_a_limit_above_one_hundred(http: Any) -> None:
    assert http("GET", "/events/v3/events?objectType=contact&limit=101").status == 400


def test_account_details_match_hubspots_shape(http: Any) -> None:
    answer = http("GET", "/account-info/v3/details")
    assert answer.status == 200
    assert {"portalId", "timeZone", "companyCurrency", "uiDomain", "dataHostingLocation"} <= set(answer.body)


# -- associations v4 ----------------------------------------------------------------------------------------------


def test_batch_association_read_answers_207_for_records_without_links(client: Any, hs: Any) -> None:
    linked = next(c for c in hs.ids("contacts") if hs.associations("contacts", c, "companies"))
    lonely = next(c for c in hs.ids("contacts") if not hs.associations("contacts", c, "companies"))
    answer = client.crm.associations.v4.batch_api.get_page("contacts", "companies",
                                                           BatchInputPublicFetchAssociationsBatchRequest(inputs=[
                                                               PublicFetchAssociationsBatchRequest(id=linked),
                                                               PublicFetchAssociationsBatchRequest(id=lonely)]))
    assert [r._from.id for r in answer.results] == [linked]
    row = answer.results[0].to[0]
    assert str(row.to_object_id) in hs.associations("contacts", linked, "companies")
    labels = {(t.type_id, t.label) for t in row.association_types}
    assert labels == {(1, "Primary"), (279, None)}
    assert answer.num_errors == 1 and answer.errors[0].sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert answer.errors[0].context["fromObjectId"] == [lonely]


def test_batch_association_reads_take_up_to_a_thousand_inputs(http: Any) -> None:
    ok = http("POST", "/crm/v4/associations/contacts/companies/batch/read",
              {"inputs": [{"id": str(i)} for i in range(1000)]})
    assert ok.status == 207
    too_many = http("POST", "/crm/v4/associations/contacts/companies/batch/read",
                    {"inputs": [{"id": str(i)} for i in range(1001)]})
    assert too_many.status == 400


def test_default_associations_are_created_and_listed(client: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[0]
    deal_ids = hs.ids("deals")[:3]
    client.crm.associations.v4.basic_api.create_default("contacts", contact_id, "deals", deal_ids[0])
    inputs = [PublicDefaultAssociationMultiPost(_from={"id": contact_id}, to={"id": d}) for d in deal_ids[1:]]
    client.crm.associations.v4.batch_api.create_default("contacts", "deals",
                                                        BatchInputPublicDefaultAssociationMultiPost(inputs=inputs))
    listed = client.crm.associations.v4.basic_api.get_page("contacts", contact_id, "deals", limit=500).results
    assert set(deal_ids) <= {str(r.to_object_id) for r in listed}
    page = client.crm.contacts.basic_api.get_by_id(contact_id, associations=["deals"])
    assert set(deal_ids) <= {r.id for r in page.associations["deals"].results}
    assert contact_id in hs.associations("deals", deal_ids[0], "contacts")
    client.crm.associations.v4.basic_api.archive("contacts", contact_id, "deals", deal_ids[0])
    assert deal_ids[0] not in hs.associations("contacts", contact_id, "deals")


# -- touch -------------------------------------------------------------------------------------------------------


def test_touching_records_makes_exactly_them_show_up_as_changed(client: Any, hs: Any, http: Any) -> None:
    newest = max(ms(hs.get("contacts", i)["lastmodifieddate"]) for i in hs.ids("contacts"))
    answer = http("POST", "/_sandbox/touch", {"objectType": "contacts", "count": 25,
                                              "properties": {"hs_lead_status": "OPEN"}})
    assert answer.status == 200 and answer.body["touched"] == 25
    found, after = [], None
    while True:
        page = client.crm.objects.search_api.do_search("contacts", PublicObjectSearchRequest(
            filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GT",
                                         "value": str(newest)}]}], limit=10, after=after,
            properties=["hs_lead_status"]))
        found.extend(page.results)
        if not page.paging:
            break
        after = page.paging.next.after
    assert {r.id for r in found} == set(answer.body["ids"])
    assert all(r.properties["hs_lead_status"] == "OPEN" for r in found)
    assert hs.stats()["total_calls"] >= 1 and "POST /_sandbox/touch" not in hs.stats()["calls"]


def test_touching_by_id_through_the_python_api(hs: Any) -> None:
    ids = hs.ids("companies")[:3]
    before = {i: hs.get("companies", i)["hs_lastmodifieddate"] for i in ids}
    assert hs.touch("companies", ids=ids) == ids
    assert all(hs.get("companies", i)["hs_lastmodifieddate"] > before[i] for i in ids)
    with pytest.raises(ValueError, match="either"):
        hs.touch("companies")


def test_labelled_association_sets_the_primary_company(client: Any, hs: Any) -> None:
    contact_id = next(c for c in hs.ids("contacts") if not hs.associations("contacts", c, "companies"))
    company_id = hs.ids("companies")[2]
    labels = client.crm.associations.v4.basic_api.create("contacts", contact_id, "companies", company_id, [
        AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=1)])
    assert (labels.from_object_id, labels.to_object_id, labels.labels) == (contact_id, company_id, ["Primary"])
    page = client.crm.contacts.basic_api.get_by_id(contact_id, associations=["companies"])
    assert {r.type for r in page.associations["companies"].results} == {"contact_to_company",
                                                                         "contact_to_company_unlabeled"}


def test_single_form_event_types_and_property_group_reads_deserialise(client: Any) -> None:
    first = client.marketing.forms.forms_api.get_page(limit=1).results[0]
    assert client.marketing.forms.forms_api.get_by_id(first.id).name == first.name
    assert "e_visited_page" in client.events.events_api.get_types().event_types
    group = client.crm.properties.groups_api.get_by_name("contacts", "lead_qualification")
    assert group.label == "Lead qualification"
