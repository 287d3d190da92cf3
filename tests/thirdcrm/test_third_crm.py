"""A third CRM, Tern, defined only in this test suite: installed like a third-party package, it syncs, its
people are scored, and its SQLs are handed off to it as deals with an owner, with no change in crmbridge.

What is expected is computed from the seeded world Tern's sandbox renders, not from crmbridge's store.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmbridge.cli import app
from crmbridge.connectors import SandboxOptions, capabilities
from crmbridge.model import EntityType, LifecycleStage
from crmbridge.sandbox import SandboxServer
from crmbridge.sandbox.world import FORM_SUBMISSION, generate_world
from crmbridge.store import Store
from crmbridge.writeback.config import HandoffConfig

SEED, CONTACTS = 11, 150
HAND_RAISE_FORMS = {"Request a demo", "Contact us"}  # what the test's scoring model makes an SQL


def _sqls(seed: int, contacts: int) -> tuple[set[str], set[str]]:
    """E-mails of the SQLs the world implies: who asked for a demo or for contact (unless sales already
    own them: opportunity and later), and who is SQL in the CRM already (stages never move back)."""
    world = generate_world(seed, contacts)
    b = world.behaviours
    raised = {b.person[i] for i in range(len(b))
              if b.kind[i] == FORM_SUBMISSION and world.forms[b.ref[i]].name in HAND_RAISE_FORMS}
    return ({p.email.lower() for p in world.people if p.index in raised and not p.lifecycle.is_protected},
            {p.email.lower() for p in world.people if p.lifecycle is LifecycleStage.SQL})


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def tern(tern_installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    server = SandboxServer(SandboxOptions(seed=SEED, contacts=CONTACTS, extra={"tern_page_size": 40}),
                           sources=["tern"]).start()
    monkeypatch.chdir(tmp_path)  # no handoff.yaml, scoring.yaml or sla.yaml of the working folder
    for name, value in {
        "CRMBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'tern.db'}", "CRMBRIDGE_SOURCES": "tern",
        "CRMBRIDGE_MAPPINGS_DIR": str(tern_installed / "mappings"),
        "CRMBRIDGE_SCORING_MODEL": str(tern_installed / "scoring.yaml"),
        "CRMBRIDGE_TERN_BASE_URL": server.base_url("tern"), "CRMBRIDGE_TERN_API_KEY": "sandbox",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield server
    finally:
        server.stop()


def test_a_third_crm_syncs_scores_and_receives_hand_offs_with_owners(tern: SandboxServer, tmp_path: Path) -> None:
    account = tern.vendor("tern").account
    raised, already_sql = _sqls(SEED, CONTACTS)
    expected_sql = raised | already_sql
    assert len(raised - already_sql) >= 3, "the seeded world should hold people who asked for a demo"

    _cli("backfill", "--no-writeback")
    store = Store(f"sqlite:///{tmp_path / 'tern.db'}")
    try:
        stored = {p.email for p in store.records.iter(EntityType.PERSON, "tern")}  # type: ignore[attr-defined]
    finally:
        store.close()
    assert stored == {r["email"].lower() for r in account.records["people"].values()}

    _cli("setup")
    _cli("writeback")
    handoffs = json.loads(_cli("handoffs", "--format", "json"))

    # Every SQL, and only SQLs, handed off to Tern, each to a deal Tern holds, owned by one of its sellers.
    assert {h["summary"]["email"] for h in handoffs} == expected_sql
    users = {r["id"] for r in account.records["users"].values() if r["active"]}
    deals = {d["id"]: d for d in account.deals}
    stage = next(k for k, v in account.stages.items() if v == "Sales-ready leads")
    people = {r["id"]: r for r in account.records["people"].values()}
    for h in handoffs:
        assert h["target"] == "tern"
        deal = deals[h["deal_id"]]
        assert deal["stage_id"] == stage and deal["status"] == "open"
        assert deal["owner_id"] in users, deal  # the owner is on the deal in the CRM, a seller of Tern
        person = next(p for p in people.values() if p["email"].lower() == h["summary"]["email"])
        assert person["stage"] == "sql"  # write-back reached the person: stage, score, hand-off owner
        assert person["cb_score"] >= (50 if h["summary"]["email"] in raised else 0)
        assert person["cb_handoff_owner"].startswith(h["summary"]["owner_label"])
    # A deal per hand-off, except that colleagues at one account share its open deal.
    made = [h for h in handoffs if h["deal_id"] and people[deals[h["deal_id"]]["person_id"]]["email"].lower()
            == h["summary"]["email"]]
    assert len(deals) == len(made) == len({h["deal_id"] for h in handoffs})

    _cli("writeback")  # a second pass hands nothing off twice
    assert len(account.deals) == len(deals)
    _cli("sync")  # an incremental pass reads what write-back changed, and hands nothing off again
    assert len(account.deals) == len(deals)


def test_the_third_crm_declares_what_the_core_asks_of_it(tern_installed: Path) -> None:
    declared = capabilities("tern")
    assert declared.label == "Tern" and not declared.lifecycle_forward_only
    # Tern ranks above a CRM that declares less, so "auto" hands off to it; explicit targets still win.
    assert HandoffConfig().target_for({}, ["hubspot", "tern"]) == ("tern", "default target")
    assert HandoffConfig(target="hubspot").target_for({}, ["hubspot", "tern"])[0] == "hubspot"


def test_the_third_crm_sandbox_takes_its_own_option_from_the_command_line(tern_installed: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["sandbox", "--option", "help"])
    assert listed.exit_code == 0 and "tern.page_size (int; default 50)" in listed.output

    wrong = runner.invoke(app, ["sandbox", "--source", "tern", "--option", "tern.page_size=many"])
    assert wrong.exit_code == 2 and "expected an integer" in wrong.output

    unknown = runner.invoke(app, ["sandbox", "--source", "tern", "--option", "tern.colour=blue"])
    assert unknown.exit_code == 2 and "tern.page_size" in unknown.output
