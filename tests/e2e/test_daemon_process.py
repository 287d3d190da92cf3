"""The container's entrypoint, run outside a container: `crmbridge run` serves health and metrics,
answers `crmbridge healthcheck`, syncs on schedule, and stops cleanly on SIGTERM."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmbridge.runtime.metrics import parse_samples as samples
from crmbridge.sandbox import SandboxServer
from crmbridge.store import Store

from . import killpoints
from .conftest import SECRET_TOKEN, TIME_SCALE, sandbox_options, syncer

pytestmark = pytest.mark.xdist_group("daemon-e2e")
CRMBRIDGE = Path(sys.executable).with_name("crmbridge")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def ok_passes(text: str, source: str) -> float:
    return samples(text).get(("crmbridge_sync_runs_total", frozenset({("source", source), ("outcome", "ok")})), 0)


def failed_passes(text: str, source: str) -> float:
    return samples(text).get(("crmbridge_sync_runs_total", frozenset({("source", source), ("outcome", "failed")})),
                             0)


INTERVAL = 0.5  # seconds between the end of one pass and the start of the next


def _sync_runs(database: str) -> list[tuple[int, int | None, str]]:
    """The daemon's sync passes as the store recorded them: (started, finished, status), oldest first."""
    with Store(database) as store, store.engine.connect() as conn:
        return [(int(a), None if b is None else int(b), str(c)) for a, b, c in conn.execute(sa.text(
            "SELECT started_ms, finished_ms, status FROM runs WHERE command = 'sync' AND source = 'hubspot' "
            "ORDER BY id"))]


