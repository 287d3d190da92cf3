"""What the sandbox sends when records change: HubSpot's events, signed and batched, only as subscribed."""

from __future__ import annotations

import time
from typing import Any

from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    PublicMergeInput,
    SimplePublicObjectBatchInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.utils.signature import Signature

from crmbridge.connectors import WebhookRequest, plugin

from .conftest import Receiver, subscribe

BASE_FIELDS = {"eventId", "subscriptionId", "portalId", "appId", "occurredAt", "subscriptionType", "attemptNumber",
               "objectId", "changeSource"}


def drained(hs: Any) -> None:
    assert hs.drain_webhooks(20), "every delivery settles"


def test_a_contact_created_over_http_arrives_signed_the_way_hubspot_signs(client: Any, hs: Any,
                                                                          receiver: Receiver) -> None:
    subscribe(hs, receiver.url, "contact.creation")
    created = client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "new.person@northwind.example"}))
    drained(hs)
    [delivery] = receiver.deliveries
    [event] = delivery.events
    assert set(event) >= BASE_FIELDS
    assert (event["subscriptionType"], event["objectId"], event["attemptNumber"]) == ("contact.creation",
                                                                                     int(created.id), 0)
    assert (event["portalId"], event["appId"], event["changeSource"]) == (hs.portal_id, hs.webhooks.app_id, "API")
    assert isinstance(event["eventId"], int) and event["changeFlag"] == "NEW"
    headers, body = delivery.headers, delivery.body.decode()
    stamp = headers["X-HubSpot-Request-Timestamp"]
    assert headers["Content-Type"] == "application/json"
    assert Signature.is_valid(headers["X-HubSpot-Signature-v3"], hs.webhooks.secret, body, http_uri=receiver.url,
                              signature_version="v3", timestamp=stamp)
    assert Signature.is_valid(headers["X-HubSpot-Signature"], hs.webhooks.secret, body, signature_version="v1")
    verifier = plugin("hubspot").webhooks(secret=hs.webhooks.secret)
    parsed = verifier.parse(WebhookRequest("POST", receiver.url, headers, delivery.body, int(time.time() * 1000)))
    assert [(e.stream, e.action, e.object_id) for e in parsed] == [("contacts", "created", created.id)]


def test_a_batch_update_sends_one_event_per_subscribed_property_that_really_changed(
        client: Any, hs: Any, receiver: Receiver) -> None:
    subscribe(hs, receiver.url, properties={"contact": ["jobtitle", "city", "lifecyclestage"]})
    ids = hs.ids("contacts")[:3]
    city = hs.get("contacts", ids[0]).get("city")
    client.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
        SimplePublicObjectBatchInput(id=ids[0], properties={"jobtitle": "Head of RevOps", "city": city}),
        SimplePublicObjectBatchInput(id=ids[1], properties={"jobtitle": "Head of RevOps", "phone": "+1 555 0100"}),
        SimplePublicObjectBatchInput(id=ids[2], properties={"firstname": "Unwatched"}),
    ]))
    drained(hs)
    changes = sorted((e["objectId"], e["propertyName"], e["propertyValue"]) for e in receiver.events)
    assert changes == sorted([(int(ids[0]), "jobtitle", "Head of RevOps"), (int(ids[1]), "jobtitle", "Head of RevOps")])
    assert {e["subscriptionType"] for e in receiver.events} == {"contact.propertyChange"}


