"""The container's entrypoint, run outside a container: `crmbridge run` serves health and metrics,
answers `crmbridge healthcheck`, syncs on schedule, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from crmbridge.runtime.metrics import parse_samples as samples
from crmbridge.sandbox import SandboxServer
from crmbridge.store import Store

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


def test_the_daemon_serves_health_syncs_on_schedule_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    with SandboxServer(sandbox_options(contacts=200, seed=9), ["hubspot"]) as server:
        database = f"sqlite:///{tmp_path / 'daemon.db'}"
        with Store(database) as store:
            syncer(server, store).backfill()
        env = {**os.environ, "CRMBRIDGE_SOURCES": "hubspot", "CRMBRIDGE_DATABASE_URL": database,
               "CRMBRIDGE_HUBSPOT_BASE_URL": server.base_url("hubspot"), "CRMBRIDGE_HUBSPOT_ACCESS_TOKEN": SECRET_TOKEN,
               "CRMBRIDGE_HUBSPOT_SEARCH_PER_SECOND": str(5 * TIME_SCALE), "CRMBRIDGE_HTTP_PORT": str(port),
               "CRMBRIDGE_SYNC_INTERVAL_SECONDS": "0.5", "CRMBRIDGE_LOG_FORMAT": "json"}
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
                if ok_passes(metrics, "hubspot") >= 2:
                    break
                time.sleep(0.2)
            check = subprocess.run([str(CRMBRIDGE), "healthcheck"], env=env, capture_output=True, text=True,
                                   timeout=30)
            ready = _get(f"http://127.0.0.1:{port}/readyz")
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=60)
    assert ok_passes(metrics, "hubspot") >= 2, err.decode()[-2000:]
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
        body = b'{"method": "GET", "path": "/hubspot/crm/v3/objects/deals", "seconds": 60, "times": 5}'
        urllib.request.urlopen(urllib.request.Request(f"{server.url}/_sandbox/hold", data=body, method="POST",
                                                      headers={"Content-Type": "application/json"}), timeout=10)
        backfill = subprocess.Popen([str(CRMBRIDGE), "backfill", "--no-writeback"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                runs = _status(env)["last_runs"] if Path(tmp_path / "killed.db").exists() else []
                if runs and runs[0]["status"] == "running":
                    break  # the deals' list is held: the backfill is in the middle of its pass
                time.sleep(0.2)
            else:
                pytest.fail("the backfill never started")
            backfill.kill()
            backfill.wait(timeout=30)
        finally:
            backfill.kill()
        assert _status(env)["last_runs"][0]["status"] == "interrupted"
