"""The sandbox app's webhooks v3 API through the real SDK: settings, subscriptions, validation, developer-key auth."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hubspot.webhooks import (
    BatchInputSubscriptionBatchUpdateRequest,
    SettingsChangeRequest,
    SubscriptionBatchUpdateRequest,
    SubscriptionCreateRequest,
    SubscriptionPatchRequest,
    ThrottlingSettings,
)
from hubspot.webhooks.exceptions import ApiException, NotFoundException

from crmbridge_hubspot.plugin import SANDBOX_APP_ID

from .conftest import RawHttp, developer_client

APP = SANDBOX_APP_ID
KEY = "sandbox-developer-key"


@pytest.fixture
def dev(hs_server: Any) -> Any:
    return developer_client(hs_server).webhooks


def test_settings_are_written_read_and_deleted_through_the_sdk(dev: Any) -> None:
    with pytest.raises(NotFoundException):
        dev.settings_api.get_all(APP)
    written = dev.settings_api.configure(APP, SettingsChangeRequest(
        target_url="https://crmbridge.example.com/webhooks/hubspot",
        throttling=ThrottlingSettings(max_concurrent_requests=12)))
    read = dev.settings_api.get_all(APP)
    assert read.target_url == written.target_url == "https://crmbridge.example.com/webhooks/hubspot"
    assert read.throttling.max_concurrent_requests == 12 and read.created_at is not None
    dev.settings_api.clear(APP)
    with pytest.raises(NotFoundException):
        dev.settings_api.get_all(APP)


def test_subscriptions_are_created_listed_read_paused_and_deleted_through_the_sdk(dev: Any) -> None:
    api = dev.subscriptions_api
    created = api.create(APP, SubscriptionCreateRequest(event_type="contact.creation", active=True))
    change = api.create(APP, SubscriptionCreateRequest(event_type="contact.propertyChange",
                                                       property_name="lifecyclestage", active=True))
    assert created.id != change.id and change.property_name == "lifecyclestage" and created.active is True
    assert {s.id for s in api.get_all(APP).results} == {created.id, change.id}
    paused = api.update(int(change.id), APP, SubscriptionPatchRequest(active=False))
    assert paused.active is False and api.get_by_id(int(change.id), APP).active is False
    api.archive(int(created.id), APP)
    assert [s.id for s in api.get_all(APP).results] == [change.id]
    with pytest.raises(NotFoundException):
        api.get_by_id(int(created.id), APP)


def test_a_batch_update_activates_many_and_names_the_ids_it_does_not_know(dev: Any) -> None:
    api = dev.subscriptions_api
    ids = [int(api.create(APP, SubscriptionCreateRequest(event_type=t, active=False)).id)
           for t in ("deal.creation", "deal.deletion")]
    done = api.update_batch(APP, BatchInputSubscriptionBatchUpdateRequest(
        inputs=[SubscriptionBatchUpdateRequest(id=i, active=True) for i in ids]))
    assert done.status == "COMPLETE" and {r.active for r in done.results} == {True}
    partly = api.update_batch(APP, BatchInputSubscriptionBatchUpdateRequest(
        inputs=[SubscriptionBatchUpdateRequest(id=ids[0], active=False),
                SubscriptionBatchUpdateRequest(id=999, active=True)]))
    assert [r.active for r in partly.results] == [False]
    assert partly.num_errors == 1 and partly.errors[0].context == {"ids": ["999"]}


def _error(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


@pytest.mark.parametrize(("body", "message"), [
    ({"eventType": "contact.teleported", "active": True}, "eventType"),
    ({"eventType": "contact.propertyChange", "active": True}, "propertyName is required"),
    ({"eventType": "contact.creation", "propertyName": "email", "active": True}, "only allowed"),
    ({"eventType": "deal.propertyChange", "propertyName": "no_such_property"}, "does not exist"),
    ({"eventType": "deal.creation", "active": "yes"}, "active"),
])
def test_invalid_subscriptions_get_hubspots_validation_error(hs_server: Any, body: dict[str, Any],
                                                             message: str) -> None:
    http = RawHttp(hs_server.base_url("hubspot"), token=None)
    answer = http("POST", f"/webhooks/v3/{APP}/subscriptions?hapikey={KEY}", body)
    assert answer.status == 400
    assert answer.body["category"] == "VALIDATION_ERROR" and message in answer.body["message"]
    assert answer.body["status"] == "error" and answer.body["correlationId"]


def test_the_sdk_sees_a_second_identical_subscription_refused(dev: Any) -> None:
    request = SubscriptionCreateRequest(event_type="company.propertyChange", property_name="domain", active=True)
    dev.subscriptions_api.create(APP, request)
    with pytest.raises(ApiException) as caught:
        dev.subscriptions_api.create(APP, request)
    assert caught.value.status == 409 and _error(caught.value)["category"] == "CONFLICT"


@pytest.mark.parametrize("body", [
    {"targetUrl": "not a url", "throttling": {"maxConcurrentRequests": 10}},
    {"throttling": {"maxConcurrentRequests": 10}},
    {"targetUrl": "https://example.com/hook", "throttling": {"maxConcurrentRequests": 2}},
])
def test_invalid_settings_get_400(hs_server: Any, body: dict[str, Any]) -> None:
    answer = RawHttp(hs_server.base_url("hubspot"), token=None)("PUT", f"/webhooks/v3/{APP}/settings?hapikey={KEY}",
                                                                body)
    assert answer.status == 400 and answer.body["category"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(("query", "token"), [("", None), ("?hapikey=wrong-key", None), ("", "sandbox")])
def test_webhook_routes_take_the_developer_key_not_a_private_app_token(hs_server: Any, query: str,
                                                                       token: str | None) -> None:
    answer = RawHttp(hs_server.base_url("hubspot"), token=token)("GET", f"/webhooks/v3/{APP}/subscriptions{query}")
    assert answer.status == 401 and answer.body["category"] == "INVALID_AUTHENTICATION"
    assert RawHttp(hs_server.base_url("hubspot"), token=None)(
        "GET", f"/webhooks/v3/{APP}/subscriptions?hapikey={KEY}").status == 200


def test_the_developer_key_does_not_open_the_crm_routes(hs_server: Any) -> None:
    answer = RawHttp(hs_server.base_url("hubspot"), token=None)("GET", f"/crm/v3/objects/contacts?hapikey={KEY}")
    assert answer.status == 401


def test_another_apps_id_is_not_found(dev: Any) -> None:
    with pytest.raises(NotFoundException):
        dev.subscriptions_api.get_all(APP + 1)


def test_webhook_api_calls_are_counted_in_the_sandbox_stats(dev: Any, hs: Any) -> None:
    dev.subscriptions_api.get_all(APP)
    assert hs.stats()["calls"]["GET /webhooks/v3/{appId}/subscriptions"] == 1


def test_reset_forgets_the_settings_and_subscriptions(dev: Any, hs: Any) -> None:
    dev.settings_api.configure(APP, SettingsChangeRequest(target_url="http://127.0.0.1:9/h",
                                                          throttling=ThrottlingSettings(max_concurrent_requests=10)))
    dev.subscriptions_api.create(APP, SubscriptionCreateRequest(event_type="deal.creation", active=True))
    hs.reset()
    assert dev.subscriptions_api.get_all(APP).results == []
    with pytest.raises(NotFoundException):
        dev.settings_api.get_all(APP)


def test_the_banner_names_the_app_its_developer_key_and_its_client_secret(make_sandbox: Any) -> None:
    server, _, _ = make_sandbox(contacts=20, hubspot_app_id=777, hubspot_client_secret="s3cr3t",
                                hubspot_developer_api_key="dev-key-1")
    text = "\n".join(server.vendor("hubspot").banner())
    assert "777" in text and "dev-key-1" in text and "s3cr3t" in text
    assert developer_client(server, "dev-key-1").webhooks.subscriptions_api.get_all(777).results == []


def test_without_a_configured_secret_each_sandbox_makes_up_its_own(make_sandbox: Any) -> None:
    first, _, _ = make_sandbox(contacts=20)
    second, _, _ = make_sandbox(contacts=20)
    a, b = first.vendor("hubspot").webhooks.secret, second.vendor("hubspot").webhooks.secret
    assert a != b and len(a) == len(b) == 32
