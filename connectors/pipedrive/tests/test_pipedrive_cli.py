"""``crmbridge backfill --source pipedrive`` as a user runs it: killed with SIGKILL, resumed, compared."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from crmbridge.model import EntityType
from crmbridge.store import Store
from crmbridge.sync import Syncer

CRMBRIDGE = str(Path(sys.executable).parent / "crmbridge")


def cli_env(server, db: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMBRIDGE_")}
    env.update({"CRMBRIDGE_DATABASE_URL": f"sqlite:///{db}", "CRMBRIDGE_SOURCES": "pipedrive",
                "CRMBRIDGE_PIPEDRIVE_BASE_URL": server.base_url("pipedrive"),
                "CRMBRIDGE_PIPEDRIVE_API_TOKEN": "sandbox", **settings})
    return env


def backfill_cursors(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2) as conn:
            return conn.execute("SELECT count(*) FROM cursors WHERE kind = 'backfill'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_killed_backfill_resumes_to_the_same_store_as_an_uninterrupted_one(sandbox_factory, connect, mapping,
                                                                                tmp_path):
    # A small plan (4 requests per window) and a slow clock: the run lasts long enough to be killed.
    slow = sandbox_factory(contacts=3000, time_scale=2.0, pipedrive_plan="lite", pipedrive_burst=4)
    db = tmp_path / "killed.db"
    env = cli_env(slow, db, CRMBRIDGE_PIPEDRIVE_BURST_LIMIT="4", CRMBRIDGE_PIPEDRIVE_BURST_INTERVAL_SECONDS="1.0")
    command = [CRMBRIDGE, "backfill", "--source", "pipedrive", "--format", "json"]
    run = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while backfill_cursors(db) < 3 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.poll() is None, "the backfill ended before it could be killed"
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=10)
    assert run.returncode == -signal.SIGKILL
    assert backfill_cursors(db) >= 3  # checkpoints of a run that did not finish
    calls_before = slow.vendor("pipedrive").stats()["total_calls"]

    resumed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert backfill_cursors(db) == 0
    resumed_calls = slow.vendor("pipedrive").stats()["total_calls"] - calls_before

    fast = sandbox_factory(contacts=3000)
    with Store(f"sqlite:///{tmp_path / 'reference.db'}") as reference:
        connector = connect(fast)
        Syncer(reference, connector, mapping(reference, connector)).backfill()
        expected = reference.snapshot()
    with Store(f"sqlite:///{db}") as killed:
        assert killed.snapshot() == expected
    # The second run went on from its checkpoints instead of starting over.
    assert resumed_calls < fast.vendor("pipedrive").stats()["total_calls"]


def test_backfill_without_a_token_says_which_setting_is_missing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMBRIDGE_")}
    env["CRMBRIDGE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    result = subprocess.run([CRMBRIDGE, "backfill", "--source", "pipedrive"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "CRMBRIDGE_PIPEDRIVE_API_TOKEN" in result.stderr and "no Pipedrive API token" in result.stderr


def test_backfill_with_a_wrong_token_fails_clearly_without_showing_it(sandbox_factory, tmp_path):
    server = sandbox_factory(tokens=("the-right-one",))
    env = cli_env(server, tmp_path / "x.db", CRMBRIDGE_PIPEDRIVE_API_TOKEN="a-wrong-token-1234")
    result = subprocess.run([CRMBRIDGE, "backfill", "--source", "pipedrive"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "401" in result.stderr and "check the access token" in result.stderr
    assert "a-wrong-token-1234" not in result.stderr + result.stdout


def test_sync_with_reconcile_archives_what_was_deleted_in_pipedrive(sandbox_factory, tmp_path):
    server = sandbox_factory(contacts=300)
    state = server.vendor("pipedrive").state
    env = cli_env(server, tmp_path / "crm.db")

    def crmbridge(*args: str) -> dict:
        result = subprocess.run([CRMBRIDGE, *args, "--source", "pipedrive", "--format", "json"], env=env,
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    crmbridge("backfill")
    person, activity = state.live_ids("persons")[0], state.live_ids("activities")[0]
    state.delete("persons", person)
    state.delete("activities", activity)
    plain = crmbridge("sync")["streams"]
    assert plain["persons"]["archived"] == plain["activities"]["archived"] == 0  # Pipedrive lists them nowhere
    reconciled = crmbridge("sync", "--reconcile")["streams"]
    assert (reconciled["persons"]["archived"], reconciled["activities"]["archived"]) == (1, 1)
    assert reconciled["persons"]["reconciled"] and reconciled["organizations"]["archived"] == 0
    with Store(f"sqlite:///{tmp_path / 'crm.db'}") as store:
        stored = store.records.live_ids("pipedrive", "persons", EntityType.PERSON)
        assert stored == {str(i) for i in state.live_ids("persons")}
