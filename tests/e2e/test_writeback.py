"""Write-back end to end on both sandboxes: setup, hand-offs exactly once, and writes only of changes."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmbridge.connectors import SANDBOX_TOKEN
from crmbridge.notify import Notifier
from crmbridge.sandbox import SandboxServer
from crmbridge.settings import load_settings
from crmbridge.store import Store
from crmbridge.store import schema as S
from crmbridge.store.handoffs import WritebackLedger
from crmbridge.store.store import now_ms
from crmbridge.sync import Syncer, load_mapping
from crmbridge.writeback.build import build_writeback
from crmbridge.writeback.run import WriteBack

from . import killpoints
from .conftest import ROOT, sandbox_options
from .writeback_world import backfilled_and_scored, connector

pytestmark = [pytest.mark.xdist_group("writeback-e2e"), pytest.mark.slow]

SOURCES = ("hubspot", "pipedrive")
DEALS_CREATE = {"hubspot": "POST /crm/v3/objects/deals", "pipedrive": "POST /api/v2/deals"}


_connector = connector


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(sandbox_options(contacts=1200, seed=11), list(SOURCES)) as s:
        yield s


@pytest.fixture(scope="module")
def scored(server: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both CRMs backfilled and scored, once; each test works on a copy."""
    return backfilled_and_scored(server, tmp_path_factory.mktemp("writeback") / "store.db")


@pytest.fixture
def store(scored: Path, tmp_path: Path, server: SandboxServer) -> Iterator[Store]:
    server.vendor("hubspot").reset()
    server.vendor("pipedrive").reset()
    target = tmp_path / "store.db"
    shutil.copy(scored, target)
    with Store(f"sqlite:///{target}") as s:
        yield s


def writeback(server: SandboxServer, store: Store, tmp_path: Path, target: str = "pipedrive") -> WriteBack:
    config = tmp_path / "handoff.yaml"
    config.write_text(f"target: {target}\n")
    settings = load_settings(handoff_config=config)
    wb = build_writeback(settings, store, {s: _connector(server, s) for s in SOURCES}, notifier=Notifier())
    wb.overlap_ms = 0  # everything here happens within seconds; the overlap would re-plan it all
    wb.setup()
    return wb


def _stats(server: SandboxServer, source: str) -> Counter[str]:
    return Counter(server.vendor(source).stats()["calls"])


def report_calls(server: SandboxServer) -> Counter[str]:
    return _stats(server, "hubspot")


def _writes(calls: Counter[str]) -> int:
    return sum(n for endpoint, n in calls.items() if not endpoint.startswith("GET")
               and "/search" not in endpoint and "batch/read" not in endpoint)


def _sql_people(store: Store) -> set[int]:
    with store.engine.connect() as conn:
        return {int(p) for p in conn.execute(sa.select(S.scores.c.person_id).where(
            S.scores.c.stage == "sql", S.scores.c.disqualified.is_(None))).scalars()}


def _hubspot_deals_with_key(server: SandboxServer) -> Counter[str]:
    portal = server.vendor("hubspot").portal
    deals = portal.store("deals")
    column = deals.catalog.column("crmbridge_handoff_key")
    return Counter(r.get(column) for r in deals.records.values() if r.live and r.get(column))


def _pipedrive_deals_with_key(server: SandboxServer, key_field: str) -> Counter[str]:
    state = server.vendor("pipedrive").state
    rows = state.table("deals").rows.values()
    return Counter((r.get("custom_fields") or {}).get(key_field) for r in rows
                   if not r.get("is_deleted") and (r.get("custom_fields") or {}).get(key_field))