def test_archives_merges_and_association_changes_are_delivered(client: Any, hs: Any, receiver: Receiver) -> None:
    subscribe(hs, receiver.url, "contact.deletion", "contact.merge", "contact.associationChange",
              "company.associationChange")
    gone = hs.ids("contacts")[0]
    primary, merged = [c for c in hs.ids("contacts") if hs.associations("contacts", c, "companies")][1:3]
    taken_over = [c for c in hs.associations("contacts", merged, "companies")
                  if c not in hs.associations("contacts", primary, "companies")]
    linked = hs.associations("contacts", primary, "companies") + taken_over
    company = next(c for c in hs.ids("companies") if c not in linked)
    client.crm.contacts.basic_api.archive(gone)
    new = client.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=primary,
                                                               object_id_to_merge=merged)).id
    client.crm.associations.v4.basic_api.create_default("contacts", new, "companies", company)
    client.crm.associations.v4.basic_api.archive("contacts", new, "companies", company)
    drained(hs)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(receiver.events, key=lambda e: e["eventId"]):
        by_type.setdefault(e["subscriptionType"], []).append(e)
    assert [(e["objectId"], e["changeFlag"]) for e in by_type["contact.deletion"]] == [(int(gone), "DELETED")]
    [merge] = by_type["contact.merge"]
    assert (merge["objectId"], merge["primaryObjectId"], merge["mergedObjectIds"], merge["newObjectId"]) == (
        int(new), int(primary), [int(merged)], int(new))
    assert isinstance(merge["numberOfPropertiesMoved"], int)
    links = [(e["associationType"], e["fromObjectId"], e["toObjectId"], e["associationRemoved"])
             for e in by_type["contact.associationChange"] + by_type["company.associationChange"]]
    expected = [("CONTACT_TO_COMPANY", int(new), int(company), False),
                ("CONTACT_TO_COMPANY", int(new), int(company), True),
                ("COMPANY_TO_CONTACT", int(company), int(new), False),
                ("COMPANY_TO_CONTACT", int(company), int(new), True)]
    for other in linked:  # the new record took over every company of both: each link is new on both ends
        expected += [("CONTACT_TO_COMPANY", int(new), int(other), False),
                     ("COMPANY_TO_CONTACT", int(other), int(new), False)]
    assert sorted(links) == sorted(expected)


def test_changes_made_through_the_python_api_are_delivered_too(hs: Any, receiver: Receiver) -> None:
    subscribe(hs, receiver.url, "deal.creation", properties={"deal": ["dealstage"]})
    deal = hs.create("deals", {"dealname": "Expansion", "dealstage": "appointmentscheduled"})
    hs.update("deals", deal, {"dealstage": "qualifiedtobuy"})
    drained(hs)
    assert sorted((e["subscriptionType"], e.get("propertyValue")) for e in receiver.events) == [
        ("deal.creation", None), ("deal.propertyChange", "qualifiedtobuy")]


def test_paused_subscriptions_and_an_app_without_a_target_send_nothing(hs: Any, receiver: Receiver) -> None:
    subscribe(hs, receiver.url, "contact.creation")
    sub = next(iter(hs.webhooks.subscriptions.values()))
    hs.webhooks.set_active(sub, False)
    hs.create("contacts", {"email": "paused@northwind.example"})
    hs.webhooks.set_active(sub, True)
    hs.webhooks.delete_settings()
    hs.create("contacts", {"email": "untargeted@northwind.example"})
    drained(hs)
    assert receiver.deliveries == [] and hs.stats()["webhooks"]["emitted"] == 0


def test_without_subscriptions_a_bulk_touch_does_no_webhook_work(hs: Any, receiver: Receiver) -> None:
    hs.touch("contacts", count=250, properties={"jobtitle": "Touched"})
    assert not hs.portal.listener.listening
    subscribe(hs, receiver.url, "deal.creation")  # subscribed, but not to contact changes
    hs.touch("contacts", count=250, properties={"jobtitle": "Touched again"})
    assert hs.webhooks.watched("contacts") == ()
    drained(hs)
    assert hs.stats()["webhooks"]["emitted"] == 0 and receiver.deliveries == []


