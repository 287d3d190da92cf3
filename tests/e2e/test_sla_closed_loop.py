"""The closed loop on both sandboxes: sandbox sellers answer the hand-offs in Pipedrive, the SLA engine reads
their touches and outcomes back, and write-back shows marketing in HubSpot what became of each lead."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmbridge.connectors import plugin
from crmbridge.identity import load_policy
from crmbridge.model import EntityType
from crmbridge.notify import Notifier
from crmbridge.rescore import Rescorer
from crmbridge.sandbox import SandboxServer
from crmbridge.scoring import ScoringModel
from crmbridge.settings import load_settings
from crmbridge.sla.config import SlaConfig
from crmbridge.sla.engine import SlaEngine
from crmbridge.sla.ledger import SlaLedger
from crmbridge.store import Store
from crmbridge.store.handoffs import WritebackLedger
from crmbridge.store.store import now_ms
from crmbridge.sync import Syncer, load_mapping
from crmbridge.writeback.build import build_writeback

from .conftest import ROOT, TIME_SCALE, sandbox_options

pytestmark = [pytest.mark.xdist_group("sla-closed-loop"), pytest.mark.slow]

SOURCES = ("hubspot", "pipedrive")
ALWAYS_OPEN = """
version: 1
calendars:
  always: {timezone: UTC, hours: {mon-sun: "00:00-24:00"}}
policies:
  - {name: first-touch, measure: first_touch, within: 60m, ladder: {remind: [75%], escalate: {to: boss@lumen.example}}}
