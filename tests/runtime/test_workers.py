"""Inbox workers: a burst is read once it settles, events of one record are read once, a failing source
is retried with back-off and quarantined while the others go on."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from crmbridge.connectors import WebhookEvent
from crmbridge.runtime.pipeline import coalesce
from crmbridge.runtime.workers import InboxWorker, WorkerPolicy, ready, retry_delay_ms
from crmbridge.store import Store
from crmbridge.store.inbox import Backlog, Inbox, InboxEvent

POLICY = WorkerPolicy(settle_ms=300, max_wait_ms=2_000, batch=100, max_attempts=3)


def test_a_burst_waits_until_it_settles_or_its_oldest_event_has_waited_long_enough() -> None:
    assert not ready(Backlog(0), 10_000, POLICY)
    assert not ready(Backlog(5, oldest_ms=9_900, newest_ms=9_950), 10_000, POLICY)  # still arriving
    assert ready(Backlog(5, oldest_ms=9_000, newest_ms=9_700), 10_000, POLICY)  # quiet for 300 ms
    assert ready(Backlog(5, oldest_ms=8_000, newest_ms=9_999), 10_000, POLICY)  # the oldest waited 2 s
    assert not ready(Backlog(100, oldest_ms=9_999, newest_ms=9_999), 10_000, POLICY)  # even a full batch waits


def test_retries_back_off_and_stay_bounded() -> None:
    delays = [retry_delay_ms(n, POLICY) for n in range(1, 12)]
    assert delays[0] < delays[3] < delays[6]
    assert max(delays) <= POLICY.retry_max_seconds * 1000


def _event(i: int, object_id: str, action: str = "changed", stream: str = "contacts", source: str = "crm",
           **kw: object) -> InboxEvent:
    return InboxEvent(i, source, f"e{i}", stream, object_id, action, 1_000 + i, 0, 1, **kw)  # type: ignore[arg-type]


def test_fifty_updates_to_one_record_are_one_read() -> None:
    events = [_event(i, "42") for i in range(50)] + [_event(100, "7", stream="companies")]
    (group,) = coalesce(events)
    assert group.ids == {"contacts": ["42"], "companies": ["7"]}


def test_a_merge_reads_the_survivor_and_records_what_it_swallowed() -> None:
    events = [_event(1, "3"), _event(2, "9", "merged", merged_into="9", merged_ids=("3", "4"))]
    (group,) = coalesce(events)
    assert group.ids == {"contacts": ["9"]}
    assert group.merged == {"contacts": {"3": "9", "4": "9"}}


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["contacts", "deals"]),
                          st.integers(0, 20)), max_size=200))
def test_every_record_an_event_names_is_read_exactly_once(triples: list[tuple[str, str, int]]) -> None:
    events = [_event(i, str(obj), stream=stream, source=source) for i, (source, stream, obj) in enumerate(triples)]
    wanted = {(s, st_, str(o)) for s, st_, o in triples}
    read = [(g.source, stream, i) for g in coalesce(events) for stream, ids in g.ids.items() for i in ids]
    assert sorted(read) == sorted(wanted)


class Recorder:
    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.batches: list[list[str]] = []
        self.writebacks = 0

    def apply(self, events: Sequence[InboxEvent]) -> object:
        if events[0].source in self.failing:
            raise ConnectionError("CRM unreachable")
        self.batches.append([e.event_id for e in events])

        class Result:
            records, changed = len(events), len(events)

        return Result()

    def write_back(self) -> None:
        self.writebacks += 1


def test_a_failing_source_is_retried_then_quarantined_while_the_others_are_done(sqlite_url: str) -> None:
    now = [0]
    with Store(sqlite_url) as store:
        inbox = Inbox(store)
        inbox.add("good", [WebhookEvent("g1", "contacts", "1", "changed", 0)], received_ms=0)
        inbox.add("down", [WebhookEvent("d1", "contacts", "1", "changed", 0)], received_ms=0)
        recorder = Recorder({"down"})
        worker = InboxWorker(inbox, recorder.apply, recorder.write_back, POLICY, clock=lambda: now[0])
        now[0] = 1_000
        first = worker.step()
        assert first is not None and (first.done, first.retried) == (1, 1)
        assert recorder.batches == [["g1"]] and recorder.writebacks == 1
        for _ in range(POLICY.max_attempts):
            now[0] += 3_600_000  # past any back-off
            worker.step()
        assert inbox.counts() == {"pending": 0, "done": 1, "failed": 0, "quarantined": 1}
        assert "CRM unreachable" in inbox.quarantined()[0]["error"]


def test_nothing_is_claimed_while_a_burst_is_still_arriving(sqlite_url: str) -> None:
    with Store(sqlite_url) as store:
        inbox = Inbox(store)
        inbox.add("crm", [WebhookEvent("x", "contacts", "1", "changed", 0)], received_ms=10_000)
        recorder = Recorder(set())
        worker = InboxWorker(inbox, recorder.apply, recorder.write_back, POLICY, clock=lambda: 10_100)
        assert worker.step() is None and inbox.counts()["pending"] == 1


def test_an_event_about_a_change_the_last_read_already_showed_costs_no_new_read() -> None:
    from crmbridge.runtime.pipeline import ReadLog

    reads = ReadLog()
    newest = {("contacts", "1"): 5_000, ("contacts", "2"): 9_500}
    assert reads.stale("crm", "contacts", ["1", "2"], newest) == ["1", "2"]  # never read
    reads.read("crm", "contacts", {"1": 7_000, "2": 9_000})  # the CRM's last-modified times, as read
    # "1" was read as modified after its event: the read holds it. "2" changed again since.
    assert reads.stale("crm", "contacts", ["1", "2"], newest) == ["2"]
    assert reads.stale("other", "contacts", ["1"], newest) == ["1"]  # per source


def test_the_read_log_forgets_the_oldest_records_beyond_its_capacity() -> None:
    from crmbridge.runtime.pipeline import ReadLog

    reads = ReadLog(capacity=2)
    reads.read("crm", "contacts", {"1": 10_000, "2": 10_000, "3": 10_000})
    newest = {("contacts", i): 1_000 for i in "123"}
    assert reads.stale("crm", "contacts", ["1", "2", "3"], newest) == ["1"]
