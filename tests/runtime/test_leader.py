"""One scheduler leader among replicas: the lock is exclusive, and freed when its holder goes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from crmbridge.errors import ConfigError
from crmbridge.runtime.leader import LeaderLock
from crmbridge.runtime.scheduler import Scheduler
from crmbridge.settings import load_settings
from crmbridge.store import Store
from crmbridge.sync import RunReport


def test_only_one_replica_leads_and_another_takes_over_when_it_lets_go(database_url: str) -> None:
    with Store(database_url) as a, Store(database_url) as b:
        first, second = LeaderLock(a), LeaderLock(b)
        assert first.held() is True
        assert second.held() is False
        assert first.held() is True  # still leading on the next check
        first.release()
        assert second.held() is True
        assert first.held() is False
        second.release()


HOLDER = textwrap.dedent("""
    import sys, time
    from crmbridge.logs import configure
    from crmbridge.runtime.leader import LeaderLock
    configure("WARNING")
    from crmbridge.store import Store
    lock = LeaderLock(Store(sys.argv[1]))
    print("leading" if lock.held() else "standby", flush=True)
    time.sleep(600)
""")


@pytest.mark.postgres
def test_a_killed_leader_on_postgres_frees_the_lead_for_a_standby(postgres_url: str) -> None:
    leader = subprocess.Popen([sys.executable, "-c", HOLDER, postgres_url], stdout=subprocess.PIPE, text=True)
    try:
        assert leader.stdout is not None and leader.stdout.readline().strip() == "leading"
        with Store(postgres_url) as store:
            standby = LeaderLock(store)
            assert standby.held() is False
            leader.kill()  # -9: no unlock, only the session's end frees the lock
            leader.wait(timeout=30)
            deadline = time.monotonic() + 30
            while not standby.held() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert standby.held() is True
            standby.release()
    finally:
        leader.kill()


def test_a_standby_replica_runs_no_pass() -> None:
    class Standby:
        def held(self) -> bool:
            return False

        def release(self) -> None:
            return None

    passes: list[str] = []
    scheduler = Scheduler(["crm"], 0.05, lambda s, f: passes.append(s) or RunReport(s, "sync"), leader=Standby())
    scheduler.start()
    time.sleep(0.3)
    scheduler.stop()
    assert passes == [] and scheduler.state.leading is False


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_zero_or_negative_sync_interval_is_a_configuration_error(value: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SYNC_INTERVAL_SECONDS", value)
    with pytest.raises(ConfigError, match="CRMBRIDGE_SYNC_INTERVAL_SECONDS"):
        load_settings()
    with pytest.raises(ValueError, match="positive"):
        Scheduler(["crm"], float(value), lambda s, f: RunReport(s, "sync"))
