"""Client-side pacing: stay under a vendor's rolling-window limit instead of learning it from 429s.

A ``Pacer`` mirrors the vendor's window locally and blocks a caller until a request fits in it.
Quota headers correct the local view (other clients may share the account's quota), and a 429
blocks everyone sharing the pacer until the vendor's window has room again.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class Pacer:
    """At most ``limit - margin`` sends in any ``interval`` seconds; thread-safe."""

    def __init__(self, limit: int, interval: float, *, margin: int = 1,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit = limit
        self.interval = interval
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0

    @property
    def capacity(self) -> int:
        return max(1, self.limit - self.margin)

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.interval:
            self._sent.popleft()

    def _delay(self, now: float) -> float:
        self._expire(now)
        delay = max(0.0, self._blocked_until - now)
        if len(self._sent) >= self.capacity:
            delay = max(delay, self._sent[len(self._sent) - self.capacity] + self.interval - now)
        return delay

    def wait(self) -> float:
        """Block until one more request fits, record it, and return how long we waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                delay = self._delay(now)
                if delay <= 0:
                    self._sent.append(now)
                    self.waited += waited
                    return waited
            self._sleep(delay)
            waited += delay

    def observe(self, *, limit: int | None = None, interval: float | None = None,
                remaining: int | None = None) -> None:
        """Fold the vendor's quota headers into the local window."""
        with self._lock:
            if limit:
                self.limit = limit
            if interval:
                self.interval = interval
            if remaining is None:
                return
            now = self._clock()
            self._expire(now)
            used_elsewhere = (self.limit - remaining) - len(self._sent)
            # Someone else spends the same quota: count their requests as if they were ours.
            for _ in range(max(0, used_elsewhere)):
                self._sent.append(now)

    def block(self, seconds: float) -> None:
        """After a 429: nobody sends for ``seconds`` (the vendor's Retry-After, or a whole window)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
