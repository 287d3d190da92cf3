"""``crmbridge setup`` on Pipedrive: webhooks v2 subscribed once per object, stale subscriptions replaced."""

from __future__ import annotations

import requests

from crmbridge.writeback.contract import ProvisionSpec
from crmbridge_pipedrive.fields import is_custom_key

H = {"x-api-token": "sandbox"}
URL = "https://crmbridge.example.com/webhooks/pipedrive"
OBJECTS = ["activity", "deal", "organization", "person"]


def spec(user: str = "pd", url: str = URL) -> ProvisionSpec:
    return ProvisionSpec(webhook_url=url, webhook_user=user, webhook_password="hook-secret")


def webhook_steps(result) -> list[tuple[str, str, str]]:
    return [(s.name, s.status, s.detail) for s in result.steps if s.what == "webhook"]


def hooks(server) -> list[dict]:
    return requests.get(server.base_url("pipedrive") + "/v1/webhooks", headers=H, timeout=10).json()["data"]


def add_hook(server, **body) -> None:
    answer = requests.post(server.base_url("pipedrive") + "/v1/webhooks", headers=H, timeout=10,
                           json={"subscription_url": URL, "event_action": "*", **body})
    assert answer.status_code == 201, answer.text


# canonical key -> (label, Pipedrive field type); instants are text, as Pipedrive has no datetime field.
PERSON_FIELDS = {
    "score": ("crmbridge score", "double"), "fit_score": ("crmbridge fit score", "double"),
    "engagement_score": ("crmbridge engagement score", "double"),
    "score_reasons": ("crmbridge score reasons", "varchar"), "scored_at": ("crmbridge scored at", "varchar"),
    "handoff_at": ("crmbridge hand-off time", "varchar"), "handoff_owner": ("crmbridge hand-off owner", "varchar"),
    "sales_outcome": ("crmbridge sales outcome", "varchar"),
    "sales_outcome_reason": ("crmbridge sales outcome reason", "varchar"),
    "sales_outcome_at": ("crmbridge sales outcome time", "varchar"),
    "lifecycle_stage": ("crmbridge lifecycle stage", "varchar"),
}
DEAL_FIELDS = {
    "handoff_key": ("crmbridge hand-off key", "varchar"), "score_summary": ("crmbridge score summary", "varchar"),
    "sla_due_at": ("crmbridge SLA due at", "varchar"), "sla_status": ("crmbridge SLA status", "varchar"),
    "sla_first_touch_at": ("crmbridge first touch at", "varchar"),
    "sla_business_minutes": ("crmbridge minutes to first touch", "double"),
}


def fields(server, kind: str) -> dict[str, dict]:
    answer = requests.get(f"{server.base_url('pipedrive')}/v1/{kind}", headers=H, params={"limit": 500}, timeout=10)
    return {f["key"]: f for f in answer.json()["data"]}


def test_setup_makes_every_write_back_field_once_and_records_its_hashed_key(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    writer = connect(server).writer()
    first, again = writer.provision(ProvisionSpec()), writer.provision(ProvisionSpec())
    made = {(s.what, s.name) for s in first.steps if s.status == "created"}
    assert made == {("person field", label) for label, _ in PERSON_FIELDS.values()} | {
        ("deal field", label) for label, _ in DEAL_FIELDS.values()} | {
        ("deal stage", "Sales Pipeline / Sales-ready leads")}
    assert not again.changed and len(again.steps) == len(made) and again.field_keys == first.field_keys
    assert set(first.field_keys) == set(PERSON_FIELDS) | set(DEAL_FIELDS)
    assert all(is_custom_key(k) for k in first.field_keys.values())
    for kind, wanted in (("personFields", PERSON_FIELDS), ("dealFields", DEAL_FIELDS)):
        found = fields(server, kind)
        assert {key: (found[first.field_keys[key]]["name"], found[first.field_keys[key]]["field_type"])
                for key in wanted} == wanted


def test_setup_subscribes_every_object_in_webhooks_v2_once(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    writer = connect(server).writer()
    first, again = writer.provision(spec()), writer.provision(spec())
    assert [status for _, status, _ in webhook_steps(first)] == ["created"] * 4
    assert [status for _, status, _ in webhook_steps(again)] == ["present"] * 4
    made = hooks(server)
    assert sorted(h["event_object"] for h in made) == OBJECTS
    assert {(h["event_action"], h["additional_data"]["version"], h["http_auth_user"]) for h in made} == {
        ("*", "2.0", "pd")}
    assert all("(v2.0)" in name for name, _, _ in webhook_steps(first))


def test_a_dry_run_says_what_it_would_subscribe_and_subscribes_nothing(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    planned = connect(server).writer().provision(spec(), dry_run=True)
    assert [status for _, status, _ in webhook_steps(planned)] == ["would create"] * 4
    assert hooks(server) == []


def test_a_v1_subscription_or_one_with_other_credentials_is_replaced_by_a_v2_one(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    add_hook(server, event_object="person", version="1.0", http_auth_user="pd", http_auth_password="x")
    add_hook(server, event_object="deal", version="2.0", http_auth_user="old-user", http_auth_password="x")
    writer = connect(server).writer()
    dry = {name.split(" ")[0]: (status, detail) for name, status, detail in
           webhook_steps(writer.provision(spec(), dry_run=True))}
    assert dry["*.person"] == ("would create", "replaces webhook 1 (version 1.0)")
    assert dry["*.deal"] == ("would create", "replaces webhook 2 (other credentials)")
    steps = {name.split(" ")[0]: status for name, status, _ in webhook_steps(writer.provision(spec()))}
    assert steps == {"*.person": "updated", "*.organization": "created", "*.deal": "updated",
                     "*.activity": "created"}
    made = hooks(server)
    assert sorted(h["event_object"] for h in made) == OBJECTS and {h["id"] for h in made}.isdisjoint({1, 2})
    assert {(h["additional_data"]["version"], h["http_auth_user"]) for h in made} == {("2.0", "pd")}
    assert [s for _, s, _ in webhook_steps(writer.provision(spec()))] == ["present"] * 4


def test_a_catch_all_v2_subscription_covers_every_object(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    add_hook(server, event_object="*", version="2.0", http_auth_user="pd", http_auth_password="hook-secret")
    result = connect(server).writer().provision(spec())
    assert [status for _, status, _ in webhook_steps(result)] == ["present"] * 4 and len(hooks(server)) == 1


def test_subscriptions_to_another_address_are_left_alone(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    add_hook(server, event_object="person", version="1.0", subscription_url="https://other.example/hook")
    connect(server).writer().provision(spec())
    assert "https://other.example/hook" in {h["subscription_url"] for h in hooks(server)} and len(hooks(server)) == 5