@pytest.mark.parametrize("target", SOURCES)
def test_every_sql_lands_once_in_the_sales_ready_stage_with_an_owner(server, store, tmp_path, target) -> None:
    wb = writeback(server, store, tmp_path, target)
    report = wb.run()

    sql = _sql_people(store)
    done = WritebackLedger(store).handoffs(status="done")
    assert len(sql) > 20
    assert {h["person_id"] for h in done} == sql
    assert len(done) == len(sql)
    created = [h for h in done if not h["reused"]]
    assert created and all(h["owner_id"] or h["mode"] == "claim" for h in created)
    accounts = Counter(h["company_ref"] for h in created if h["company_ref"])
    assert accounts and set(accounts.values()) == {1}  # colleagues share their account's one new deal
    assert all(h["reason"] for h in done)
    setup = wb.provisioned()[target]
    if target == "hubspot":
        keys = _hubspot_deals_with_key(server)
        assert report_calls(server)["POST /crm/v3/objects/deals/batch/create"] == math.ceil(len(created) / 100)
        portal = server.vendor("hubspot").portal
        deals = portal.store("deals")
        stage_col, owner_col = deals.catalog.column("dealstage"), deals.catalog.column("hubspot_owner_id")
        for h in created:
            deal = deals.live(int(h["deal_id"]))
            assert deal.get(stage_col) == setup.stage_id
            assert portal.associated("deals", int(h["deal_id"]), "contacts") == [int(h["person_ref"])]
            assert str(deal.get(owner_col) or "") == str(h["owner_id"] or "")  # the seller sees it as theirs
    else:
        keys = _pipedrive_deals_with_key(server, setup.field_keys["handoff_key"])
        rows = server.vendor("pipedrive").state.table("deals").rows
        for h in created:
            deal = rows[int(h["deal_id"])]
            assert str(deal["stage_id"]) == setup.stage_id
            assert str(deal["person_id"]) == h["person_ref"]
            if h["owner_id"]:  # (a claimed deal belongs to the requesting user until a seller takes it)
                assert str(deal["owner_id"]) == str(h["owner_id"])  # the seller sees it as theirs
    assert set(keys.values()) == {1}
    assert set(keys) == {h["key"] for h in created}
    assert report.handoffs.count("failed") == 0


def test_rerunning_the_whole_pipeline_creates_no_deal_and_makes_no_write_call(server, store, tmp_path) -> None:
    wb = writeback(server, store, tmp_path)
    wb.run()
    before = {s: _stats(server, s) for s in SOURCES}

    again = writeback(server, store, tmp_path)  # setup again, then a whole pass
    report = again.run()

    assert report.handoffs.outcomes == []
    assert report.plan.changes == []
    assert not report.plan.full and report.plan.considered == 0  # nothing changed since the last pass
    assert again.run(full=True).plan.changes == []  # and everyone, looked at again, is in line
    for source in SOURCES:
        assert _writes(_stats(server, source) - before[source]) == 0, source


def test_setup_twice_changes_nothing_the_second_time(server, store, tmp_path) -> None:
    wb = writeback(server, store, tmp_path)
    second = wb.setup()
    assert {s: r.changed for s, r in second.items()} == {"hubspot": False, "pipedrive": False}
    assert all(step.status == "present" for r in second.values() for step in r.steps)


def test_a_dry_run_prints_the_plan_and_writes_nothing(server, store, tmp_path) -> None:
    wb = writeback(server, store, tmp_path)
    before = {s: _stats(server, s) for s in SOURCES}
    report = wb.run(dry_run=True)
    assert report.plan.changes and report.handoffs.outcomes
    assert {o.action for o in report.handoffs.outcomes} <= {"would create", "would reuse"}
    for source in SOURCES:
        assert _writes(_stats(server, source) - before[source]) == 0
    assert WritebackLedger(store).handoffs() == []


