"""Rolling windows: how vendors limit requests, and how we stay under their limits.

``RollingWindow`` is the one count of "at most N units in any T seconds": the sandboxes admit or
refuse a request with it as the vendor would, and a ``Pacer`` mirrors the vendor's window with it
on our side and blocks a caller until a request fits. Quota headers correct the local view (other
clients may share the account's quota), and a 429 blocks everyone sharing the pacer until the
vendor's window has room again.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    limit: int
    remaining: int
    retry_after: float  # seconds until enough counted units leave the window (0 when allowed)


class RollingWindow:
    """At most ``limit`` units in any ``window`` seconds, on an injected clock; thread-safe.

    ``limit`` and ``window`` may be changed while in use (a vendor's headers say what they are).
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: deque[tuple[float, int]] = deque()
        self._used = 0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.window:
            _, cost = self._events.popleft()
            self._used -= cost

    def _wait(self, now: float, cost: int, limit: int) -> float:
        """Seconds until ``cost`` more units fit under ``limit``: when enough of the oldest have left."""
        self._expire(now)
        excess = self._used + cost - limit
        if excess <= 0:
            return 0.0
        for at, counted in self._events:
            excess -= counted
            if excess <= 0:
                return max(0.0, at + self.window - now)
        return self.window  # more than the limit at once: a whole window

    def _add(self, now: float, cost: int) -> None:
        self._events.append((now, cost))
        self._used += cost

    def used(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return self._used

    def acquire(self, cost: int = 1) -> Admission:
        """Count ``cost`` units now if they fit (a vendor admitting a request), else say how long to wait."""
        with self._lock:
            now = self._clock()
            wait = self._wait(now, cost, self.limit)
            if wait > 0 or self._used + cost > self.limit:
                return Admission(False, self.limit, max(0, self.limit - self._used), wait)
            self._add(now, cost)
            return Admission(True, self.limit, self.limit - self._used, 0.0)

    def reserve(self, limit: int | None = None, cost: int = 1) -> float:
        """Count ``cost`` units now if they fit under ``limit`` (default the window's); else the seconds to wait."""
        with self._lock:
            now = self._clock()
            wait = self._wait(now, cost, self.limit if limit is None else limit)
            if wait <= 0:
                self._add(now, cost)
            return wait

    def fill_to(self, used: int) -> None:
        """Count units spent elsewhere (another client on the same quota) so the window holds ``used``."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if used > self._used:
                self._add(now, used - self._used)

    def reset(self) -> None:
        with self._lock:
            self._events.clear()
            self._used = 0


class Pacer:
    """At most ``limit - margin`` sends in any ``interval`` seconds; thread-safe."""

    def __init__(self, limit: int, interval: float, *, margin: int = 1,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._window = RollingWindow(limit, interval, clock)
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0

    @property
    def limit(self) -> int:
        return self._window.limit

    @property
    def interval(self) -> float:
        return self._window.window

    @property
    def capacity(self) -> int:
        return max(1, self.limit - self.margin)

    def wait(self) -> float:
        """Block until one more request fits, record it, and return how long we waited."""
        waited = 0.0
        while True:
            with self._lock:
                delay = max(0.0, self._blocked_until - self._clock())
                if delay <= 0:
                    delay = self._window.reserve(self.capacity)
                if delay <= 0:
                    self.waited += waited
                    return waited
            self._sleep(delay)
            waited += delay

    def observe(self, *, limit: int | None = None, interval: float | None = None,
                remaining: int | None = None) -> None:
        """Fold the vendor's quota headers into the local window."""
        with self._lock:
            if limit:
                self._window.limit = limit
            if interval:
                self._window.window = interval
            if remaining is not None:
                # Someone else spends the same quota: count their requests as if they were ours.
                self._window.fill_to(self.limit - remaining)

    def block(self, seconds: float) -> None:
        """After a 429: nobody sends for ``seconds`` (the vendor's Retry-After, or a whole window)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
