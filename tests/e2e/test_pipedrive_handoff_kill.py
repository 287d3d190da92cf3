"""Pipedrive hand-offs survive kill -9 against the sandbox: the real command killed at seeded points,
then run again, leaves one deal per hand-off, owned as routed, and every person's fields written.

Pipedrive has no unique property to refuse a second deal with the same key (HubSpot has), so
recovery rests on write-back finding the deal it made before it died. Each kill point is a place
where the CRM has done the work and our ledger does not know it yet.
"""

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
    cli_env,
    crmbridge,
    field_keys,
    pipedrive_deals,
    pipedrive_person_field,
    report,
    scored,
    server,
    sql_people,
    store,
)

pytestmark = [pytest.mark.xdist_group("writeback-kill-e2e"), pytest.mark.slow]

SEED = 20261205
KILL_POINTS = {
    # POST /api/v2/deals has made the deal; the run dies before it records the hand-off as done.
    "deal made, not recorded": "crmbridge_pipedrive.writer:PipedriveWriter.create_deal",
    # A PATCH (a person's fields, or a deal's) has been carried out; the ledger does not hold it yet.
    "record written, not recorded": "crmbridge_pipedrive.client:PipedriveClient.v2_update",
}


def kill_at(point: str) -> int:
    """Which call of the kill point's method ends the run: the same one every run, from the seed."""
    return random.Random(f"{SEED}:{point}").randint(2, 9)


def killed_run(env: dict[str, str], point: str) -> None:
    spec = f"{KILL_POINTS[point]}@{kill_at(point)}"
    run = subprocess.run(killpoints.command(["writeback"]), env={**env, killpoints.KILL_AT: spec},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, f"the run was not killed at {spec}: {run.stderr[-2000:]}"


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_pipedrive_hand_off_killed_with_9_is_made_exactly_once_by_the_next_run(
        server: SandboxServer, store: Store, tmp_path: Path, point: str) -> None:  # noqa: F811
    env = cli_env(server, store, tmp_path, "pipedrive")
    assert crmbridge("setup", env=env).returncode == 0
    keys = field_keys(store, "pipedrive")
    ledger = WritebackLedger(store)

    killed_run(env, point)
    made = pipedrive_deals(server, keys["handoff_key"])
    assert made, "the run died before it made any deal"
    orphans = {d["custom_fields"][keys["handoff_key"]] for d in made.values()} - {
        h["key"] for h in ledger.handoffs(status="done")}
    if point == "deal made, not recorded":
        assert orphans, "no deal was left unrecorded: the kill came too late"

    report(crmbridge("writeback", "--format", "json", env=env))

    deals = pipedrive_deals(server, keys["handoff_key"])
    by_key = Counter(d["custom_fields"][keys["handoff_key"]] for d in deals.values())
    assert set(by_key.values()) == {1}  # no hand-off has a second deal
    done = {h["key"]: h for h in ledger.handoffs(status="done")}
    assert len(done) == len(sql_people(store)) and ledger.handoffs(status="failed") == []
    for key in orphans:  # the deal made before the kill was found, not made again
        assert done[key]["reason"] == f"deal {done[key]['deal_id']} already carries this hand-off's key"
    created = {k: h for k, h in done.items() if not h["reused"] or k in orphans}
    assert set(by_key) == set(created)  # every deal is a recorded hand-off, and each made one has its deal
    for h in created.values():
        deal = deals[int(h["deal_id"])]
        assert str(deal["person_id"]) == h["person_ref"]
        if h["owner_id"]:
            assert str(deal["owner_id"]) == str(h["owner_id"])
    # Every person's score in Pipedrive is what the ledger says was written (and nothing is left to write).
    held = {sid: ledger.held("pipedrive", "person", [sid])[sid] for sid in ledger.held_ids("pipedrive", "person")}
    assert held
    assert {sid: pipedrive_person_field(server, sid, keys["score"]) for sid in held} == {
        sid: values["score"] for sid, values in held.items()}
    again = report(crmbridge("writeback", "--format", "json", env=env))
    assert again["handoffs"] == [] and again["plan"]["changes"] == 0