def _engagement(store: Store, source: str, source_ids: list[str]) -> dict[str, int]:
    """What write-back should have written as each person's engagement score: the stored one, rounded."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT w.source_id, s.engagement FROM writeback_state w JOIN scores s ON "
                                    "s.person_id = w.person_id WHERE w.source = :src"), {"src": source})
        wanted = set(source_ids)
        return {sid: math.floor(float(e) + 0.5) for sid, e in rows if sid in wanted}


def test_k_changed_people_cost_exactly_ceil_k_over_100_hubspot_batch_calls(server, store, tmp_path) -> None:
    wb = writeback(server, store, tmp_path)
    wb.run()
    ids = sorted(WritebackLedger(store).held_ids("hubspot", "person"))[:150]
    before_values = _engagement(store, "hubspot", ids)
    with store.engine.begin() as conn:  # a re-score that moved 150 people's engagement by 7 points
        for sid in ids:
            conn.execute(sa.text("UPDATE scores SET engagement = engagement + 7, scored_ms = :now WHERE person_id = "
                                 "(SELECT person_id FROM writeback_state WHERE source='hubspot' AND source_id=:s)"),
                         {"s": sid, "now": now_ms()})
    before = _stats(server, "hubspot")
    report = wb.run()
    spent = _stats(server, "hubspot") - before
    changed = [c for c in report.plan.changes if c.source == "hubspot"]
    assert len(changed) == 150
    assert all(set(c.changes) == {"engagement_score", "scored_at"} for c in changed)
    assert not report.plan.full and report.plan.considered < 400  # only who changed was looked at
    assert spent["POST /crm/v3/objects/contacts/batch/update"] == math.ceil(150 / 100) == 2
    assert _writes(spent) == 2  # and no other write on the way
    # What HubSpot now holds is the new engagement of each of the 150, read back from the portal.
    key = wb.provisioned()["hubspot"].field_keys["engagement_score"]
    expected = _engagement(store, "hubspot", ids)
    assert expected == {sid: before_values[sid] + 7 for sid in ids}
    assert {sid: int(float(_contact_property(server, sid, key))) for sid in ids} == expected


def _cli_env(server: SandboxServer, store: Store, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "handoff.yaml"
    if not config.exists():
        config.write_text("target: hubspot\n")
    return {**os.environ, "CRMBRIDGE_DATABASE_URL": store.url, "CRMBRIDGE_SOURCES": "hubspot,pipedrive",
            "CRMBRIDGE_HANDOFF_CONFIG": str(config),
            "CRMBRIDGE_HUBSPOT_BASE_URL": server.base_url("hubspot"), "CRMBRIDGE_HUBSPOT_ACCESS_TOKEN": "sandbox",
            "CRMBRIDGE_PIPEDRIVE_BASE_URL": server.base_url("pipedrive"), "CRMBRIDGE_PIPEDRIVE_API_TOKEN": "sandbox",
            "CRMBRIDGE_HUBSPOT_SEARCH_PER_SECOND": "500", "CRMBRIDGE_PIPEDRIVE_PLAN": "ultimate"}


CLI = str(Path(sys.executable).parent / "crmbridge")


def _crmbridge(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def test_sigkill_between_creating_the_deal_and_recording_it_makes_no_duplicate(server, store, tmp_path) -> None:
    env = _cli_env(server, store, tmp_path)
    assert _crmbridge("setup", env=env).returncode == 0
    # A seeded kill point: the run dies with SIGKILL as soon as its first batch of deals is made,
    # before it records any of them (no hold, no polling, the same moment every run).
    spec = "crmbridge_hubspot.writer:HubSpotWriter.create_deals@1"
    killed = subprocess.run(killpoints.command(["writeback"]), env={**env, killpoints.KILL_AT: spec},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert _hubspot_deals_with_key(server), "the run never created a deal"
    orphans = list(_hubspot_deals_with_key(server))
    assert WritebackLedger(store).handoffs(status="done", keys=orphans) == []

    rerun = _crmbridge("writeback", "--format", "json", env=env)
    assert rerun.returncode == 0, rerun.stderr

    keys = _hubspot_deals_with_key(server)
    assert set(keys.values()) == {1}
    done = {h["key"]: h for h in WritebackLedger(store).handoffs(status="done")}
    assert all(done[key]["deal_id"] for key in orphans)
    assert {done[key]["reason"] for key in orphans} == {
        f"deal {done[key]['deal_id']} already carries this hand-off's key" for key in orphans}
    assert len(done) == len(_sql_people(store))


def test_two_concurrent_runs_create_no_duplicate(server, store, tmp_path) -> None:
    env = _cli_env(server, store, tmp_path)
    (tmp_path / "handoff.yaml").write_text("target: pipedrive\n")  # Pipedrive enforces no unique key itself
    assert _crmbridge("setup", env=env).returncode == 0
    runs = [subprocess.Popen([CLI, "writeback"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in runs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr

    setup = WriteBack.__new__(WriteBack)  # read the provisioned keys from the store only
    setup.store, setup.writers = store, {"pipedrive": None}  # type: ignore[dict-item]
    key_field = setup.provisioned()["pipedrive"].field_keys["handoff_key"]
    keys = _pipedrive_deals_with_key(server, key_field)
    done = WritebackLedger(store).handoffs(status="done")
    assert set(keys.values()) == {1}
    assert len(done) == len(_sql_people(store))
    assert len({h["person_id"] for h in done}) == len(done)


HANDOFF_REF = re.compile(r"ref (cb-[0-9a-f]+)")


class _Receiver:
    """A chat webhook on loopback that records what it is sent and answers with a settable status."""

    def __init__(self, status: int = 500) -> None:
        import http.server
        import threading

        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.answered: list[int] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.bodies.append(json.loads(body))
                receiver.answered.append(receiver.status)
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.status == 200 else b"error")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret"

    def delivered(self) -> Counter[str]:
        """Hand-off keys of the messages the channel accepted (answered 200), as many times as accepted."""
        return Counter(m.group(1) for body, status in zip(self.bodies, self.answered, strict=True) if status == 200
                       for m in [HANDOFF_REF.search(json.dumps(body))] if m)


def test_a_failing_chat_webhook_never_holds_a_hand_off_back_and_is_retried_later(server, store, tmp_path) -> None:
    from crmbridge.notify import RetryPolicy, SlackWebhook

    receiver = _Receiver()
    config = tmp_path / "handoff.yaml"
    config.write_text("target: hubspot\n")
    notifier = Notifier([SlackWebhook(receiver.url, timeout=2)],
                        policy=RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02))
    wb = build_writeback(load_settings(handoff_config=config), store, {s: _connector(server, s) for s in SOURCES},
                         notifier=notifier)
    wb.setup()
    report = wb.run()

    done = WritebackLedger(store).handoffs(status="done")
    assert len(done) == len(_sql_people(store)) and report.handoffs.count("failed") == 0
    assert report.notifications["retrying"] == len(done)
    pending = WritebackLedger(store).notifications()
    assert {n["status"] for n in pending} == {"pending"} and all(n["error"] for n in pending)
    assert all("secret" not in (n["error"] or "") for n in pending)

    assert receiver.delivered() == Counter()
    receiver.status = 200
    with store.engine.begin() as conn:  # the retry time has come
        conn.execute(sa.text("UPDATE notifications SET next_ms = 0"))
    assert wb.deliver_notifications()["sent"] == len(done)
    first = receiver.bodies[-1]
    assert "sales-ready" in json.dumps(first).lower()
    assert {n["status"] for n in WritebackLedger(store).notifications()} == {"sent"}
    once = Counter({h["key"]: 1 for h in done})
    assert receiver.delivered() == once  # each hand-off reached the channel, once
    wb.deliver_notifications()
    wb.run()
    wb.run(full=True)
    assert receiver.delivered() == once  # and nothing is sent twice, counted where it arrives
    receiver.server.shutdown()


def _contact_property(server: SandboxServer, contact_id: str, name: str) -> Any:
    contacts = server.vendor("hubspot").portal.store("contacts")
    return contacts.live(int(contact_id)).get(contacts.catalog.column(name))


def test_a_stage_moving_backwards_is_cleared_first_so_hubspot_takes_it(server, store, tmp_path) -> None:
    wb = writeback(server, store, tmp_path, "hubspot")
    wb.run()
    ledger = WritebackLedger(store)
    sql_people = _sql_people(store)
    # One whose SQL write-back wrote (a stage someone else set is never lowered; see the test below).
    held = [(sid, pid) for sid, pid in _held_people(store, "hubspot") if pid in sql_people
            and ledger.held("hubspot", "person", [sid])[sid].get("lifecycle_stage") == "sql"]
    sid, pid = held[0]
    assert _contact_property(server, sid, "lifecyclestage") == "salesqualifiedlead"
    with store.engine.begin() as conn:  # the model's recycling policy sends this SQL back to MQL
        conn.execute(sa.text("UPDATE scores SET stage = 'mql', scored_ms = :now WHERE person_id = :p"),
                     {"p": pid, "now": now_ms()})

    report = wb.run()

    change = next(c for c in report.plan.changes if c.source_id == sid)
    assert change.clear_first and change.changes["lifecycle_stage"] == ("sql", "mql")
    assert _contact_property(server, sid, "lifecyclestage") == "marketingqualifiedlead"
    assert ledger.held("hubspot", "person", [sid])[sid]["lifecycle_stage"] == "mql"


PROTECTED = ("customer", "opportunity", "evangelist")


def _hubspot_protected(server: SandboxServer) -> dict[str, str]:
    """Each HubSpot contact in a stage sales or finance own: id -> that stage."""
    contacts = server.vendor("hubspot").portal.store("contacts")
    column = contacts.catalog.column("lifecyclestage")
    return {str(r.id): r.get(column) for r in contacts.records.values() if r.live and r.get(column) in PROTECTED}


def _pipedrive_protected(server: SandboxServer) -> dict[str, Any]:
    """Each Pipedrive person whose (seeded) lifecycle stage is one sales own: id -> its option id."""
    state = server.vendor("pipedrive").state
    key = state.catalogs.key("person", "Lifecycle stage")
    options = {state.catalogs.option("person", "Lifecycle stage", label) for label in ("Opportunity", "Customer")}
    return {str(i): r["custom_fields"].get(key) for i, r in state.table("persons").rows.items()
            if not r.get("is_deleted") and (r.get("custom_fields") or {}).get(key) in options}


def _pipedrive_custom(server: SandboxServer, person_id: str, key: str) -> Any:
    return (server.vendor("pipedrive").state.table("persons").rows[int(person_id)].get("custom_fields") or {}).get(key)


@pytest.mark.parametrize("target", SOURCES)
def test_customers_keep_exactly_their_stage_whatever_the_score(server, store, tmp_path, target) -> None:
    hubspot, pipedrive = _hubspot_protected(server), _pipedrive_protected(server)
    assert len(hubspot) > 10 and len(pipedrive) > 10
    wb = writeback(server, store, tmp_path, target)
    report = wb.run()
    assert report.plan.changes  # write-back did write, to everyone else
    assert _hubspot_protected(server) == hubspot  # each keeps the very stage it had, not just a protected one
    assert _pipedrive_protected(server) == pipedrive
    ours = wb.provisioned()["pipedrive"].field_keys["lifecycle_stage"]
    assert {_pipedrive_custom(server, pid, ours) for pid in pipedrive} == {None}  # no stage of ours beside it
    touched = {(c.source, c.source_id) for c in report.plan.changes if "lifecycle_stage" in c.changes}
    assert not touched & ({("hubspot", i) for i in hubspot} | {("pipedrive", i) for i in pipedrive})


def _crm_stage_in_store(store: Store, source: str, source_id: str) -> str | None:
    with store.engine.connect() as conn:
        data = conn.execute(sa.select(S.persons.c.data).where(S.persons.c.source == source,
                                                                S.persons.c.source_id == source_id)).scalar_one()
    return json.loads(data).get("lifecycle_stage")


def _seller_sets_sql(server: SandboxServer, source: str, source_id: str) -> None:
    """A seller moves the person to SQL by hand, through the vendor's own API."""
    token = {"Authorization": f"Bearer {SANDBOX_TOKEN}"} if source == "hubspot" else {"x-api-token": SANDBOX_TOKEN}
    if source == "hubspot":
        url = f"{server.base_url(source)}/crm/v3/objects/contacts/{source_id}"
        body: dict[str, Any] = {"properties": {"lifecyclestage": "salesqualifiedlead"}}
    else:
        catalogs = server.vendor("pipedrive").state.catalogs
        url = f"{server.base_url(source)}/api/v2/persons/{source_id}"
        body = {"custom_fields": {catalogs.key("person", "Lifecycle stage"):
                                  catalogs.option("person", "Lifecycle stage", "SQL")}}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="PATCH",
                                     headers={"Content-Type": "application/json", **token})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _sync_until(store: Store, server: SandboxServer, source: str, source_id: str, stage: str) -> None:
    """Incremental passes, as the daemon makes them, until the store has seen the CRM's change (HubSpot's
    search index lags writes, so the first pass may not find it; the look-back of the next one does)."""
    deadline = time.monotonic() + 60
    while _crm_stage_in_store(store, source, source_id) != stage:
        assert time.monotonic() < deadline, f"no sync saw {source} {source_id} move to {stage}"
        c = _connector(server, source)
        Syncer(store, c, load_mapping(store, c, ROOT / "mappings" / f"{source}.yaml")).sync()