def test_the_daemon_serves_health_syncs_on_schedule_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    with SandboxServer(sandbox_options(contacts=200, seed=9), ["hubspot"]) as server:
        database = f"sqlite:///{tmp_path / 'daemon.db'}"
        with Store(database) as store:
            syncer(server, store).backfill()
        backfills = len(_sync_runs(database))
        env = {**os.environ, "CRMBRIDGE_SOURCES": "hubspot", "CRMBRIDGE_DATABASE_URL": database,
               "CRMBRIDGE_HUBSPOT_BASE_URL": server.base_url("hubspot"), "CRMBRIDGE_HUBSPOT_ACCESS_TOKEN": SECRET_TOKEN,
               "CRMBRIDGE_HUBSPOT_SEARCH_PER_SECOND": str(5 * TIME_SCALE), "CRMBRIDGE_HTTP_PORT": str(port),
               "CRMBRIDGE_SYNC_INTERVAL_SECONDS": str(INTERVAL), "CRMBRIDGE_LOG_FORMAT": "json"}
        daemon = subprocess.Popen([str(CRMBRIDGE), "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            metrics = ""
            while time.monotonic() < deadline:
                if daemon.poll() is not None:
                    break
                try:
                    _, metrics = _get(f"http://127.0.0.1:{port}/metrics")
                except OSError:
                    time.sleep(0.2)
                    continue
                if ok_passes(metrics, "hubspot") >= 4:
                    break
                time.sleep(0.2)
            check = subprocess.run([str(CRMBRIDGE), "healthcheck"], env=env, capture_output=True, text=True,
                                   timeout=30)
            ready = _get(f"http://127.0.0.1:{port}/readyz")
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=60)
    seen = ok_passes(metrics, "hubspot")
    assert seen >= 4, err.decode()[-2000:]
    assert failed_passes(metrics, "hubspot") == 0
    passes = _sync_runs(database)[backfills:]
    done = [p for p in passes if p[2] == "ok"]
    # The passes the metrics counted are the store's first passes, each successful (SIGTERM may cut one later).
    statuses = [status for _, _, status in passes]
    assert statuses[:int(seen)] == ["ok"] * int(seen), statuses
    # On schedule: each pass starts one interval after the last one ended, neither back to back nor late.
    gaps = [(nxt[0] - prev[1]) / 1000 for prev, nxt in itertools.pairwise(done)]
    assert gaps and all(INTERVAL - 0.05 <= g <= INTERVAL + 5.0 for g in gaps), gaps
    records = frozenset({("source", "hubspot"), ("stream", "contacts"), ("state", "live")})
    assert samples(metrics)[("crmbridge_records", records)] == 200
    assert check.returncode == 0 and "healthy" in check.stdout
    assert ready[0] == 200
    assert daemon.returncode == 0
    assert SECRET_TOKEN.encode() not in out + err


def test_healthcheck_fails_when_nothing_answers(tmp_path: Path) -> None:
    env = {**os.environ, "CRMBRIDGE_HTTP_PORT": str(_free_port())}
    check = subprocess.run([str(CRMBRIDGE), "healthcheck"], env=env, capture_output=True, text=True, timeout=30)
    assert check.returncode == 1 and "unhealthy" in check.stderr


def _status(env: dict[str, str]) -> dict:
    import json

    done = subprocess.run([str(CRMBRIDGE), "status", "--format", "json"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _hold_search(server: SandboxServer) -> None:
    """Every contacts search answers only after a minute: a pass in progress that will not end soon."""
    import json

    body = json.dumps({"method": "POST", "path": "/hubspot/crm/v3/objects/contacts/search", "seconds": 60,
                       "times": 20}).encode()
    request = urllib.request.Request(f"{server.url}/_sandbox/hold", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def test_sigterm_during_a_pass_stops_the_daemon_within_docker_grace_and_the_pass_shows_interrupted(
        tmp_path: Path) -> None:
    port = _free_port()
    with SandboxServer(sandbox_options(contacts=200, seed=9), ["hubspot"]) as server:
        database = f"sqlite:///{tmp_path / 'daemon.db'}"
        with Store(database) as store:
            syncer(server, store).backfill()
        env = {**os.environ, "CRMBRIDGE_SOURCES": "hubspot", "CRMBRIDGE_DATABASE_URL": database,
               "CRMBRIDGE_HUBSPOT_BASE_URL": server.base_url("hubspot"), "CRMBRIDGE_HUBSPOT_ACCESS_TOKEN": SECRET_TOKEN,
               "CRMBRIDGE_HUBSPOT_SEARCH_PER_SECOND": str(5 * TIME_SCALE), "CRMBRIDGE_HTTP_PORT": str(port),
               "CRMBRIDGE_SYNC_INTERVAL_SECONDS": "0.5"}
        _hold_search(server)
        daemon = subprocess.Popen([str(CRMBRIDGE), "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                runs = _status(env)["last_runs"]
                if runs and runs[0]["command"] == "sync" and runs[0]["status"] == "running":
                    break
                time.sleep(0.3)
            else:
                pytest.fail("the daemon never started a pass")
            asked = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            daemon.communicate(timeout=30)
            stopped_in = time.monotonic() - asked
        finally:
            daemon.kill()
        assert daemon.returncode == 0
        assert stopped_in < 10, f"took {stopped_in:.1f} s; Docker kills after 10"
        assert _status(env)["last_runs"][0]["status"] == "interrupted"


def test_a_backfill_killed_with_9_shows_as_interrupted_not_running(tmp_path: Path) -> None:
    with SandboxServer(sandbox_options(contacts=200, seed=9), ["hubspot"]) as server:
        database = f"sqlite:///{tmp_path / 'killed.db'}"
        env = {**os.environ, "CRMBRIDGE_SOURCES": "hubspot", "CRMBRIDGE_DATABASE_URL": database,
               "CRMBRIDGE_HUBSPOT_BASE_URL": server.base_url("hubspot"), "CRMBRIDGE_HUBSPOT_ACCESS_TOKEN": SECRET_TOKEN}
        # A seeded kill point: SIGKILL right after the pass has committed its first batch of records,
        # the middle of its pass, the same moment every run (no hold, no polling for it).
        spec = "crmbridge.sync:Syncer._commit@1"
        killed = subprocess.run(killpoints.command(["backfill", "--no-writeback"]),
                                env={**env, killpoints.KILL_AT: spec}, capture_output=True, text=True, timeout=120)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        runs = _status(env)["last_runs"]
        assert runs[0]["status"] == "interrupted"
        assert all(r["status"] != "running" for r in runs)
