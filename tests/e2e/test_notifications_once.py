"""Each hand-off's notice reaches the team channel exactly once, counted where it arrives (a recording
chat receiver on loopback), not by our own outbox: across reruns, two runs at the same time, and a run
killed with -9 right after the channel took a notice and before the outbox recorded it."""

from __future__ import annotations

import random
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from crmbridge.sandbox import SandboxServer
from crmbridge.store import Store
from crmbridge.store.handoffs import WritebackLedger

from . import killpoints
from .writeback_world import (  # noqa: F401  (fixtures)
    CLI,
    Answer,
    WebhookReceiver,
    chat,
    cli_env,
    crmbridge,
    delivered,
    mail,
    mail_env,
    mailed,
    report,
    scored,
    server,
    sql_people,
    store,
)

pytestmark = [pytest.mark.xdist_group("notifications-e2e"), pytest.mark.slow]

SEED = 20261205


def each_once(db: Store) -> Counter[str]:
    """What the channel should have received: every done hand-off's notice, once."""
    done = WritebackLedger(db).handoffs(status="done")
    assert len(done) == len(sql_people(db)) > 5
    return Counter({h["key"]: 1 for h in done})


def each_mail_once(db: Store) -> Counter[str]:
    """What the mail server should have accepted: one e-mail per hand-off that had someone to mail."""
    keys = Counter({n["handoff_key"]: 1 for n in WritebackLedger(db).notifications() if n["channel"] == "email"})
    assert keys
    return keys


def test_reruns_send_nothing_twice(server: SandboxServer, store: Store, tmp_path: Path,  # noqa: F811
                                   chat: WebhookReceiver, mail) -> None:  # noqa: F811
    env = {**cli_env(server, store, tmp_path, "pipedrive", chat), **mail_env(mail[0])}
    assert crmbridge("setup", env=env).returncode == 0
    first = report(crmbridge("writeback", "--format", "json", env=env))
    assert first["notifications"]["sent"] == len(WritebackLedger(store).notifications())  # all, at once
    for args in (("writeback",), ("writeback", "--full")):
        report(crmbridge(*args, "--format", "json", env=env))
    assert delivered(chat) == each_once(store)
    assert mailed(mail[1]) == each_mail_once(store)


def test_two_runs_at_the_same_time_send_each_notice_once(server: SandboxServer, store: Store,  # noqa: F811
                                                         tmp_path: Path, chat: WebhookReceiver,  # noqa: F811
                                                         mail) -> None:  # noqa: F811
    env = {**cli_env(server, store, tmp_path, "pipedrive", chat), **mail_env(mail[0])}
    assert crmbridge("setup", env=env).returncode == 0
    # The channel is slow to answer its first notices, so both runs are delivering at the same time.
    chat.answer(*[Answer(stall=2.0) for _ in range(4)])
    runs = [subprocess.Popen([CLI, "writeback"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
    report(crmbridge("writeback", "--format", "json", env=env))  # and whatever either left is delivered now
    assert delivered(chat) == each_once(store)
    assert mailed(mail[1]) == each_mail_once(store)


def test_a_run_killed_after_the_channel_took_a_notice_does_not_send_it_again(
        server: SandboxServer, store: Store, tmp_path: Path, chat: WebhookReceiver) -> None:  # noqa: F811
    env = cli_env(server, store, tmp_path, "pipedrive", chat)
    assert crmbridge("setup", env=env).returncode == 0
    n = random.Random(SEED).randint(2, 5)
    spec = f"crmbridge.notify.notifier:Notifier.deliver_to@{n}"
    killed = subprocess.run(killpoints.command(["writeback"]), env={**env, killpoints.KILL_AT: spec},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert sum(delivered(chat).values()) == n  # the n-th notice reached the channel, then the run died

    report(crmbridge("writeback", "--format", "json", env=env))
    report(crmbridge("writeback", "--format", "json", env=env))

    assert delivered(chat) == each_once(store)
    rows = WritebackLedger(store).notifications()
    assert len(rows) == len(each_once(store))
    assert Counter(r["status"] for r in rows)["sent"] >= len(rows) - 1  # the cut-off one is not left "pending"
    assert all(r["status"] != "pending" for r in rows)