@pytest.mark.parametrize("source", SOURCES)
def test_a_stage_a_seller_set_by_hand_is_never_lowered_by_write_back(server, store, tmp_path, source) -> None:
    wb = writeback(server, store, tmp_path, "hubspot")
    wb.run()
    ledger = WritebackLedger(store)
    leads = [(sid, pid) for sid, pid in _held_people(store, source)
             if ledger.held(source, "person", [sid])[sid].get("lifecycle_stage") == "lead"]
    sid, pid = leads[len(leads) // 2]  # one whose stage write-back wrote: lead
    _seller_sets_sql(server, source, sid)
    _sync_until(store, server, source, sid, "sql")
    with store.engine.begin() as conn:  # then the model, knowing nothing of the call, proposes MQL
        conn.execute(sa.text("UPDATE scores SET stage = 'mql', scored_ms = :now WHERE person_id = :p"),
                     {"p": pid, "now": now_ms()})

    report = wb.run()

    mine = [c for c in report.plan.changes if (c.source, c.source_id) == (source, sid)]
    assert all("lifecycle_stage" not in c.changes for c in mine), mine
    assert ledger.held(source, "person", [sid])[sid]["lifecycle_stage"] == "lead"
    if source == "hubspot":
        assert _contact_property(server, sid, "lifecyclestage") == "salesqualifiedlead"
    else:
        catalogs = server.vendor("pipedrive").state.catalogs
        assert _pipedrive_custom(server, sid, catalogs.key("person", "Lifecycle stage")) == catalogs.option(
            "person", "Lifecycle stage", "SQL")
        ours = wb.provisioned()["pipedrive"].field_keys["lifecycle_stage"]
        assert _pipedrive_custom(server, sid, ours) == "lead"  # never MQL over the seller's SQL


def _held_people(store: Store, source: str) -> list[tuple[str, int]]:
    with store.engine.connect() as conn:
        return [(r[0], int(r[1])) for r in conn.execute(sa.text(
            "SELECT source_id, person_id FROM writeback_state WHERE source = :s ORDER BY source_id"), {"s": source})]


def test_in_claim_mode_deals_have_no_owner_and_the_team_is_told_to_claim(server, store, tmp_path) -> None:
    from crmbridge.notify import SlackWebhook

    receiver = _Receiver(status=200)
    (tmp_path / "routing.yaml").write_text("version: 1\nrules: []\nfallback: {mode: claim}\n")
    (tmp_path / "handoff.yaml").write_text("target: hubspot\nrouting: routing.yaml\n")
    wb = build_writeback(load_settings(handoff_config=tmp_path / "handoff.yaml"), store,
                         {s: _connector(server, s) for s in SOURCES},
                         notifier=Notifier([SlackWebhook(receiver.url, timeout=5)]))
    wb.setup()
    report = wb.run()
    created = [o for o in report.handoffs.outcomes if o.action == "created"]
    assert created and all(o.mode == "claim" and o.owner_id is None for o in created)
    deals = server.vendor("hubspot").portal.store("deals")
    owner = deals.catalog.column("hubspot_owner_id")
    assert all(not deals.live(int(o.deal_id)).get(owner) for o in created)
    # The team heard of each claimable deal exactly once, as one to claim, at the channel itself.
    notified = [o for o in report.handoffs.outcomes if o.action in ("created", "reused", "recovered")]
    assert receiver.delivered() == Counter({o.key: 1 for o in notified})
    texts = {m.group(1): json.dumps(body) for body in receiver.bodies
             for m in [HANDOFF_REF.search(json.dumps(body))] if m}
    assert all("to claim" in texts[o.key] for o in created)
    receiver.server.shutdown()


def test_setup_from_the_command_line_says_when_nothing_changed(server, store, tmp_path) -> None:
    env = _cli_env(server, store, tmp_path)
    first = _crmbridge("setup", env=env)
    second = _crmbridge("setup", env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "created" in first.stdout and "nothing changed" not in first.stdout
    assert second.stdout.count("nothing changed") == 2
    dry = _crmbridge("writeback", "--dry-run", "--format", "json", env=env)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["handoffs"] and {h["action"] for h in plan["handoffs"]} <= {"would create", "would reuse"}
    assert plan["plan"]["changes"] > 0 and "applied" not in plan
    assert WritebackLedger(store).handoffs() == []


def test_write_back_before_setup_fails_with_a_clear_message(server, store, tmp_path) -> None:
    result = _crmbridge("writeback", env=_cli_env(server, store, tmp_path))
    assert result.returncode != 0
    assert "crmbridge setup" in result.stderr and "Traceback" not in result.stderr


def test_setup_subscribes_pipedrive_webhooks_once_with_basic_auth(server, store, tmp_path) -> None:
    settings = load_settings(public_url="https://crmbridge.example.com", webhook_user="pd",
                             webhook_password="hook-secret")
    wb = build_writeback(settings, store, {s: _connector(server, s) for s in SOURCES}, notifier=Notifier())
    first = wb.setup()["pipedrive"]
    again = wb.setup()["pipedrive"]
    hooks = list(server.vendor("pipedrive").state.webhooks.values())
    assert sorted(h["event_object"] for h in hooks) == ["activity", "deal", "organization", "person"]
    assert {h["subscription_url"] for h in hooks} == {"https://crmbridge.example.com/webhooks/pipedrive"}
    assert {(h["http_auth_user"], h["http_auth_password"]) for h in hooks} == {("pd", "hook-secret")}
    assert [s.status for s in first.steps if s.what == "webhook"] == ["created"] * 4
    assert [s.status for s in again.steps if s.what == "webhook"] == ["present"] * 4