"""
EXPECTED_TEXT = {"contacted": "contacted", "accepted": "accepted", "meeting": "meeting booked", "won": "won",
                 "lost": "lost", "rejected": "rejected"}


def _connector(server: SandboxServer, source: str) -> Any:
    return plugin(source).sandbox_connector(server.base_url(source), time_scale=TIME_SCALE,
                                            backoff_base_seconds=0.02, backoff_max_seconds=0.2)


def _sync(server: SandboxServer, store: Store, source: str, *, backfill: bool = False) -> None:
    c = _connector(server, source)
    syncer = Syncer(store, c, load_mapping(store, c, ROOT / "mappings" / f"{source}.yaml"))
    syncer.backfill() if backfill else syncer.sync()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[SandboxServer, Store, Any]]:
    settings = load_settings()
    with SandboxServer(sandbox_options(contacts=600, seed=21), list(SOURCES)) as server, \
            Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        for source in SOURCES:
            _sync(server, store, source, backfill=True)
        Rescorer(store, ScoringModel.load(settings.scoring_model_path), load_policy(settings.merge_policy_file)).run()
        config = tmp_path / "handoff.yaml"
        config.write_text("target: pipedrive\n")
        wb = build_writeback(load_settings(handoff_config=config), store,
                             {s: _connector(server, s) for s in SOURCES}, notifier=Notifier())
        wb.overlap_ms = 0
        wb.setup()
        wb.run()
        yield server, store, wb


def test_what_sales_did_reaches_marketing_and_the_deal_shows_its_sla(world) -> None:
    server, store, wb = world
    handoffs = WritebackLedger(store).handoffs(status="done")
    assert len(handoffs) > 10
    sla = SlaEngine(store, SlaConfig.from_text(ALWAYS_OPEN), writers=wb.writers)
    sla.tick(now_ms())
    owners = {str(h["owner_id"]) for h in handoffs if h["owner_id"]}
    until = datetime.now(UTC) + timedelta(days=40)
    answer = server.vendor("pipedrive").simulate(sellers={
        "until": until.strftime("%Y-%m-%dT%H:%M:%SZ"), "seed": 3, "profiles": dict.fromkeys(owners, "fast")})
    assert answer["sellers"]["summary"]["touches"] > 0
    _sync(server, store, "pipedrive")
    before = Counter(server.vendor("hubspot").stats()["calls"])
    sla.tick(int(until.timestamp() * 1000))
    report = wb.run()

    outcomes = SlaLedger(store).outcomes()
    kinds = Counter(o["kind"] for o in outcomes)
    assert kinds["contacted"] > 0 and kinds["rejected"] + kinds["lost"] + kinds["won"] > 0, kinds
    shown = _latest(outcomes)
    keys = wb.provisioned()["hubspot"].field_keys
    contacts = _hubspot_contacts(server, [keys["sales_outcome"], keys["sales_outcome_reason"]])
    checked = 0
    for person_id, outcome in shown.items():
        contact_id = _hubspot_id(store, person_id)
        if contact_id is None:
            continue  # a person only the sales CRM knows: nothing to tell marketing there
        props = contacts[contact_id]
        assert props.get(keys["sales_outcome"]) == EXPECTED_TEXT[outcome["kind"]], (person_id, outcome)
        assert (props.get(keys["sales_outcome_reason"]) or "") == (outcome["reason"] or "")
        checked += 1
    assert checked > 5
    updates = Counter(server.vendor("hubspot").stats()["calls"]) - before
    assert updates["POST /crm/v3/objects/contacts/batch/update"] <= math.ceil(report.applied.written["hubspot"] / 100)

    # Calibration reads the same verdicts: every person with a recorded won, lost or rejected is a sample.
    from crmbridge.rescore import outcome_samples

    samples = {sm.ref: sm.outcome.value for sm in outcome_samples(store)}
    final = [o for o in outcomes if o["kind"] in ("won", "lost", "rejected")]
    assert final
    for o in final:
        email = (store.scores.score_of(int(o["person_id"])) or {}).get("email") or str(o["person_id"])
        assert samples.get(email) in ("won", "lost", "rejected"), (o, samples.get(email))

    # The hand-off deals in Pipedrive show their SLA where sellers work.
    deal_keys = wb.provisioned()["pipedrive"].field_keys
    deals = server.vendor("pipedrive").state.table("deals").rows
    met = [c for c in SlaLedger(store).clocks(status="met")]
    assert met
    for clock in met:
        fields = deals[int(clock["deal_id"])].get("custom_fields") or {}
        assert fields.get(deal_keys["sla_status"]) == "met"
        assert float(fields.get(deal_keys["sla_business_minutes"])) == pytest.approx(clock["business_minutes"], 0.1)


def test_a_second_pass_after_the_loop_writes_nothing(world) -> None:
    server, store, wb = world
    sla = SlaEngine(store, SlaConfig.from_text(ALWAYS_OPEN), writers=wb.writers)
    until = datetime.now(UTC) + timedelta(days=40)
    server.vendor("pipedrive").simulate(sellers={"until": until.strftime("%Y-%m-%dT%H:%M:%SZ"), "seed": 3})
    _sync(server, store, "pipedrive")
    sla.tick(int(until.timestamp() * 1000))
    wb.run()
    again = wb.run()
    assert not again.plan.changes
    assert sla.tick(int(until.timestamp() * 1000)).deals_written == 0


def test_a_rejected_lead_is_recycled_and_handed_off_again_as_a_new_generation(world, tmp_path) -> None:
    server, store, wb = world
    sla = SlaEngine(store, SlaConfig.from_text(ALWAYS_OPEN), writers=wb.writers)
    until = datetime.now(UTC) + timedelta(days=40)
    server.vendor("pipedrive").simulate(sellers={"until": until.strftime("%Y-%m-%dT%H:%M:%SZ"), "seed": 5})
    _sync(server, store, "pipedrive")
    sla.tick(int(until.timestamp() * 1000))
    ledger = WritebackLedger(store)
    recycled = {h["person_id"]: h for h in ledger.handoffs(status="done") if h["recycled_ms"] is not None}
    kinds = {(o["person_id"], o["kind"]) for o in SlaLedger(store).outcomes()}
    assert recycled and all((p, "lost") in kinds or (p, "rejected") in kinds for p in recycled)
    assert wb.run().handoffs.outcomes == []  # back in nurture: not handed off again within the cool-down
    config = tmp_path / "handoff-now.yaml"
    config.write_text("target: pipedrive\nrecycle_after_days: 0\n")
    again = build_writeback(load_settings(handoff_config=config), store,
                            {s: _connector(server, s) for s in SOURCES}, notifier=Notifier())
    report = again.run()
    second = {o.person_id: o for o in report.handoffs.outcomes}
    still_sql = {p for p in recycled if (store.scores.score_of(p) or {}).get("stage") == "sql"}
    assert set(second) == still_sql and still_sql
    old_deals = {h["deal_id"] for h in recycled.values()}
    for outcome in second.values():
        assert outcome.key.endswith("-g2") and outcome.action in ("created", "reused")
        assert outcome.deal_id not in old_deals  # a new deal (colleagues share their account's), never the lost one
    assert any(o.action == "created" for o in second.values())
    assert again.run().handoffs.outcomes == []  # and exactly once


def _latest(outcomes: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    from crmbridge.writeback.plan import latest_outcome

    by_person: dict[int, list[dict[str, Any]]] = {}
    for o in outcomes:
        by_person.setdefault(int(o["person_id"]), []).append(o)
    return {p: latest_outcome(os) for p, os in by_person.items()}  # type: ignore[misc]


def _hubspot_id(store: Store, person_id: int) -> str | None:
    members = store.identities.members(EntityType.PERSON, [person_id]).get(person_id) or []
    return next((m.source_id for m in members if m.source == "hubspot" and not m.archived), None)


def _hubspot_contacts(server: SandboxServer, names: list[str]) -> dict[str, dict[str, Any]]:
    contacts = server.vendor("hubspot").portal.store("contacts")
    columns = {name: contacts.catalog.column(name) for name in names}
    return {str(r.id): {name: r.get(col) for name, col in columns.items()}
            for r in contacts.records.values() if r.live}
