"""HubSpot's rate limits: a rolling ten-second burst per token, a daily quota per account, and the
search endpoints' five requests per second per token (which answer without rate-limit headers).

``time_scale`` divides every window, so a benchmark at scale 10 meets the same limits ten times faster.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from crmbridge.sandbox.ratelimit import RollingWindow
from crmbridge_hubspot.sandbox.schema import BURST_WINDOW_SECONDS, DAY_SECONDS, SEARCH_PER_SECOND, TIERS


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    policy: str | None = None  # TEN_SECONDLY_ROLLING, DAILY or SECONDLY when refused
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float = 0.0  # seconds until a refused call would be admitted


class DailyQuota:
    """A fixed window of one (scaled) day, shared by every token of the account."""

    def __init__(self, limit: int, length: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.length = length
        self._clock = clock
        self._start = clock()
        self.used = 0
        self._lock = threading.Lock()

    def _roll(self) -> None:
        now = self._clock()
        if now - self._start >= self.length:
            self._start = now
            self.used = 0

    def has_room(self) -> bool:
        with self._lock:
            self._roll()
            return self.used < self.limit

    def take(self) -> None:
        with self._lock:
            self.used += 1

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def until_reset(self) -> float:
        with self._lock:
            return max(0.0, self._start + self.length - self._clock())

    def reset(self) -> None:
        with self._lock:
            self._start = self._clock()
            self.used = 0


class RateLimits:
    def __init__(self, tier: str = "professional", time_scale: float = 1.0, *, burst: int | None = None,
                 daily: int | None = None, search_per_second: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if tier not in TIERS:
            raise ValueError(f"unknown HubSpot tier {tier!r}; expected one of {', '.join(TIERS)}")
        tier_burst, tier_daily = TIERS[tier]
        self.tier = tier
        self.burst = burst or tier_burst
        self.search_limit = search_per_second or SEARCH_PER_SECOND
        self.window = BURST_WINDOW_SECONDS / time_scale
        self.search_window = 1.0 / time_scale
        self.interval_ms = str(round(self.window * 1000))
        self._clock = clock
        self.daily = DailyQuota(daily or tier_daily, DAY_SECONDS / time_scale, clock)
        self._bursts: dict[str, RollingWindow] = {}
        self._searches: dict[str, RollingWindow] = {}
        self._lock = threading.Lock()

    def _window(self, table: dict[str, RollingWindow], token: str, limit: int, length: float) -> RollingWindow:
        with self._lock:
            window = table.get(token)
            if window is None:
                window = table[token] = RollingWindow(limit, length, self._clock)
            return window

    def admit(self, token: str, search: bool) -> Verdict:
        if search:
            if not self.daily.has_room():
                return Verdict(False, "DAILY", retry_after=self.daily.until_reset())
            window = self._window(self._searches, token, self.search_limit, self.search_window)
            admission = window.acquire()
            if not admission.allowed:
                return Verdict(False, "SECONDLY", retry_after=admission.retry_after)
            self.daily.take()
            return Verdict(True)
        burst = self._window(self._bursts, token, self.burst, self.window)
        if not self.daily.has_room():
            return Verdict(False, "DAILY", self._headers(0), self.daily.until_reset())
        admission = burst.acquire()
        if not admission.allowed:
            return Verdict(False, "TEN_SECONDLY_ROLLING", self._headers(0), admission.retry_after)
        self.daily.take()
        return Verdict(True, None, self._headers(admission.remaining))

    def _headers(self, remaining: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.burst),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": self.interval_ms,
            "X-HubSpot-RateLimit-Daily": str(self.daily.limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(self.daily.remaining),
        }

    def reset(self) -> None:
        with self._lock:
            self._bursts.clear()
            self._searches.clear()
        self.daily.reset()
