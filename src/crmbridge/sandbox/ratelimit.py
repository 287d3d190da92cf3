"""Limits as vendors enforce them, on a clock that a time scale can speed up: the rolling window is the
core's one implementation (``crmbridge.pacing``), the same our clients pace themselves with; a plain
budget counts a daily quota."""

from __future__ import annotations

import threading

from crmbridge.pacing import Admission, RollingWindow

__all__ = ["Admission", "Counter", "RollingWindow"]


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
