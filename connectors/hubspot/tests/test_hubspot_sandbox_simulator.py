"""The activity simulator: hand-raisers and browsers acting now, seen in the events API and in webhooks."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crmbridge.connectors import WebhookRequest, plugin
from crmbridge.runtime.pipeline import Pipeline
from crmbridge.settings import load_settings
from crmbridge.store import Store
from crmbridge.store.inbox import InboxEvent
from crmbridge.writeback.contract import ProvisionSpec

from .conftest import RawHttp, Receiver, subscribe


def _events_since(client: Any, since_ms: int) -> list[Any]:
    page = client.events.events_api.get_page(object_type="contact", limit=100,
                                             occurred_after=datetime.fromtimestamp(since_ms / 1000, UTC))
    return list(page.results)


def test_hand_raisers_submit_contact_us_now_and_the_events_api_shows_it(client: Any, hs: Any) -> None:
    before = int(time.time() * 1000) - 1
    done = hs.simulate(sales_ready=3, seed=5)
    raised = done["sales_ready"]
    assert len(raised) == 3 and done["activities"] == 0
    form = next(f for f in hs.world.forms if f.name == "Contact us")
    events = [e for e in _events_since(client, before) if e.event_type == "e_submitted_form"]
    assert sorted(e.object_id for e in events) == sorted(r["id"] for r in raised)
    assert {e.properties["hs_form_id"] for e in events} == {form.guid}
    for person in raised:
        contact = hs.get("contacts", person["id"])
        assert contact["email"] == person["email"]
        assert contact["recent_conversion_event_name"] == "Contact us"
        assert int(contact["num_conversion_events"]) >= 1


def test_hand_raisers_fit_the_ideal_customer_profile_and_are_not_sales_business_yet(hs: Any) -> None:
    raised = hs.simulate(sales_ready=20, seed=1)["sales_ready"]
    people = {p.email: p for p in hs.world.people}
    for person in raised:
        p = people[person["email"]]
        company = hs.world.companies[p.company]
        assert 50 <= company.employees <= 1000 and company.region in ("EMEA", "NA")
        assert person["email"].endswith("@" + company.domain), "a business address"
        assert not (company.is_competitor or company.is_university) and p.seniority not in ("student", "intern")
        assert hs.get("contacts", person["id"])["lifecyclestage"] in ("subscriber", "lead", "marketingqualifiedlead")


def test_the_same_seed_picks_the_same_people_and_nobody_raises_a_hand_twice(hs: Any) -> None:
    first = hs.simulate(sales_ready=4, seed=42)["sales_ready"]
    again = hs.simulate(sales_ready=4, seed=42)["sales_ready"]
    assert not {p["id"] for p in first} & {p["id"] for p in again}
    hs.reset()
    assert hs.simulate(sales_ready=4, seed=42)["sales_ready"] == first


def test_browsers_view_pages_and_open_emails_now(client: Any, hs: Any) -> None:
    before = int(time.time() * 1000) - 1
    assert hs.simulate(activities=12, seed=3) == {"sales_ready": [], "activities": 12}
    kinds = {e.event_type for e in _events_since(client, before)}
    assert kinds <= {"e_visited_page", "e_opened_email"} and kinds
    assert len(_events_since(client, before)) == 12


def test_simulated_changes_go_out_as_property_change_webhooks_from_the_form(hs: Any, receiver: Receiver) -> None:
    subscribe(hs, receiver.url, properties={"contact": ["recent_conversion_date", "hs_email_last_open_date",
                                                        "hs_analytics_last_visit_timestamp"]})
    raised = hs.simulate(sales_ready=2, activities=6, seed=9)["sales_ready"]
    assert hs.drain_webhooks(20)
    forms = [e for e in receiver.events if e["propertyName"] == "recent_conversion_date"]
    assert sorted(str(e["objectId"]) for e in forms) == sorted(p["id"] for p in raised)
    assert {e["changeSource"] for e in forms} == {"FORM"}
    assert {e["changeSource"] for e in receiver.events if e not in forms} <= {"ANALYTICS", "EMAIL"}
    assert len(receiver.events) - len(forms) == 6


@pytest.mark.parametrize("body", [{"sales_ready": -1}, {"activities": "many"}, {"sales_ready": 1, "seed": "x"},
                                  {"visitors": 3}])
def test_the_simulate_route_answers_400_to_a_bad_request(hs_server: Any, body: dict[str, Any]) -> None:
    answer = RawHttp(hs_server.url, token=None)("POST", "/_sandbox/simulate?source=hubspot", body)
    assert answer.status == 400 and answer.body["error"]


def test_the_simulate_route_answers_what_it_did(hs_server: Any) -> None:
    answer = RawHttp(hs_server.url, token=None)("POST", "/_sandbox/simulate?source=hubspot",
                                                {"sales_ready": 2, "activities": 1, "seed": 4})
    assert answer.status == 200
    assert len(answer.body["hubspot"]["sales_ready"]) == 2 and answer.body["hubspot"]["activities"] == 1


def test_hand_raisers_become_sales_qualified_through_webhooks_end_to_end(make_sandbox: Any, tmp_path: Path) -> None:
    """Setup subscribes, a backfill scores, people raise their hands: the deliveries alone (verified,
    parsed, read back in batches, web events passed as a follow-up) make them SQL."""
    server, _, _ = make_sandbox(contacts=300, seed=11)
    hs = server.vendor("hubspot")
    receiver = Receiver().start()
    connector = plugin("hubspot").sandbox_connector(server.base_url("hubspot"), time_scale=100.0)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        connector.writer().provision(ProvisionSpec(webhook_url=receiver.url))
        pipeline = Pipeline(load_settings(sources=["hubspot"]), store, {"hubspot": connector})
        pipeline.backfill("hubspot")
        raised = hs.simulate(sales_ready=3, seed=7)["sales_ready"]
        assert all(_stage(store, p["email"]) != "sql" for p in raised), "not sales-ready before raising a hand"
        assert hs.drain_webhooks(20)
        events = _inbox(receiver, hs.webhooks.secret)
        assert {e.object_id for e in events} == {p["id"] for p in raised}
        pipeline.apply_events(events, write_back=False)
    finally:
        receiver.stop()
    for person in raised:
        [canonical] = store.identities.people_by_email(person["email"].lower())
        score = store.scores.score_of(canonical)
        assert score is not None and score["stage"] == "sql", person
        assert "contact_request" in str(score["data"]), "the hand-raise is why"
    store.close()


def _stage(store: Store, email: str) -> str | None:
    [canonical] = store.identities.people_by_email(email.lower())
    score = store.scores.score_of(canonical)
    return None if score is None else str(score["stage"])


def _inbox(receiver: Receiver, secret: str) -> list[InboxEvent]:
    verifier = plugin("hubspot").webhooks(secret=secret)
    out = []
    for delivery in receiver.deliveries:
        request = WebhookRequest("POST", receiver.url, delivery.headers, delivery.body, int(time.time() * 1000))
        for e in verifier.parse(request):
            out.append(InboxEvent(len(out) + 1, "hubspot", e.event_id, e.stream, e.object_id, e.action, e.occurred_ms,
                                  e.occurred_ms, 0, e.merged_into, e.merged_ids, e.property_name))
    return out
