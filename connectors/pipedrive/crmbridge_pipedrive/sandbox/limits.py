"""Pipedrive's rate limits as the sandbox enforces them: burst per token, daily token budget, the CDN.

A request is admitted when its token's rolling 2-second window has room (each token has its own; by
plan: Lite 20, Growth 40, Premium 100, Ultimate 120 requests for an API token, four times as many for
an OAuth access token; search 10 for either) and the company's daily budget (30,000 tokens x plan
multiplier x seats) can pay its token cost. Clients that keep sending after 429s are refused by the
CDN with an HTML 403 for a while. Every window runs ``time_scale`` times faster than real time.

Every answer tells both, as Pipedrive's do: the burst window in ``x-ratelimit-limit``,
``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (seconds until the window has room), the daily
budget in ``x-daily-ratelimit-token-limit`` and ``x-daily-ratelimit-token-remaining``. A 429 carries
``Retry-After``: the window's wait when the burst is spent, the time until the budget is renewed
(the next day) when the day's tokens are; the day's budget is renewed whole at each day's start.
A request is admitted while any token is left, so a budget 429 always says ``remaining: 0``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from crmbridge.sandbox.ratelimit import Counter, RollingWindow
from crmbridge_pipedrive import streams as S

CDN_STRIKES = 10  # 429s within the strike window that get a client banned by the CDN
CDN_STRIKE_WINDOW_SECONDS = 10.0
CDN_BAN_SECONDS = 30.0
DAY_SECONDS = 86_400.0


@dataclass(frozen=True, slots=True)
class Verdict:
    status: int  # 200 (go on), 429 (rate limited) or 403 (the CDN's ban)
    headers: dict[str, str] = field(default_factory=dict)
    reason: str = ""


def _seconds(value: float) -> str:
    """Real seconds as a header value: whole seconds when they are, else to the millisecond."""
    value = max(0.0, value)
    return str(int(value)) if value == int(value) else f"{math.ceil(value * 1000) / 1000:.3f}"


class TokenLimits:
    def __init__(self, plan: str = "growth", *, seats: int = 10, time_scale: float = 1.0,
                 burst: int | None = None, daily_tokens: int | None = None, cdn_strikes: int = CDN_STRIKES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if plan not in S.PLAN_BURST:
            raise ValueError(f"unknown Pipedrive plan {plan!r} (plans: {', '.join(S.PLAN_BURST)})")
        self.plan = plan
        self.time_scale = time_scale
        self._lock = threading.Lock()
        self._clock = clock
        self.window = S.BURST_WINDOW_SECONDS / time_scale
        self._burst_override = burst
        self._windows: dict[tuple[str, bool], tuple[RollingWindow, RollingWindow]] = {}
        self.burst, self.search = self.windows()  # an API token's, as the plan sets them
        self.daily = Counter(daily_tokens or S.DAILY_TOKENS_PER_SEAT * S.PLAN_MULTIPLIER[plan] * seats)
        self.day = DAY_SECONDS / time_scale
        self._day_index = 0
        self.cdn_strikes = cdn_strikes
        self._strikes: deque[float] = deque()
        self._banned_until = 0.0
        self._started = clock()

    def _ban_check(self, now: float) -> Verdict | None:
        if now < self._banned_until:
            return Verdict(403, {}, "cdn")
        return None

    def strike(self) -> None:
        """A 429 was sent: too many in a short while and the CDN bans the client."""
        with self._lock:
            now = self._clock()
            self._strikes.append(now)
            horizon = now - CDN_STRIKE_WINDOW_SECONDS / self.time_scale
            while self._strikes and self._strikes[0] < horizon:
                self._strikes.popleft()
            if len(self._strikes) >= self.cdn_strikes:
                self._banned_until = now + CDN_BAN_SECONDS / self.time_scale
                self._strikes.clear()

    def windows(self, token: str = "", oauth: bool = False) -> tuple[RollingWindow, RollingWindow]:
        """The burst and search windows of one token (made on its first request)."""
        with self._lock:
            key = (token, oauth)
            if key not in self._windows:
                limit = self._burst_override or (S.PLAN_BURST_OAUTH if oauth else S.PLAN_BURST)[self.plan]
                self._windows[key] = (RollingWindow(limit, self.window, self._clock),
                                      RollingWindow(S.SEARCH_BURST, self.window, self._clock))
            return self._windows[key]

    def admit(self, cost: int, *, search: bool = False, token: str = "", oauth: bool = False) -> Verdict:
        """Whether a request of ``token`` costing ``cost`` tokens goes on, with the headers it carries."""
        now = self._clock()
        with self._lock:
            banned = self._ban_check(now)
        if banned:
            return banned
        self._renew(now)
        burst, searches = self.windows(token, oauth)
        window = searches if search else burst
        admission = window.acquire(1)
        headers = {"x-ratelimit-limit": str(admission.limit), "x-ratelimit-remaining": str(admission.remaining),
                   "x-ratelimit-reset": _seconds(admission.retry_after or self.window)}
        if not admission.allowed:
            return Verdict(429, {**headers, **self._daily_headers(),
                                 "Retry-After": str(max(1, math.ceil(admission.retry_after)))}, "burst")
        if not self._pay(cost):
            until_renewal = self.day - ((now - self._started) % self.day)
            return Verdict(429, {**headers, **self._daily_headers(),
                                 "Retry-After": str(max(1, math.ceil(until_renewal)))}, "daily")
        return Verdict(200, {**headers, **self._daily_headers()})

    def _pay(self, cost: int) -> bool:
        """Admitted while any of the day's tokens are left (the last request may take fewer than it
        costs), so a budget refusal always comes with ``x-daily-ratelimit-token-remaining: 0``."""
        left = self.daily.remaining
        return left > 0 and self.daily.take(min(cost, left))

    def _daily_headers(self) -> dict[str, str]:
        return {"x-daily-ratelimit-token-limit": str(self.daily.limit),
                "x-daily-ratelimit-token-remaining": str(self.daily.remaining)}

    def daily_headers(self) -> dict[str, str]:
        """The daily budget's headers as they stand (for answers that did not pass ``admit``)."""
        return self._daily_headers()

    def _renew(self, now: float) -> None:
        """A new day: the whole budget again."""
        day = int((now - self._started) // self.day)
        with self._lock:
            if day != self._day_index:
                self._day_index = day
                self.daily.reset()

    def reset(self) -> None:
        with self._lock:
            for burst, search in self._windows.values():
                burst.reset()
                search.reset()
            self.daily.reset()
            self._strikes.clear()
            self._banned_until = 0.0

    def snapshot(self) -> dict[str, object]:
        return {"plan": self.plan, "burst_limit": self.burst.limit, "daily_tokens": self.daily.limit,
                "daily_tokens_left": self.daily.remaining, "banned": self._clock() < self._banned_until}
