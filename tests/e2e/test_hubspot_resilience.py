"""A backfill killed at any moment, or hit by faults, ends with the store an undisturbed run builds."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmbridge.sandbox import SandboxServer
from crmbridge.store import Store

from .conftest import TIME_SCALE, Backfilled, syncer

pytestmark = pytest.mark.xdist_group("hubspot-e2e")
CRMBRIDGE = Path(sys.executable).with_name("crmbridge")


def _env(server: SandboxServer, database: str) -> dict[str, str]:
    return {**os.environ, "CRMBRIDGE_SOURCES": "hubspot", "CRMBRIDGE_DATABASE_URL": database,
            "CRMBRIDGE_HUBSPOT_BASE_URL": server.base_url("hubspot"),
            "CRMBRIDGE_HUBSPOT_ACCESS_TOKEN": "pat-test-secret-0001",
            "CRMBRIDGE_HUBSPOT_SEARCH_PER_SECOND": str(5 * TIME_SCALE)}


def _checkpoints(path: Path) -> int:
    if not path.exists():
        return 0
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM cursors WHERE kind = 'backfill'")).scalar() or 0
    except sa.exc.OperationalError:
        return 0  # the schema is not there yet
    finally:
        engine.dispose()


def test_a_backfill_killed_at_a_random_moment_resumes_to_the_same_store(
        hubspot: SandboxServer, backfilled: Backfilled, tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    env = _env(hubspot, f"sqlite:///{path}")
    run = subprocess.Popen([str(CRMBRIDGE), "backfill", "--format", "json"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _checkpoints(path) == 0 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 2.0))
    assert run.poll() is None, "the backfill finished before it could be killed"
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert _checkpoints(path) > 0  # it died mid-way, with work to resume

    again = subprocess.run([str(CRMBRIDGE), "backfill", "--format", "json"], env=env, capture_output=True,
                           text=True, timeout=600)

    assert again.returncode == 0, again.stderr[-2000:]
    assert _checkpoints(path) == 0
    with Store(f"sqlite:///{path}") as resumed, Store(f"sqlite:///{backfilled.path}") as reference:
        assert resumed.snapshot() == reference.snapshot()


def test_a_backfill_under_5xx_429_timeouts_and_resets_converges_to_the_same_store(
        hubspot: SandboxServer, backfilled: Backfilled, tmp_path: Path) -> None:
    sandbox = hubspot.vendor("hubspot")
    sandbox.set_faults({"5xx": 0.10, "429": 0.05, "timeout": 0.01, "reset": 0.01})
    try:
        with Store(f"sqlite:///{tmp_path / 'faulty.db'}") as store:
            report = syncer(hubspot, store, read_timeout=0.5).backfill()
            faults = sandbox.stats()["faults"]
            snapshot = store.snapshot()
    finally:
        sandbox.set_faults({})
    assert faults.get("5xx", 0) > 0 and faults.get("429", 0) > 0
    assert report.retries >= sum(faults.values()) * 0.9
    with Store(f"sqlite:///{backfilled.path}") as reference:
        assert snapshot == reference.snapshot()


def test_the_token_never_reaches_the_logs_or_the_error_output(hubspot: SandboxServer, tmp_path: Path) -> None:
    env = {**_env(hubspot, f"sqlite:///{tmp_path / 's.db'}"), "CRMBRIDGE_LOG_LEVEL": "DEBUG"}
    never = subprocess.run([str(CRMBRIDGE), "sync"], env=env, capture_output=True, text=True, timeout=120)
    pulled = subprocess.run([str(CRMBRIDGE), "backfill", "--stream", "owners", "--stream", "deals"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert never.returncode == 2 and "run `crmbridge backfill --source hubspot` first" in never.stderr
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    for result in (never, pulled):
        assert "pat-test-secret-0001" not in result.stderr + result.stdout
