"""The client-side pacer keeps a caller inside the vendor's rolling window."""

from __future__ import annotations

from crmbridge.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_never_more_than_the_limit_in_any_window() -> None:
    clock = FakeClock()
    pacer = Pacer(10, 1.0, margin=0, clock=clock, sleep=clock.sleep)
    sends = []
    for _ in range(35):
        pacer.wait()
        sends.append(clock.now)
    for i, t in enumerate(sends):
        in_window = [s for s in sends[i:] if s < t + 1.0]
        assert len(in_window) <= 10
    # ... and it does not idle: 35 sends at 10 per second take about 3 seconds, not more.
    assert sends[-1] <= 3.0 + 1e-9


def test_quota_spent_by_another_client_is_respected() -> None:
    clock = FakeClock()
    pacer = Pacer(10, 1.0, margin=0, clock=clock, sleep=clock.sleep)
    pacer.wait()
    pacer.observe(remaining=2)  # the vendor says 8 are used: 7 by someone else
    pacer.wait()
    pacer.wait()
    assert clock.now == 0.0
    pacer.wait()
    assert clock.now >= 1.0


def test_a_429_pauses_every_caller_for_the_retry_after() -> None:
    clock = FakeClock()
    pacer = Pacer(100, 10.0, clock=clock, sleep=clock.sleep)
    pacer.block(2.5)
    assert pacer.wait() == 2.5


def test_headers_can_change_the_limit_and_interval() -> None:
    clock = FakeClock()
    pacer = Pacer(100, 10.0, margin=0, clock=clock, sleep=clock.sleep)
    pacer.observe(limit=2, interval=1.0)
    pacer.wait()
    pacer.wait()
    pacer.wait()
    assert clock.now == 1.0


def test_the_window_a_sandbox_admits_with_is_the_one_a_pacer_waits_on() -> None:
    from crmbridge.pacing import RollingWindow
    from crmbridge.sandbox.ratelimit import RollingWindow as SandboxWindow

    clock = FakeClock()
    window = SandboxWindow(5, 10.0, clock)
    assert SandboxWindow is RollingWindow
    assert [window.acquire().allowed for _ in range(5)] == [True] * 5
    clock.now = 4.0
    refused = window.acquire()
    assert (refused.allowed, refused.remaining, refused.retry_after) == (False, 0, 6.0)
    clock.now = 10.0  # the first five leave together
    assert window.acquire(cost=5).allowed and not window.acquire().allowed


def test_a_costly_request_waits_until_enough_of_the_oldest_have_left() -> None:
    from crmbridge.pacing import RollingWindow

    clock = FakeClock()
    window = RollingWindow(10, 10.0, clock)
    for at, cost in ((0.0, 4), (2.0, 3), (4.0, 3)):
        clock.now = at
        assert window.acquire(cost).allowed
    clock.now = 5.0
    assert window.acquire(6).retry_after == 7.0  # at 12 s the first two have left: 3 used, 6 more fit
    assert window.reserve(cost=6) == 7.0 and window.used() == 10
