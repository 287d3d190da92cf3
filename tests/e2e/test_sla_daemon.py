"""The SLA ladder on the real daemon survives kill -9: reminders, escalation and reassignment each exactly once.

The sandbox and ``crmbridge run`` run as processes on PostgreSQL; three leads made sales-ready in HubSpot (beside
the seeded world's SQLs, handed off when the daemon starts) are handed off to Pipedrive by the daemon, and their
60-minute first-touch SLA (24/7, reminder at 50 %,
escalation at 100 % to the manager, reassignment 30 minutes later, once) plays out on an SLA clock 300 times
faster than the wall clock: a business minute every 0.2 s. Nobody touches the leads, so every step comes due.

The daemon is killed with SIGKILL at three points and started again each time:

1. between a reminder and its escalation (a seeded moment after the first reminder arrived);
2. in the middle of delivering a notice: the Slack receiver has the message but has not answered, so the
   daemon cannot have recorded it as sent;
3. in the middle of a reassignment: Pipedrive has carried out the owner change on the deal but its answer is
   held back, so the daemon has taken the step and written the owner, and nothing after.

At the end the Slack receiver counts, per hand-off and per round (0: the first owner, 1: the owner it was
reassigned to), exactly one message for each step, which the store's ``sla_steps`` agree with, and the deal
in Pipedrive has the owner the store says it has.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web

from crmbridge.sandbox.recorder import RecordingReceiver

from .sla_deployment import (
    KEY,
    clocks,
    handoff_owners,
    make_sales_ready,
    notice_keys,
    pipedrive_deal,
    sla_deployment,
    sla_environment,
    steps,
    wait_for_clocks,
)
from .test_replicas import Deployment, eventually, fresh_schema, http

pytestmark = [pytest.mark.xdist_group("sla-e2e"), pytest.mark.slow, pytest.mark.postgres]

SEED = 20261105
SPEED = 300.0  # SLA milliseconds per real millisecond: the 90-minute ladder takes 18 s, a second round 12 s more
LEADS = 3


class HoldingReceiver(RecordingReceiver):
    """A Slack webhook that records every message on arrival and, once asked, keeps the answer to the next
    matching one until released: the sender has delivered, but cannot know it yet."""

    def __init__(self) -> None:
        super().__init__()
        self.wanted: str | None = None  # a step name ("escalate", "reassign") whose next message is held
        self.holding = threading.Event()
        self.release = threading.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.deliveries.append((dict(request.headers), body))
        found = KEY.search(body.decode(errors="replace"))
        if self.wanted and found and found["step"] == self.wanted:
            self.wanted = None
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        return web.json_response({"status": "ok"})


def per_step(receiver: RecordingReceiver) -> Counter[tuple[str, int, str]]:
    return Counter((k["handoff"], int(k["round"]), k["step"]) for k in notice_keys(receiver))


def restart(d: Deployment) -> None:
    replica = d.replicas[0]
    replica.kill9()
    replica.start()
    replica.wait_healthy()


def kill_between_reminder_and_escalation(d: Deployment, slack: HoldingReceiver, rng: random.Random) -> None:
    def reminded() -> str | None:
        sent = per_step(slack)
        return next((h for (h, r, s) in sent if r == 0 and s == "remind" and not sent[(h, 0, "escalate")]), None)

    handoff = eventually(reminded, 30, 0.02)
    assert handoff, f"no reminder arrived: {notice_keys(slack)}\n" + d.replicas[0].tail()
    time.sleep(rng.uniform(0.0, 1.0))  # a seeded moment inside the 6 s between reminder and escalation
    d.replicas[0].kill9()
    assert not per_step(slack)[(handoff, 0, "escalate")], "the kill came after the escalation"
    d.replicas[0].start()
    d.replicas[0].wait_healthy()


def kill_while_a_notice_is_delivered(d: Deployment, slack: HoldingReceiver, rng: random.Random) -> str:
    """The first escalation is held at the receiver; the daemon dies before it hears back. While it is down,
    Pipedrive is told to hold its answers on another hand-off's deal (see ``kill_while_the_owner_is_written``)."""
    slack.wanted = "escalate"
    try:
        assert slack.holding.wait(30), f"no escalation arrived: {notice_keys(slack)}\n" + d.replicas[0].tail()
        d.replicas[0].kill9()
    finally:
        slack.release.set()
    by_id = {c["id"]: c for c in clocks(d)}
    taken = {by_id[s["clock_id"]]["handoff_key"] for s in steps(d) if s["kind"] == "reassign"}
    waiting = [c for c in by_id.values() if c["reassignments"] == 0 and c["status"] == "open" and c["policy"]
               and c["handoff_key"] not in taken]
    assert waiting, f"every clock was reassigned already: {list(by_id.values())}"
    clock = rng.choice(sorted(waiting, key=lambda c: c["id"]))
    # The deal's next writes: the write-back's after a restart, its "breached" status, the reassignment's owner.
    status, body = http("POST", f"{d.sandbox_url}/_sandbox/hold", {
        "method": "PATCH", "path": f"/pipedrive/api/v2/deals/{clock['deal_id']}", "seconds": 1.5, "times": 6})
    assert status == 200, body
    d.replicas[0].start()
    d.replicas[0].wait_healthy()
    return str(clock["handoff_key"])


