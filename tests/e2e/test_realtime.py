"""Real time on both sandboxes: the daemon's receiver and workers turn the CRMs' own webhooks into the
store a full sync would build, within seconds and with no sync pass, and hand sales-ready people off."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from crmbridge.connectors import SandboxOptions, plugin
from crmbridge.model import EntityType
from crmbridge.runtime.daemon import Daemon, DaemonThread
from crmbridge.runtime.pipeline import Pipeline
from crmbridge.runtime.workers import WorkerPolicy
from crmbridge.sandbox import SandboxServer
from crmbridge.settings import Settings, load_settings
from crmbridge.store import Store, schema
from crmbridge.store.handoffs import WritebackLedger
from crmbridge.store.inbox import Inbox

from .conftest import ANCHOR, TIME_SCALE

pytestmark = pytest.mark.xdist_group("realtime-e2e")
SOURCES = ["hubspot", "pipedrive"]
USER, PASSWORD = "crmbridge-test", "webhook-password-for-tests"


def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll until ``check`` answers something truthy, at most ``timeout`` seconds; return its answer."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def connectors(server: SandboxServer) -> dict[str, Any]:
    return {s: plugin(s).sandbox_connector(server.base_url(s), time_scale=TIME_SCALE) for s in SOURCES}


def verifiers(server: SandboxServer) -> dict[str, Any]:
    return {s: plugin(s).webhooks(user=USER, password=PASSWORD,
                                  **getattr(server.vendor(s), "webhook_options", dict)()) for s in SOURCES}


def settings_for(url: str) -> Settings:
    # Passes and SLA ticks wait an hour: what these tests measure is the webhook path alone (the SLA's own
    # writes to the CRMs, and their webhooks, are tested in test_sla_*).
    return load_settings(database_url=url, sources=SOURCES, webhook_user=USER, webhook_password=SecretStr(PASSWORD),
                         sync_interval_seconds=3600, sla_tick_seconds=3600)


@dataclass
class Live:
    server: SandboxServer
    store: Store
    pipeline: Pipeline
    daemon: Daemon
    url: str

    def drain(self, timeout: float = 30.0) -> None:
        for source in SOURCES:
            assert self.server.vendor(source).drain_webhooks(timeout)
        inbox = Inbox(self.store)
        assert eventually(lambda: inbox.counts()["pending"] == 0, timeout), inbox.counts()


@pytest.fixture(params=[{}], ids=["in order"])
def live(request, tmp_path) -> Iterator[Live]:
    options = SandboxOptions(seed=5, contacts=300, time_scale=TIME_SCALE, extra={"anchor": ANCHOR, **request.param})
    with SandboxServer(options, SOURCES) as server:
        url = f"sqlite:///{tmp_path / 'live.db'}"
        store = Store(url)
        pipeline = Pipeline(settings_for(url), store, connectors(server))
        for source in SOURCES:
            pipeline.syncer(source).backfill()
        pipeline.rescorer().run()
        daemon = Daemon(pipeline.settings, store, pipeline, verifiers(server),
                        policy=WorkerPolicy(settle_ms=100, max_wait_ms=500), first_pass_delay=3600)
        with DaemonThread(daemon) as running:
            daemon.receiver.public_url = running.url
            pipeline.settings = pipeline.settings.model_copy(update={"public_url": running.url})
            pipeline.writeback().setup()
            pipeline.write_back(full=True)
            yield Live(server, store, pipeline, daemon, running.url)
        pipeline.close()
        store.close()


def _runs(store: Store) -> list[str]:
    return [r["command"] for r in store.runs.last(50)]


def test_a_contact_created_in_hubspot_is_stored_within_seconds_with_no_sync_pass(live: Live) -> None:
    runs = _runs(live.store)
    contact = live.server.vendor("hubspot").create("contacts", {"email": "new.lead@acme-robotics.com",
                                                                "firstname": "Nova", "lastname": "Lead"})
    stored = eventually(lambda: live.store.records.get(EntityType.PERSON, "hubspot", contact))
    assert stored is not None and stored.email == "new.lead@acme-robotics.com"
    assert _runs(live.store) == runs  # no backfill or sync ran: the webhook did it


def test_a_person_created_in_pipedrive_is_stored_within_seconds_with_no_sync_pass(live: Live) -> None:
    runs = _runs(live.store)
    person = live.server.vendor("pipedrive").state.create("persons", {
        "name": "Ada Realtime", "emails": [{"value": "ada.realtime@example-bank.com", "primary": True,
                                            "label": "work"}]})
    stored = eventually(lambda: live.store.records.get(EntityType.PERSON, "pipedrive", str(person["id"])))
    assert stored is not None and stored.email == "ada.realtime@example-bank.com"
    assert _runs(live.store) == runs


def live_records(store: Store) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
    """What a full sync would hold: the live records of each entity. ``updated_at`` is left out: our own
    write-back moves it in the CRM, and nobody subscribes to hear about our own writes."""
    out = {}
    with store.engine.connect() as conn:
        for entity, t in schema.ENTITY_TABLES.items():
            rows = conn.execute(sa.select(t.c.source, t.c.source_id, t.c.data).where(t.c.archived.is_(False)))
            out[entity.value] = {(r.source, r.source_id): _comparable(orjson.loads(r.data)) for r in rows}
    return out


def _ours(key: str) -> bool:
    return key.startswith("crmbridge_") or key in ("lastmodifieddate", "hs_lastmodifieddate", "update_time")


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    record.pop("updated_at", None)
    record["extra"] = {k: v for k, v in (record.get("extra") or {}).items() if not _ours(k)}
    return record


MESSY = {"webhook_duplicates": 1.0, "webhook_shuffle": True}


@pytest.mark.parametrize("live", [{}, MESSY], ids=["in order", "duplicated and reordered"], indirect=True)
def test_updates_deletions_merges_and_links_by_webhook_end_where_a_full_backfill_ends(live: Live, tmp_path) -> None:
    hubspot, pipedrive = live.server.vendor("hubspot"), live.server.vendor("pipedrive")
    contacts, companies = hubspot.ids("contacts"), hubspot.ids("companies")
    hubspot.update("contacts", contacts[0], {"jobtitle": "Chief Revenue Officer"})
    hubspot.archive("contacts", contacts[1])
    hubspot.merge("contacts", contacts[2], contacts[3])
    hubspot.associate("contacts", contacts[4], "companies", companies[-1])
    persons = pipedrive.state.live_ids("persons")
    pipedrive.state.update("persons", persons[0], {"name": "Renamed By Webhook"})
    pipedrive.state.delete("persons", persons[1])
    pipedrive.state.merge("persons", persons[2], persons[3])
    live.drain()

    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    with Store(reference_url) as reference:
        fresh = Pipeline(settings_for(reference_url), reference, connectors(live.server))
        for source in SOURCES:
            fresh.syncer(source).backfill()
        expected = live_records(reference)
        fresh.close()
    got = live_records(live.store)
    for entity in ("person", "company", "deal"):
        assert got[entity] == expected[entity], entity
    assert live.store.records.get(EntityType.PERSON, "hubspot", contacts[1], follow_merges=False).archived


def test_a_delivery_signed_by_the_hubspot_sdk_helper_is_accepted_and_stored(live: Live) -> None:
    import json
    import urllib.request

    from hubspot.utils.signature import Signature

    contact = live.server.vendor("hubspot").ids("contacts")[0]
    body = json.dumps([{"eventId": 77, "subscriptionId": 5, "portalId": 1, "appId": 1, "attemptNumber": 0,
                        "occurredAt": int(time.time() * 1000), "subscriptionType": "contact.propertyChange",
                        "objectId": int(contact), "propertyName": "jobtitle", "propertyValue": "CTO"}])
    uri, stamp = f"{live.url}/webhooks/hubspot", str(int(time.time() * 1000))
    secret = live.server.vendor("hubspot").webhook_options()["secret"]
    signature = Signature.get_signature(secret, body, "v3", http_uri=uri, timestamp=stamp)
    request = urllib.request.Request(uri, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": stamp})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    with live.store.engine.connect() as conn:
        stored = conn.execute(sa.select(schema.inbox.c.source, schema.inbox.c.object_id).where(
            schema.inbox.c.event_id == "5:77")).all()
    assert [tuple(r) for r in stored] == [("hubspot", contact)]


def test_people_made_sales_ready_in_hubspot_become_deals_with_owners_in_seconds(live: Live) -> None:
    made = live.server.vendor("hubspot").simulate(sales_ready=3, seed=3)["sales_ready"]
    wanted = {p["email"].lower() for p in made}
    ledger = WritebackLedger(live.store)

    def handed_off() -> list[dict[str, Any]]:
        rows = [h for h in ledger.handoffs(status="done")
                if str((h.get("summary") or {}).get("email") or "").lower() in wanted]
        return rows if len(rows) == len(wanted) else []

    rows = eventually(handed_off, timeout=15)
    assert len(rows) == 3
    for row in rows:
        deal = live.server.vendor(row["target"]).state.get("deals", int(row["deal_id"])) \
            if row["target"] == "pipedrive" else live.server.vendor("hubspot").get("deals", row["deal_id"])
        assert deal is not None
        assert row["owner_id"] or row["mode"] == "claim"
