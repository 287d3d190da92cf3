"""The SLA on a real deployment: the sandbox and ``crmbridge run`` as processes (as in test_replicas.py) with an
SLA file, an SLA clock that runs many times faster than the wall clock, and a few leads made sales-ready in
HubSpot so that the daemon hands them off to Pipedrive and starts their clocks."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.sandbox.recorder import RecordingReceiver
from crmbridge.store import schema

from .test_replicas import Deployment, deployment, eventually, http

# 24/7, so business time is wall time on the SLA's own timeline and the ladder plays out at a known pace.
SLA_YAML = """\
version: 1
calendars:
  always: {timezone: UTC, hours: {mon-sun: "00:00-24:00"}}
policies:
  - name: first-touch
    measure: first_touch
    within: 60m
    ladder:
      remind: [50%]
      escalate: {at: 100%, to: sales.manager@lumen.example}
      reassign: {after: 30m, max: 1}
"""

# The SLA file's ladder on the SLA clock, in business minutes after the hand-off.
REMIND_AT, ESCALATE_AT, REASSIGN_AT = 30, 60, 90
# Slack's context line carries the notice key: <hand-off>:<policy>:<reassignments>:<step>-<seq>.
KEY = re.compile(r"ref (?P<handoff>\S+):(?P<policy>[^:\s]+):(?P<round>\d+):(?P<step>remind|escalate|reassign)"
                 r"-(?P<seq>\d+)")


def sla_environment(tmp_path: Path, *, speed: float, sla_yaml: str = SLA_YAML, **extra: str) -> dict[str, str]:
    """What every start of the daemon sees: the SLA file, a fast SLA clock with a fixed epoch (so a restart
    continues one timeline), and a short tick."""
    sla = tmp_path / "sla.yaml"
    sla.write_text(sla_yaml)
    epoch = datetime.now(UTC).replace(microsecond=0)
    return {"CRMBRIDGE_SLA_CONFIG": str(sla), "CRMBRIDGE_SLA_CLOCK_SPEED": str(speed),
            "CRMBRIDGE_SLA_CLOCK_EPOCH": epoch.isoformat().replace("+00:00", "Z"),
            "CRMBRIDGE_SLA_TICK_SECONDS": "0.25", "PYTHONUNBUFFERED": "1", **extra}


@contextlib.contextmanager
def sla_deployment(tmp_path: Path, database_url: str, contacts: int = 100, **settings: str) -> Iterator[Deployment]:
    """One replica (the scheduler's leader, so the SLA ticker) behind the service name."""
    with deployment(tmp_path, database_url, contacts=contacts, replicas=1, **settings) as d:
        yield d


def make_sales_ready(d: Deployment, count: int, seed: int) -> set[str]:
    """``count`` HubSpot contacts turn sales-ready; their webhooks reach the daemon, which hands them off."""
    status, made = http("POST", f"{d.sandbox_url}/_sandbox/simulate?source=hubspot",
                        {"sales_ready": count, "seed": seed})
    assert status == 200, made
    wanted = {p["email"].lower() for p in made["hubspot"]["sales_ready"]}
    assert len(wanted) == count
    return wanted


def clocks(d: Deployment) -> list[dict[str, Any]]:
    with d.store.engine.connect() as conn:
        return [r._asdict() for r in conn.execute(sa.select(schema.sla_clocks).order_by(schema.sla_clocks.c.id))]


def steps(d: Deployment) -> list[dict[str, Any]]:
    with d.store.engine.connect() as conn:
        return [r._asdict() for r in conn.execute(sa.select(schema.sla_steps))]


def wait_for_clocks(d: Deployment, emails: set[str], timeout: float = 45) -> dict[str, dict[str, Any]]:
    """The hand-offs of these people, once each is done and its first clock runs: by hand-off key."""

    def started() -> dict[str, dict[str, Any]] | None:
        mine = {h["key"]: h for h in d.handoffs()
                if h["status"] == "done" and str(h["summary"].get("email") or "").lower() in emails}
        running = {c["handoff_key"] for c in clocks(d) if c["policy"]}
        return mine if len(mine) == len(emails) and set(mine) <= running else None

    found = eventually(started, timeout, 0.1)
    assert found, f"hand-offs or clocks missing: {d.handoffs()}\n{clocks(d)}\n" + d.replicas[0].tail()
    return found


def handoff_owners(d: Deployment) -> dict[str, str]:
    h = schema.handoffs.c
    with d.store.engine.connect() as conn:
        return {key: str(owner) for key, owner in conn.execute(sa.select(h.key, h.owner_id))}


def pipedrive_deal(d: Deployment, deal_id: str) -> dict[str, Any]:
    status, body = http("GET", f"{d.sandbox_url}/pipedrive/api/v2/deals/{deal_id}",
                        headers={"x-api-token": d.env["CRMBRIDGE_PIPEDRIVE_API_TOKEN"]})
    assert status == 200, body
    return body["data"]


def notice_keys(receiver: RecordingReceiver) -> list[dict[str, str]]:
    """The SLA notices a Slack receiver got, in order: hand-off, round (reassignments) and step."""
    out = []
    for _, body in list(receiver.deliveries):
        message = orjson.loads(body)
        for block in message.get("blocks") or ():
            for element in block.get("elements") or ():
                found = KEY.search(str(element.get("text") or ""))
                if found:
                    out.append(found.groupdict())
    return out
