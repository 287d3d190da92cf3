"""Backfill and sync score what they pulled; a re-score that changes nothing writes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmbridge.cli import app
from crmbridge.identity import load_policy
from crmbridge.rescore import Rescorer, affected_people, funnel
from crmbridge.sandbox import SandboxServer
from crmbridge.scoring import ScoringModel
from crmbridge.store import Store

from .conftest import ROOT, TIME_SCALE, sandbox_options, syncer

pytestmark = pytest.mark.xdist_group("scoring-e2e")
MODEL = ROOT / "examples" / "scoring" / "default.yaml"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("scoring") / "store.db"
    with SandboxServer(sandbox_options(contacts=1500, seed=3), ["hubspot"]) as server, \
            Store(f"sqlite:///{path}") as store:
        syncer(server, store).backfill()
        rescorer = Rescorer(store, ScoringModel.load(MODEL), load_policy(ROOT / "mappings" / "merge.yaml"),
                            clock=lambda: NOW)
        first = rescorer.run()
        yield server, store, rescorer, first, path


def test_everyone_pulled_is_scored_and_the_funnel_has_every_stage(scored) -> None:
    server, store, _, first, _ = scored
    assert first.scored == server.vendor("hubspot").count("contacts")
    stages = funnel(store)
    assert stages.get("lead", 0) > stages.get("mql", 0) > 0 and stages.get("sql", 0) > 0


def test_a_rescore_that_changes_nothing_writes_nothing(scored) -> None:
    _, _, rescorer, _, _ = scored
    again = rescorer.run()
    assert again.written == 0 and again.accounts_written == 0


def test_a_sync_rescores_exactly_the_people_its_changes_touch(scored) -> None:
    server, store, rescorer, _, _ = scored
    sandbox = server.vendor("hubspot")
    try:
        touched = sandbox.touch("contacts", count=5, properties={"jobtitle": "Chief Executive Officer"})
        report = syncer(server, store).sync()
        people = affected_people(store, "hubspot", report)
        assert len(people) == 5
        result = rescorer.run(people)
        assert result.scored == 5 and 0 < result.written <= 5
        assert {store.scores.score_of(p)["email"] for p in people} == {
            sandbox.get("contacts", t)["email"].strip().lower() for t in touched}
    finally:
        sandbox.reset()


def test_decay_moves_scores_with_time_alone(scored) -> None:
    rescorer = scored[2]
    later = Rescorer(rescorer.store, rescorer.model, rescorer.policy, clock=lambda: NOW + timedelta(days=120))
    assert later.run().written > 0
    rescorer.run()  # back to the module's moment for the other tests


def test_score_explain_shows_the_reasons_of_an_sql(scored, monkeypatch) -> None:
    _, store, _, _, path = scored
    sql = store.scores.top_scores("sql", limit=1)[0]
    monkeypatch.setenv("CRMBRIDGE_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("CRMBRIDGE_SCORING_MODEL", str(MODEL))
    result = CliRunner().invoke(app, ["score", "explain", sql["email"].upper(), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["reasons"] and data["total"] > 0


def test_score_explain_of_an_unknown_person_is_a_clear_error(scored, monkeypatch) -> None:
    _, _, _, _, path = scored
    monkeypatch.setenv("CRMBRIDGE_DATABASE_URL", f"sqlite:///{path}")
    result = CliRunner().invoke(app, ["score", "explain", "nobody@nowhere.example"])
    assert result.exit_code == 1 and "no person with e-mail" in result.output


def test_calibrate_reads_outcomes_from_the_store(scored, monkeypatch) -> None:
    _, _, _, _, path = scored
    monkeypatch.setenv("CRMBRIDGE_DATABASE_URL", f"sqlite:///{path}")
    result = CliRunner().invoke(app, ["score", "calibrate", "--model", str(MODEL), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["samples"] > 0


def test_the_backfill_command_scores_what_it_pulled(tmp_path: Path, monkeypatch) -> None:
    with SandboxServer(sandbox_options(contacts=200, seed=4), ["hubspot"]) as server:
        monkeypatch.setenv("CRMBRIDGE_SOURCES", "hubspot")
        monkeypatch.setenv("CRMBRIDGE_DATABASE_URL", f"sqlite:///{tmp_path / 's.db'}")
        monkeypatch.setenv("CRMBRIDGE_HUBSPOT_BASE_URL", server.base_url("hubspot"))
        monkeypatch.setenv("CRMBRIDGE_HUBSPOT_ACCESS_TOKEN", "sandbox")
        monkeypatch.setenv("CRMBRIDGE_HUBSPOT_SEARCH_PER_SECOND", str(5 * TIME_SCALE))
        result = CliRunner().invoke(app, ["backfill", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["scoring"]["scored"] == 200
