"""Rolling-window limiters, as vendors enforce them, on a clock that a time scale can speed up."""

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
    retry_after: float  # seconds until the oldest counted request leaves the window (0 when allowed)


class RollingWindow:
    """At most ``limit`` units in any ``window`` seconds (already divided by the time scale)."""

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

    def acquire(self, cost: int = 1) -> Admission:
        with self._lock:
            now = self._clock()
            self._expire(now)
            if self._used + cost > self.limit:
                wait = self._events[0][0] + self.window - now if self._events else self.window
                return Admission(False, self.limit, max(0, self.limit - self._used), max(wait, 0.0))
            self._events.append((now, cost))
            self._used += cost
            return Admission(True, self.limit, self.limit - self._used, 0.0)

    def reset(self) -> None:
        with self._lock:
            self._events.clear()
            self._used = 0


class Counter:
    """A plain budget that never refills by itself (a daily quota inside one sandbox run)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, cost: int = 1) -> bool:
        with self._lock:
            if self.used + cost > self.limit:
                return False
            self.used += cost
            return True

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def reset(self) -> None:
        with self._lock:
            self.used = 0
