"""What the write-back process tests share: both sandboxes, one scored store to copy, the command line
with its environment, a chat receiver that records what reaches it, and reads of the CRMs' deals."""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmbridge.connectors import SANDBOX_TOKEN, plugin
from crmbridge.identity import load_policy
from crmbridge.rescore import Rescorer
from crmbridge.sandbox import SandboxServer
from crmbridge.scoring import ScoringModel
from crmbridge.settings import load_settings
from crmbridge.store import Store
from crmbridge.store import schema as S
from crmbridge.sync import Syncer, load_mapping

from .conftest import ROOT, TIME_SCALE, sandbox_options

sys.path.insert(0, str(ROOT / "tests" / "notify"))  # the notification tests' receivers
from aiosmtpd.controller import Controller
from notify_helpers import Answer, Mailbox, WebhookReceiver, free_port

SOURCES = ("hubspot", "pipedrive")
CLI = str(Path(sys.executable).parent / "crmbridge")
HANDOFF_REF = re.compile(r"ref (cb-[0-9a-f]+)")

__all__ = ["Answer", "WebhookReceiver"]


def connector(server: SandboxServer, source: str) -> Any:
    return plugin(source).sandbox_connector(server.base_url(source), time_scale=TIME_SCALE,
                                            backoff_base_seconds=0.02, backoff_max_seconds=0.2)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(sandbox_options(contacts=600, seed=23), list(SOURCES)) as s:
        yield s


@pytest.fixture(scope="module")
def scored(server: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both CRMs backfilled and scored, once; each test works on a copy."""
    return backfilled_and_scored(server, tmp_path_factory.mktemp("handoff-world") / "store.db")


def backfilled_and_scored(server: SandboxServer, path: Path) -> Path:
    """A SQLite store at ``path`` with both CRMs backfilled and everyone scored."""
    settings = load_settings()
    with Store(f"sqlite:///{path}") as store:
        for source in SOURCES:
            c = connector(server, source)
            Syncer(store, c, load_mapping(store, c, ROOT / "mappings" / f"{source}.yaml")).backfill()
        Rescorer(store, ScoringModel.load(settings.scoring_model_path), load_policy(settings.merge_policy_file)).run()
    return path


@pytest.fixture
def store(scored: Path, tmp_path: Path, server: SandboxServer) -> Iterator[Store]:
    for source in SOURCES:
        server.vendor(source).reset()
    target = tmp_path / "store.db"
    shutil.copy(scored, target)
    with Store(f"sqlite:///{target}") as s:
        yield s


@pytest.fixture
def chat() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def mail() -> Iterator[tuple[int, Mailbox]]:
    """A local SMTP server that keeps what it accepts: (port, mailbox)."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), ready_timeout=5)
    controller.start()
    yield controller.port, box
    controller.stop()


def mail_env(port: int) -> dict[str, str]:
    """E-mail through the local server; notices nobody owns yet go to the team address."""
    return {"CRMBRIDGE_SMTP_HOST": "127.0.0.1", "CRMBRIDGE_SMTP_PORT": str(port), "CRMBRIDGE_SMTP_SECURITY": "none",
            "CRMBRIDGE_NOTIFY_FROM": "crmbridge@revops.example", "CRMBRIDGE_NOTIFY_TEAM_EMAIL": "sales@revops.example"}


def mailed(box: Mailbox) -> Counter[str]:
    """The hand-off keys of the e-mails the server accepted, as many times as accepted."""
    return Counter(str(email.message_from_bytes(e.original_content)["X-Crmbridge-Handoff-Key"])
                   for e in box.envelopes)


def cli_env(server: SandboxServer, store: Store, tmp_path: Path, target: str,
            chat: WebhookReceiver | None = None) -> dict[str, str]:
    config = tmp_path / "handoff.yaml"
    config.write_text(f"target: {target}\n")
    env = {**os.environ, "CRMBRIDGE_DATABASE_URL": store.url, "CRMBRIDGE_SOURCES": ",".join(SOURCES),
           "CRMBRIDGE_HANDOFF_CONFIG": str(config),
           "CRMBRIDGE_HUBSPOT_BASE_URL": server.base_url("hubspot"), "CRMBRIDGE_HUBSPOT_ACCESS_TOKEN": SANDBOX_TOKEN,
           "CRMBRIDGE_PIPEDRIVE_BASE_URL": server.base_url("pipedrive"), "CRMBRIDGE_PIPEDRIVE_API_TOKEN": SANDBOX_TOKEN,
           "CRMBRIDGE_HUBSPOT_SEARCH_PER_SECOND": "500", "CRMBRIDGE_PIPEDRIVE_PLAN": "ultimate"}
    if chat is not None:
        env["CRMBRIDGE_SLACK_WEBHOOK_URL"] = chat.url()
    return env


def crmbridge(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def delivered(chat: WebhookReceiver) -> Counter[str]:
    """The hand-off keys of the notices that reached the channel, as many times as they reached it."""
    return Counter(m.group(1) for r in chat.requests for m in [HANDOFF_REF.search(r.body.decode())] if m)


def sql_people(store: Store) -> set[int]:
    with store.engine.connect() as conn:
        return {int(p) for p in conn.execute(sa.select(S.scores.c.person_id).where(
            S.scores.c.stage == "sql", S.scores.c.disqualified.is_(None))).scalars()}


def field_keys(store: Store, source: str) -> dict[str, str]:
    """The CRM's keys of write-back's fields, as ``crmbridge setup`` recorded them."""
    setup = store.provisioned.get(source)
    assert setup, f"{source} is not set up"
    return dict(setup["field_keys"])


def pipedrive_deals(server: SandboxServer, key_field: str) -> dict[int, dict[str, Any]]:
    """Live Pipedrive deals that carry a hand-off key, by id."""
    rows = server.vendor("pipedrive").state.table("deals").rows
    return {i: r for i, r in rows.items()
            if not r.get("is_deleted") and (r.get("custom_fields") or {}).get(key_field)}


def pipedrive_person_field(server: SandboxServer, person_id: str, key: str) -> Any:
    row = server.vendor("pipedrive").state.table("persons").rows[int(person_id)]
    return (row.get("custom_fields") or {}).get(key)


def report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)
