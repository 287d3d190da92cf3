"""What webhooks lead to: records read back 100 per batch call, and ``setup`` subscribing the app for real."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from crmbridge.connectors import plugin
from crmbridge.mapping import SourceMapping
from crmbridge.writeback.contract import ProvisionSpec
from crmbridge_hubspot import streams as S
from crmbridge_hubspot.writer import WebhookProvisioner

TARGET = "https://crmbridge.example.com/webhooks/hubspot"
MAPPING = Path(__file__).resolve().parents[3] / "mappings" / "hubspot.yaml"


def connector(server: Any, **options: Any) -> Any:
    return plugin("hubspot").sandbox_connector(server.base_url("hubspot"), **options)


# -- fetch -----------------------------------------------------------------------------------------------


def test_fetch_reads_records_100_per_batch_call_with_their_associations(hs_server: Any, hs: Any) -> None:
    c = connector(hs_server)
    c.request_properties({"contacts": ["email", "jobtitle"]})
    ids = hs.ids("contacts")[:250]
    pages = list(c.fetch("contacts", ids))
    records = [r for p in pages for r in p.records]
    assert sorted(r.id for r in records) == sorted(ids)
    assert all({"email", "jobtitle", "hs_merged_object_ids"} <= set(r.properties) for r in records)
    linked = next(r for r in records if hs.associations("contacts", r.id, "companies"))
    assert linked.associations["companies"] == hs.associations("contacts", linked.id, "companies")
    calls = c.usage().calls
    assert calls["POST /crm/v3/objects/contacts/batch/read"] == math.ceil(250 / 100) == len(pages)
    assert calls["POST /crm/v4/associations/contacts/companies/batch/read"] == len(pages)
    assert not any(p.archived_ids or p.merged for p in pages)


def test_fetch_reports_archived_ids_and_merged_ids_with_their_survivor(hs_server: Any, hs: Any) -> None:
    gone, primary, merged, plain = hs.ids("contacts")[:4]
    hs.archive("contacts", gone)
    new = hs.merge("contacts", primary, merged)
    [page] = list(connector(hs_server).fetch("contacts", [gone, merged, primary, plain, "999999"]))
    assert page.archived_ids == [gone, "999999"]
    assert new not in (primary, merged), "a merge makes a new record"
    assert page.merged == {merged: new, primary: new}
    assert sorted(r.id for r in page.records) == sorted([new, plain])


def test_a_merged_deal_is_reported_merged_not_archived(hs_server: Any, hs: Any) -> None:
    primary, merged = hs.ids("deals")[:2]
    new = hs.merge("deals", primary, merged)
    c = connector(hs_server)
    [page] = list(c.fetch("deals", [primary, merged]))
    assert page.merged == {primary: new, merged: new} and page.archived_ids == []
    [record] = page.records
    mapped = SourceMapping.load(MAPPING).mapper("deals").map(record)
    assert sorted(mapped.merged_ids) == sorted([primary, merged]), "the store learns the merge from the survivor"


def test_fetch_asks_once_for_an_id_named_twice(hs_server: Any, hs: Any) -> None:
    c = connector(hs_server)
    one = hs.ids("deals")[0]
    [page] = list(c.fetch("deals", [one, one, one]))
    assert [r.id for r in page.records] == [one]
    assert set(page.records[0].associations) == {"contacts", "companies"}


@pytest.mark.parametrize("stream", ["owners", "pipelines", "web_events"])
def test_streams_without_webhooks_fetch_nothing_and_call_nothing(hs_server: Any, stream: str) -> None:
    c = connector(hs_server)
    assert list(c.fetch(stream, ["1", "2"])) == []
    assert c.usage().total == 0


def test_contact_events_are_followed_by_web_events_and_deal_events_by_engagements(hs_server: Any) -> None:
    c = connector(hs_server)
    assert c.followups("contacts") == ("web_events",)
    # a seller's touch moves the deal's notes_last_contacted, nothing else announces it; other deal changes
    # (our own SLA fields among them) cost no search
    assert c.followups("deals", {"notes_last_contacted", "dealstage"}) == ("calls", "emails", "meetings")
    assert c.followups("deals", {"crmbridge_sla_status", None}) == ()
    assert all(c.followups(s) == () for s in ("companies", "deals", "owners", "calls"))


# -- setup -------------------------------------------------------------------------------------------------


def _webhook_steps(result: Any) -> list[Any]:
    return [s for s in result.steps if s.what.startswith("webhook")]


CONTACT_PROPERTIES = {
    "crmbridge_score": "number", "crmbridge_fit_score": "number", "crmbridge_engagement_score": "number",
    "crmbridge_score_reasons": "string", "crmbridge_scored_at": "datetime", "crmbridge_handoff_at": "datetime",
    "crmbridge_handoff_owner": "string", "crmbridge_sales_outcome": "string",
    "crmbridge_sales_outcome_reason": "string", "crmbridge_sales_outcome_at": "datetime",
}
DEAL_PROPERTIES = {
    "crmbridge_handoff_key": "string", "crmbridge_score_summary": "string", "crmbridge_sla_due_at": "datetime",
    "crmbridge_sla_status": "string", "crmbridge_sla_first_touch_at": "datetime",
    "crmbridge_sla_business_minutes": "number",
}


def test_setup_creates_the_write_back_properties_in_their_group_once(hs_server: Any, client: Any) -> None:
    writer = connector(hs_server).writer()
    first, second = writer.provision(ProvisionSpec()), writer.provision(ProvisionSpec())
    made = {(s.what, s.name) for s in first.steps if s.status == "created"}
    assert made == {("contacts property group", "crmbridge"), ("deals property group", "crmbridge"),
                    ("deal stage", "Sales Pipeline / Sales-ready leads")} | {
        ("contacts property", name) for name in CONTACT_PROPERTIES} | {
        ("deals property", name) for name in DEAL_PROPERTIES}
    assert not second.changed and {s.status for s in second.steps} == {"present"}
    assert len(second.steps) == len(CONTACT_PROPERTIES) + len(DEAL_PROPERTIES) + 1
    for object_type, wanted in (("contacts", CONTACT_PROPERTIES), ("deals", DEAL_PROPERTIES)):
        found = {p.name: p for p in client.crm.properties.core_api.get_all(object_type).results
                 if p.group_name == "crmbridge"}
        assert {name: p.type for name, p in found.items()} == wanted
    assert first.field_keys == {**{n.removeprefix("crmbridge_"): n for n in {**CONTACT_PROPERTIES, **DEAL_PROPERTIES}},
                                "lifecycle_stage": "lifecyclestage"}


def test_setup_points_the_app_at_the_receiver_and_subscribes_once(hs_server: Any, hs: Any) -> None:
    writer = connector(hs_server).writer()
    first = _webhook_steps(writer.provision(ProvisionSpec(webhook_url=TARGET)))
    second = _webhook_steps(writer.provision(ProvisionSpec(webhook_url=TARGET)))
    assert Counter(s.status for s in first) == {"created": len(first)}
    assert Counter(s.status for s in second) == {"present": len(second)}
    assert hs.webhooks.settings.target_url == TARGET
    subs = {(s.event_type, s.property_name) for s in hs.webhooks.subscriptions.values()}
    assert len(subs) == len(first) - 1 and all(s.active for s in hs.webhooks.subscriptions.values())
    for prefix in ("contact", "company", "deal"):
        assert {f"{prefix}.{e}" for e in S.WEBHOOK_EVENTS} <= {t for t, p in subs if p is None}
    watched = {p for t, p in subs if p}
    assert {"lifecyclestage", "jobtitle", "dealstage", "numberofemployees", "recent_conversion_date"} <= watched
    assert not any(p.startswith("crmbridge_") for p in watched), "write-back's own properties would echo"


def test_a_dry_run_says_what_it_would_subscribe_and_changes_nothing(hs_server: Any, hs: Any) -> None:
    steps = _webhook_steps(connector(hs_server).writer().provision(ProvisionSpec(webhook_url=TARGET), dry_run=True))
    assert {s.status for s in steps} == {"would create"}
    assert hs.webhooks.settings is None and hs.webhooks.subscriptions == {}


def test_setup_moves_the_target_and_reactivates_a_paused_subscription(hs_server: Any, hs: Any) -> None:
    writer = connector(hs_server).writer()
    writer.provision(ProvisionSpec(webhook_url="https://old.example.com/webhooks/hubspot"))
    paused = next(s for s in hs.webhooks.subscriptions.values() if s.event_type == "deal.merge")
    hs.webhooks.set_active(paused, False)
    steps = {(s.what, s.name): s for s in _webhook_steps(writer.provision(ProvisionSpec(webhook_url=TARGET)))}
    target = steps[("webhook target", TARGET)]
    assert target.status == "updated" and "old.example.com" in target.detail
    assert steps[("webhook subscription", "deal.merge")].status == "updated"
    assert hs.webhooks.settings.target_url == TARGET and paused.active


def test_setup_without_app_id_or_developer_key_says_which_setting_is_missing(hs_server: Any, monkeypatch) -> None:
    monkeypatch.delenv("CRMBRIDGE_HUBSPOT_APP_ID", raising=False)
    monkeypatch.delenv("CRMBRIDGE_HUBSPOT_DEVELOPER_API_KEY", raising=False)
    c = plugin("hubspot").connector(base_url=hs_server.base_url("hubspot"), access_token="sandbox", app_id=123)
    [step] = _webhook_steps(c.writer().provision(ProvisionSpec(webhook_url=TARGET)))
    assert step.status == "skipped" and "CRMBRIDGE_HUBSPOT_DEVELOPER_API_KEY" in step.detail
    assert "CRMBRIDGE_HUBSPOT_APP_ID" not in step.detail


def test_setup_without_a_webhook_url_leaves_the_app_alone(hs_server: Any, hs: Any) -> None:
    assert _webhook_steps(connector(hs_server).writer().provision(ProvisionSpec())) == []
    assert hs.webhooks.subscriptions == {}


def test_properties_the_account_lacks_are_not_subscribed(hs_server: Any, hs: Any) -> None:
    c = connector(hs_server)
    with hs.portal.lock:  # an account whose admin never created the qualifying-question properties
        for name in ("bant_budget", "project_status"):
            del hs.portal.catalogs["contacts"].defs[name]
    wanted = WebhookProvisioner(c.client, c.settings).wanted()
    assert ("contact.propertyChange", "bant_budget") not in wanted
    assert ("contact.propertyChange", "bant_need") in wanted


def test_the_developer_key_and_client_secret_are_redacted_from_logs(hs_server: Any) -> None:
    from crmbridge.logs import redact

    connector(hs_server, developer_api_key="dev-key-that-is-secret")
    plugin("hubspot").webhooks(secret="client-secret-that-is-secret")
    assert "secret" not in redact("key dev-key-that-is-secret and client-secret-that-is-secret").replace(
        "[redacted]", "")


# -- incremental sync against a lagging search index --------------------------------------------------------


def test_the_look_back_catches_a_write_search_showed_after_a_later_one(make_sandbox: Any) -> None:
    """A write indexed late sits behind a cursor that a later, quickly indexed write already moved on;
    only the look-back reaches it. Without one it is lost."""
    import time

    from crmbridge.connectors import StreamState

    server, _, _ = make_sandbox(contacts=30, hubspot_search_per_second=10_000)
    hs = server.vendor("hubspot")
    ids = iter(hs.ids("contacts"))

    def synced(lookback: float) -> tuple[str, str, set[str]]:
        """Two writes, the earlier indexed late; two passes. Answers both ids and what the passes read."""
        c = connector(server, lookback_seconds=lookback)
        start = c.start_cursor("contacts")
        early, late = next(ids), next(ids)
        hs.set_search_lag(0.6)
        hs.update("contacts", early, {"jobtitle": "Indexed late"})
        time.sleep(0.02)
        hs.set_search_lag(0)
        hs.update("contacts", late, {"jobtitle": "Indexed at once"})
        first = list(c.changes("contacts", StreamState(start, 30)))
        cursor = next(p.checkpoint for p in reversed(first) if p.checkpoint)
        time.sleep(0.7)  # the early write is searchable now
        second = list(c.changes("contacts", StreamState(cursor, 30)))
        return early, late, {r.id for p in first + second for r in p.records}

    early, late, read = synced(0)
    assert late in read and early not in read, "with no look-back the late-indexed write is lost"
    early, late, read = synced(30)
    assert {early, late} <= read
