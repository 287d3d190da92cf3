"""The hand-off ledger on both backends: claims are exclusive, a dead run's claim is taken over, and the
write-back state keeps what each CRM record was last given."""

from __future__ import annotations

import subprocess
import sys
import threading

from crmbridge.store import Store
from crmbridge.store.handoffs import WritebackLedger, this_process

LEASE = 60_000


def _open(ledger: WritebackLedger, n: int) -> list[str]:
    keys = [f"cb-{i:04d}" for i in range(n)]
    ledger.open([{"key": k, "person_id": i, "company_id": None, "target": "hubspot"} for i, k in enumerate(keys)])
    return keys


def test_a_hand_off_held_by_a_live_run_is_not_claimed_by_another(store: Store) -> None:
    ledger = WritebackLedger(store)
    keys = _open(ledger, 5)
    live = f"{this_process().split(':')[0]}:1:0"  # pid 1 always runs
    assert ledger.claim(keys[:3], LEASE, holder=live) == keys[:3]
    assert ledger.claim(keys, LEASE) == keys[3:]
    assert ledger.claim(keys, LEASE, holder="elsewhere:7:0") == []


def test_concurrent_claims_never_give_one_hand_off_to_two_runs(store: Store) -> None:
    ledger = WritebackLedger(store)
    keys = _open(ledger, 200)
    won: dict[str, list[str]] = {}

    def run(holder: str) -> None:
        won[holder] = WritebackLedger(store).claim(keys, LEASE, holder=holder)

    threads = [threading.Thread(target=run, args=(f"other-host:{n}:0",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [k for ks in won.values() for k in ks]
    assert sorted(claimed) == keys  # each exactly once


def test_a_claim_of_a_killed_process_is_taken_over_at_once(store: Store) -> None:
    ledger = WritebackLedger(store)
    keys = _open(ledger, 2)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    holder = f"{this_process().split(':')[0]}:{dead.pid}:0"
    assert ledger.claim(keys, LEASE, holder=holder) == keys
    assert ledger.claim(keys, LEASE) == keys


def test_an_expired_lease_is_free_again(store: Store) -> None:
    now = [1_000_000]
    ledger = WritebackLedger(store, clock=lambda: now[0])
    keys = _open(ledger, 1)
    assert ledger.claim(keys, LEASE, holder="other-host:5:0") == keys
    now[0] += LEASE - 1
    assert ledger.claim(keys, LEASE) == []  # a live holder elsewhere, within its lease
    now[0] += 2
    assert ledger.claim(keys, LEASE) == keys


def test_a_done_hand_off_is_never_claimed_again_and_counts_for_its_owner(store: Store) -> None:
    ledger = WritebackLedger(store)
    keys = _open(ledger, 3)
    assert ledger.claim(keys, LEASE) == keys
    ledger.complete(keys[0], deal_id="9", owner_id="u1", reused=False, summary={"email": "a@b.example"})
    ledger.complete(keys[1], deal_id="10", owner_id="u1", reused=True)
    assert ledger.claim(keys, LEASE) == keys[2:]  # only the one still pending
    assert ledger.assignments("u1", None) == 1  # a reused deal is no new assignment
    assert ledger.handed_off_people() == {0, 1}
    assert ledger.handoffs(keys=[keys[0]])[0]["summary"] == {"email": "a@b.example"}


def test_written_values_merge_so_a_partial_write_keeps_the_rest(store: Store) -> None:
    ledger = WritebackLedger(store)
    ledger.record_written("hubspot", "person", [("7", 1, {"score": 50, "lifecycle_stage": "sql"})])
    ledger.record_written("hubspot", "person", [("7", 1, {"score": 55})])
    assert ledger.held("hubspot", "person", ["7", "8"]) == {"7": {"score": 55, "lifecycle_stage": "sql"}}


def test_the_notification_outbox_schedules_retries_and_sends_once(store: Store) -> None:
    ledger = WritebackLedger(store)
    ledger.enqueue("cb-1", ["slack", "email"])
    ledger.enqueue("cb-1", ["slack"])  # a repeat adds nothing
    assert len(ledger.due_notifications()) == 2
    ledger.notification_outcome("cb-1", "slack", sent=False, attempts=1, error="503", retry_at_ms=2**62)
    ledger.notification_outcome("cb-1", "email", sent=True, attempts=1)
    assert ledger.due_notifications() == []
    rows = {n["channel"]: n for n in ledger.notifications()}
    assert rows["slack"]["status"] == "pending" and rows["slack"]["error"] == "503"
    assert rows["email"]["status"] == "sent"


def test_a_due_notice_is_taken_by_one_run_only(store: Store) -> None:
    ledger = WritebackLedger(store)
    for i in range(50):
        ledger.enqueue(f"cb-{i:04d}", ["slack"])
    won: dict[str, list[str]] = {}

    def run(holder: str) -> None:
        won[holder] = [n["handoff_key"] for n in WritebackLedger(store).due_notifications(holder=holder)]

    threads = [threading.Thread(target=run, args=(f"other-host:{n}:0",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [k for ks in won.values() for k in ks]
    assert sorted(taken) == [f"cb-{i:04d}" for i in range(50)]  # each by exactly one run
    assert {n["status"] for n in ledger.notifications()} == {"sending"}
    assert WritebackLedger(store).due_notifications() == []  # and nobody takes them again meanwhile


def test_a_notice_cut_off_by_the_death_of_its_run_is_never_sent_again(store: Store) -> None:
    ledger = WritebackLedger(store)
    ledger.enqueue("cb-1", ["slack"])
    ledger.enqueue("cb-2", ["slack"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    holder = f"{this_process().split(':')[0]}:{dead.pid}:0"
    assert [n["handoff_key"] for n in ledger.due_notifications(holder=holder)] == ["cb-1", "cb-2"]
    ledger.notification_outcome("cb-1", "slack", sent=True, attempts=1)
    # The run died while cb-2 was with the channel: it may have arrived, so it is not sent again.
    assert ledger.due_notifications() == []
    rows = {n["handoff_key"]: n for n in ledger.notifications()}
    assert rows["cb-1"]["status"] == "sent"
    assert rows["cb-2"]["status"] == "failed" and "not sent again" in rows["cb-2"]["error"]


def test_a_notice_whose_lease_ran_out_is_not_sent_again(store: Store) -> None:
    now = [1_000_000]
    ledger = WritebackLedger(store, clock=lambda: now[0])
    ledger.enqueue("cb-1", ["slack"])
    assert len(ledger.due_notifications(holder="elsewhere:7:0")) == 1
    now[0] += 24 * 3_600_000  # a day later, on another host, the run never said how it went
    assert ledger.due_notifications() == []
    assert ledger.notifications()[0]["status"] == "failed"


def test_a_retry_puts_the_notice_back_in_the_queue_for_its_time(store: Store) -> None:
    now = [1_000_000]
    ledger = WritebackLedger(store, clock=lambda: now[0])
    ledger.enqueue("cb-1", ["slack"])
    assert len(ledger.due_notifications()) == 1
    ledger.notification_outcome("cb-1", "slack", sent=False, attempts=1, error="503", retry_at_ms=now[0] + 60_000)
    assert ledger.due_notifications() == []
    now[0] += 60_000
    assert [n["handoff_key"] for n in ledger.due_notifications()] == ["cb-1"]


def test_after_a_crash_only_the_notice_in_flight_is_given_up_the_untried_ones_go_out(store: Store) -> None:
    ledger = WritebackLedger(store)
    for key in ("cb-1", "cb-2", "cb-3", "cb-4"):
        ledger.enqueue(key, ["slack"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    holder = f"{this_process().split(':')[0]}:{dead.pid}:0"
    taken = [n["handoff_key"] for n in ledger.due_notifications(holder=holder)]
    assert taken == ["cb-1", "cb-2", "cb-3", "cb-4"]
    ledger.notification_outcome("cb-1", "slack", sent=True, attempts=1)
    # The run died delivering cb-2: cb-2 may have arrived; cb-3 and cb-4 were never tried.
    assert [n["handoff_key"] for n in ledger.due_notifications()] == ["cb-3", "cb-4"]
    rows = {n["handoff_key"]: n["status"] for n in ledger.notifications()}
    assert rows == {"cb-1": "sent", "cb-2": "failed", "cb-3": "sending", "cb-4": "sending"}
