"""Custom fields (40-hex keys, option ids) and record flattening, without HTTP."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crmbridge.mapping.transforms import normalise_domain, normalise_email
from crmbridge_pipedrive import records
from crmbridge_pipedrive.fields import FieldCatalog, is_custom_key
from crmbridge_pipedrive.sandbox.render import messy_email, messy_website

BUDGET, TECH, REVENUE, NOTE = "a" * 40, "b" * 40, "c" * 40, "d" * 40
V1_FIELDS = [
    {"key": "name", "name": "Name", "field_type": "varchar"},
    {"key": BUDGET, "name": "BANT budget", "field_type": "enum",
     "options": [{"id": 11, "label": "Approved"}, {"id": 12, "label": "Planned"}]},
    {"key": TECH, "name": "Technologies", "field_type": "set",
     "options": [{"id": 21, "label": "Salesforce"}, {"id": 22, "label": "AWS"}]},
    {"key": REVENUE, "name": "Annual revenue", "field_type": "monetary"},
    {"key": NOTE, "name": "Old note", "field_type": "varchar", "active_flag": False},
]


def test_only_custom_fields_with_hash_keys_enter_the_catalog():
    catalog = FieldCatalog.from_v1(V1_FIELDS)
    assert catalog.labels() == {"BANT budget": BUDGET, "Technologies": TECH, "Annual revenue": REVENUE}
    assert is_custom_key(BUDGET) and not is_custom_key("name") and not is_custom_key("A" * 40)


def test_option_ids_become_labels_and_money_its_amount_and_currency():
    catalog = FieldCatalog.from_v1(V1_FIELDS)
    flat = catalog.flatten({BUDGET: 12, TECH: [21, 22], REVENUE: {"value": 1200.5, "currency": "EUR"}})
    assert flat == {BUDGET: "Planned", TECH: ["Salesforce", "AWS"], REVENUE: 1200.5, f"{REVENUE}_currency": "EUR"}


def test_values_stay_under_their_keys_and_unset_fields_are_left_out():
    catalog = FieldCatalog.from_v1(V1_FIELDS)
    assert catalog.flatten({BUDGET: 11, TECH: None, "e" * 40: "kept as given"}) == {
        BUDGET: "Approved", "e" * 40: "kept as given"}  # a field the catalog does not know yet: as is


def test_a_new_option_or_field_tells_the_catalog_to_reload_and_the_state_round_trips():
    catalog = FieldCatalog.from_v1(V1_FIELDS)
    assert catalog.covers({BUDGET: 11, TECH: [22]})
    assert not catalog.covers({BUDGET: 13})
    assert not catalog.covers({"e" * 40: "x"})
    again = FieldCatalog.from_state(catalog.to_state())
    assert again.to_state() == catalog.to_state()
    assert again.flatten({BUDGET: 11}) == {BUDGET: "Approved"}


def test_records_flatten_nested_objects_and_turn_links_into_associations():
    person = records.person({
        "id": 5, "name": "Ana Ruiz", "org_id": 9, "emails": [{"value": "x@a.io", "primary": False},
                                                             {"value": " Ana@Acme.io ", "primary": True}],
        "phones": [], "postal_address": {"country": "Spain", "locality": "Madrid"},
        "custom_fields": {BUDGET: 11}}, FieldCatalog.from_v1(V1_FIELDS))
    assert person.id == "5" and person.associations == {"organizations": ["9"]}
    assert person.properties["email"] == " Ana@Acme.io " and person.properties["phone"] is None
    assert person.properties["postal_address_country"] == "Spain"
    assert person.properties[BUDGET] == "Approved"
    activity = records.activity({"id": 1, "type": "call", "due_date": "2026-05-02", "due_time": "09:30",
                                 "person_id": 5, "participants": [{"person_id": 5}, {"person_id": 6}],
                                 "org_id": None, "deal_id": 3})
    assert activity.properties["due_at"] == "2026-05-02T09:30:00Z"
    assert activity.associations == {"persons": ["5", "6"], "organizations": [], "deals": ["3"]}
    user = records.user({"id": 2, "name": "Anna van der Berg", "active_flag": False, "access": [{"app": "sales"}]})
    assert (user.properties["first_name"], user.properties["last_name"]) == ("Anna", "van der Berg")
    assert "access" not in user.properties


def test_pipeline_stages_keep_pipedrives_order_and_are_never_closed():
    pipeline = records.pipeline({"id": 1, "name": "Sales"}, [
        {"id": 3, "name": "Demo", "order_nr": 1, "deal_probability": 50},
        {"id": 2, "name": "Lead in", "order_nr": 0, "deal_probability": 10},
        {"id": 4, "name": "Gone", "order_nr": 2, "is_deleted": True}])
    stages = pipeline.properties["stages"]
    assert [s["label"] for s in stages] == ["Lead in", "Demo"]
    assert stages[1]["probability"] == 0.5 and not any(s["is_closed"] for s in stages)


emails = st.builds(lambda local, domain, tld: f"{local}@{domain}.{tld}",
                   st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z]{1,8})?", fullmatch=True),
                   st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
                   st.sampled_from(["com", "de", "co.uk", "io"]))


@given(emails, st.integers(min_value=0, max_value=10**6))
def test_sandbox_typing_variants_normalise_back_to_the_same_address(email, index):
    assert normalise_email(messy_email(email, index)) == email
    domain = email.partition("@")[2]
    assert normalise_domain(messy_website(domain, index)) == domain