def test_more_than_100_events_leave_in_batches_of_at_most_100(hs: Any, receiver: Receiver) -> None:
    subscribe(hs, receiver.url, properties={"contact": ["jobtitle"]})
    touched = hs.touch("contacts", count=250, properties={"jobtitle": "Chief Scoring Officer"})
    drained(hs)
    assert sorted(e["objectId"] for e in receiver.events) == sorted(int(i) for i in touched)
    assert max(len(d.events) for d in receiver.deliveries) == 100
    assert len({e["eventId"] for e in receiver.events}) == 250
    stats = hs.stats()["webhooks"]
    assert stats["emitted"] == stats["delivered"] == 250 and stats["requests"] == len(receiver.deliveries)


def test_a_failed_delivery_is_retried_with_the_next_attempt_number_and_a_new_signature(make_sandbox: Any) -> None:
    server, _, _ = make_sandbox(contacts=30, webhook_retry_scale=100_000)
    hs = server.vendor("hubspot")
    receiver = Receiver(fail=2).start()
    try:
        subscribe(hs, receiver.url, "company.creation")
        hs.create("companies", {"name": "Retry Ltd", "domain": "retry.example"})
        drained(hs)
    finally:
        receiver.stop()
    assert [d.events[0]["attemptNumber"] for d in receiver.deliveries] == [0, 1, 2]
    assert len({d.events[0]["eventId"] for d in receiver.deliveries}) == 1, "a retry is the same event"
    for d in receiver.deliveries:
        assert Signature.is_valid(d.headers["X-HubSpot-Signature-v3"], hs.webhooks.secret, d.body.decode(),
                                  http_uri=receiver.url, signature_version="v3",
                                  timestamp=d.headers["X-HubSpot-Request-Timestamp"])
    stamps = [int(d.headers["X-HubSpot-Request-Timestamp"]) for d in receiver.deliveries]
    assert stamps == sorted(stamps)
    stats = hs.stats()["webhooks"]
    assert (stats["failed"], stats["delivered"]) == (2, 1)


def test_hubspots_retry_schedule_spreads_ten_retries_over_a_day(hs: Any) -> None:
    delays = hs.webhooks.dispatcher.policy.retry_delays
    assert len(delays) == 10 and list(delays) == sorted(delays)
    assert 20 * 3600 <= sum(delays) <= 24 * 3600
    assert hs.webhooks.dispatcher.policy.batch_size == 100 and hs.webhooks.dispatcher.policy.timeout == 5.0


def test_the_apps_concurrency_setting_becomes_the_delivery_concurrency(hs: Any, receiver: Receiver) -> None:
    subscribe(hs, receiver.url, "contact.creation", max_concurrent=7)
    assert hs.webhooks.dispatcher.policy.concurrency == 7


def test_deliveries_go_only_to_loopback_unless_told_otherwise(hs: Any) -> None:
    subscribe(hs, "https://crmbridge.example.com/webhooks/hubspot", "contact.creation")
    hs.create("contacts", {"email": "far.away@northwind.example"})
    drained(hs)
    stats = hs.stats()["webhooks"]
    assert (stats["emitted"], stats["dropped"], stats["requests"]) == (1, 1, 0)


def test_duplicates_are_sent_twice_when_the_sandbox_is_asked_to(make_sandbox: Any) -> None:
    server, _, _ = make_sandbox(contacts=30, webhook_duplicates=1.0)
    hs = server.vendor("hubspot")
    receiver = Receiver().start()
    try:
        subscribe(hs, receiver.url, "contact.creation")
        hs.create("contacts", {"email": "twice@northwind.example"})
        drained(hs)
    finally:
        receiver.stop()
    assert len(receiver.events) == 2 and len({e["eventId"] for e in receiver.events}) == 1


def test_seeding_again_on_reset_sends_nothing(hs: Any, receiver: Receiver) -> None:
    subscribe(hs, receiver.url, "contact.creation", "company.creation")
    hs.reset()
    hs.create("contacts", {"email": "after.reset@northwind.example"})
    drained(hs)
    assert receiver.deliveries == [] and hs.stats()["webhooks"]["emitted"] == 0
