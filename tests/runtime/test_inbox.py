"""The webhook inbox on both backends: redeliveries are no-ops, claims are exclusive (several processes
on PostgreSQL), a dead worker's claims come back after the lease, failures retry then quarantine."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from crmbridge.connectors import WebhookEvent
from crmbridge.store import Store
from crmbridge.store.inbox import Inbox


def _events(n: int, start: int = 0, stream: str = "contacts") -> list[WebhookEvent]:
    return [WebhookEvent(f"e{i}", stream, str(i % 7), "changed", 1_000 + i, property_name="email")
            for i in range(start, start + n)]


def test_a_redelivered_event_is_stored_once(store: Store) -> None:
    inbox = Inbox(store)
    assert inbox.add("crm", _events(10), received_ms=5) == 10
    assert inbox.add("crm", _events(10), received_ms=6) == 0
    assert inbox.add("other", _events(3), received_ms=6) == 3  # event ids are unique per source only
    assert inbox.counts() == {"pending": 13, "done": 0, "failed": 0, "quarantined": 0}


def test_a_claimed_event_is_not_claimed_again_until_its_lease_runs_out(store: Store) -> None:
    inbox, other = Inbox(store, holder="a:1:0"), Inbox(store, holder="b:2:0")
    inbox.add("crm", _events(5), received_ms=10)
    mine = inbox.claim(3, lease_ms=1_000, now=100)
    assert [e.event_id for e in mine] == ["e0", "e1", "e2"]
    assert [e.event_id for e in other.claim(10, lease_ms=1_000, now=200)] == ["e3", "e4"]
    assert other.claim(10, lease_ms=1_000, now=500) == []
    taken_over = other.claim(10, lease_ms=1_000, now=1_200)  # a's lease ended at 1,100
    assert [e.event_id for e in taken_over] == ["e0", "e1", "e2"] and taken_over[0].attempts == 2
    inbox.done([e.id for e in mine])  # a woke up late: its settle must not touch b's claims
    assert inbox.counts()["done"] == 0


def test_a_failing_event_is_retried_later_and_quarantined_after_its_last_attempt(store: Store) -> None:
    inbox = Inbox(store)
    inbox.add("crm", _events(2), received_ms=0)
    events = inbox.claim(10, lease_ms=1_000, now=0)
    assert inbox.failed(events, "CRM down", retry_in_ms=500, max_attempts=2, now=10) == (2, 0)
    assert inbox.claim(10, lease_ms=1_000, now=100) == []  # not before its retry time
    events = inbox.claim(10, lease_ms=1_000, now=600)
    assert [e.attempts for e in events] == [2, 2]
    assert inbox.failed(events, "CRM down", retry_in_ms=500, max_attempts=2, now=610) == (0, 2)
    assert inbox.counts() == {"pending": 0, "done": 0, "failed": 0, "quarantined": 2}
    assert {q["error"] for q in inbox.quarantined()} == {"CRM down"}
    assert inbox.replay() == 2
    assert len(inbox.claim(10, lease_ms=1_000)) == 2


def test_merges_and_property_names_survive_the_round_trip_but_no_value_is_kept(store: Store) -> None:
    inbox = Inbox(store)
    inbox.add("crm", [WebhookEvent("m1", "contacts", "9", "merged", 5, merged_into="9", merged_ids=("3", "4"))])
    (event,) = inbox.claim(1, lease_ms=1_000)
    assert (event.merged_into, event.merged_ids, event.action) == ("9", ("3", "4"), "merged")


def test_done_events_are_pruned_after_the_redelivery_window(store: Store) -> None:
    inbox = Inbox(store)
    inbox.add("crm", _events(3), received_ms=100)
    inbox.done([e.id for e in inbox.claim(2, lease_ms=1_000, now=200)])
    assert inbox.prune(older_than_ms=150) == 2
    assert inbox.counts() == {"pending": 1, "done": 0, "failed": 0, "quarantined": 0}


CLAIMER = textwrap.dedent("""
    import sys, json
    from crmbridge.store import Store
    from crmbridge.store.inbox import Inbox
    store = Store(sys.argv[1])
    inbox = Inbox(store, holder="host-" + sys.argv[2] + ":1:0")
    got = []
    while True:
        batch = inbox.claim(7, lease_ms=600_000)
        if not batch:
            break
        got.extend(e.event_id for e in batch)
        inbox.done([e.id for e in batch])
    print(json.dumps(got))
""")


@pytest.mark.postgres
def test_three_processes_draining_one_inbox_on_postgres_take_every_event_once(postgres_url: str) -> None:
    with Store(postgres_url) as store:
        Inbox(store).add("crm", _events(600), received_ms=0)
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, postgres_url, str(n)], stdout=subprocess.PIPE,
                              text=True) for n in range(3)]
    import json

    taken = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    every = [e for got in taken for e in got]
    assert sorted(every) == sorted(f"e{i}" for i in range(600))  # each exactly once
    with Store(postgres_url) as store:
        assert Inbox(store).counts()["done"] == 600


def test_claims_of_a_worker_killed_on_this_host_are_taken_over_at_once(store: Store) -> None:
    from crmbridge.store.holders import this_process

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = this_process().split(":")[0]
    Inbox(store).add("crm", _events(3), received_ms=0)
    killed = Inbox(store, holder=f"{host}:{dead.pid}:0")
    assert len(killed.claim(10, lease_ms=600_000, now=10)) == 3
    survivor = Inbox(store)
    assert survivor.backlog(now=20).due == 3  # long before the lease runs out
    assert [e.attempts for e in survivor.claim(10, lease_ms=600_000, now=20)] == [2, 2, 2]