def kill_while_the_owner_is_written(d: Deployment, handoff: str) -> None:
    """Pipedrive has made the owner change and holds its answer: the step is taken, the hand-off not moved."""

    def reassigning() -> str | None:
        by_id = {c["id"]: c for c in clocks(d)}
        for s in steps(d):
            clock = by_id[s["clock_id"]]
            if clock["handoff_key"] == handoff and s["kind"] == "reassign":
                return "in hand" if s["status"] == "pending" and clock["status"] == "open" else "done"
        return None

    state = eventually(reassigning, 30, 0.01)
    assert state == "in hand", f"the reassignment was {state or 'never started'} before the kill: {steps(d)}"
    restart(d)


@pytest.mark.timeout(150)
def test_reminder_escalation_and_reassignment_each_reach_slack_exactly_once_across_kill_9(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    with HoldingReceiver() as slack, fresh_schema() as url:
        env = sla_environment(tmp_path, speed=SPEED, CRMBRIDGE_SLACK_WEBHOOK_URL=slack.url)
        with sla_deployment(tmp_path, url, **env) as d:
            handoffs = wait_for_clocks(d, make_sales_ready(d, LEADS, seed=SEED % 1000))

            kill_between_reminder_and_escalation(d, slack, rng)
            held_deal = kill_while_a_notice_is_delivered(d, slack, rng)
            kill_while_the_owner_is_written(d, held_deal)

            # Every hand-off whose clock nobody stopped (a reused deal already past the sales-ready stage counts
            # as accepted at once) climbs its whole ladder: round 0 to reassignment, round 1 (capped) to escalation.
            climbing = {str(c["handoff_key"]) for c in clocks(d) if c["reassignments"] == 0 and c["policy"]
                        and c["status"] in ("open", "reassigned")}
            assert held_deal in climbing and len(climbing & set(handoffs)) >= 2, (climbing, handoffs)
            wanted = {(h, r, s) for h in climbing for r, s in
                      [(0, "remind"), (0, "escalate"), (0, "reassign"), (1, "remind"), (1, "escalate")]}

            def done() -> bool:
                by_id = {c["id"]: c for c in clocks(d)}
                recorded = {(str(by_id[s["clock_id"]]["handoff_key"]), int(by_id[s["clock_id"]]["reassignments"]),
                             s["kind"]) for s in steps(d) if s["status"] == "sent"}
                return wanted <= set(per_step(slack)) and wanted <= recorded

            assert eventually(done, 40, 0.1), (
                f"ladder incomplete: missing {sorted(wanted - set(per_step(slack)))}, twice "
                f"{ {k: n for k, n in per_step(slack).items() if n > 1} }\n"
                f"{[c for c in clocks(d) if c['handoff_key'] == held_deal]}\n{handoff_owners(d).get(held_deal)}\n"
                + d.replicas[0].tail(6000))
            time.sleep(1.0)  # a few more ticks: nothing is sent again once everything is recorded
            sent = per_step(slack)
            store_steps = steps(d)
            final_clocks = clocks(d)
            deal_ids = {str(c["handoff_key"]): str(c["deal_id"]) for c in clocks(d)}
            deals = {h: pipedrive_deal(d, deal_ids[h]) for h in climbing}
            owners = handoff_owners(d)
            output = d.replicas[0].output()

    assert dict(sent) == dict.fromkeys(wanted, 1), sorted(sent.items())
    by_clock = {c["id"]: c for c in final_clocks}
    recorded = Counter((str(by_clock[s["clock_id"]]["handoff_key"]), int(by_clock[s["clock_id"]]["reassignments"]),
                        s["kind"]) for s in store_steps)
    assert recorded == Counter(dict.fromkeys(wanted, 1)), sorted(recorded.items())
    assert {s["status"] for s in store_steps} == {"sent"}, store_steps
    on_deal: dict[str, set[str]] = {}
    for key in climbing:
        rounds = sorted((c for c in final_clocks if c["handoff_key"] == key), key=lambda c: c["reassignments"])
        assert [(c["reassignments"], c["status"]) for c in rounds] == [(0, "reassigned"), (1, "open")], rounds
        assert str(rounds[1]["owner_id"]) != str(rounds[0]["owner_id"]) and str(rounds[1]["owner_id"]) == owners[key]
        on_deal.setdefault(str(rounds[0]["deal_id"]), set()).add(owners[key])
    # The deal in Pipedrive has the owner it was reassigned to. (Hand-offs of two people can share one deal,
    # each with its own clock: the deal then has the owner of whichever was reassigned last.)
    for key in climbing:
        deal = deals[key]
        assert str(deal["owner_id"]) in on_deal[str(deal["id"])], (key, deal["owner_id"], on_deal)
        if len(on_deal[str(deal["id"])]) == 1:
            assert str(deal["owner_id"]) == owners[key]
    assert any(len(v) == 1 for v in on_deal.values()), on_deal
    assert "Traceback" not in output, output[-3000:]
