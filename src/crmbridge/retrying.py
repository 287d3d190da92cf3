"""The one back-off every outbound call retries with: the CRM clients and the notifier.

Exponential in the attempt number, capped, with jitter (so replicas that failed together do not
retry together), built on tenacity's ``wait_exponential``. A wait the other side asked for
(``Retry-After``) is honoured when it is longer; a rate limit the caller's pacer already holds
everyone back for waits nothing here.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tenacity import RetryCallState, wait_exponential
from tenacity.wait import wait_base


class backoff(wait_base):  # lower case, like tenacity's own wait strategies
    """``base * 2**(attempt-1)`` seconds, at most ``maximum``, scaled by a random factor in [0.5, 1].

    ``asked`` reads the wait an error asked for (None when it did not); ``paced`` tells an error
    the pacer already waits for, so retrying it waits nothing more.
    """

    def __init__(self, base: float, maximum: float, *,
                 asked: Callable[[BaseException], float | None] = lambda _: None,
                 paced: Callable[[BaseException], bool] = lambda _: False) -> None:
        self.exponential = wait_exponential(multiplier=base, min=0, max=maximum, exp_base=2)
        self.asked = asked
        self.paced = paced

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if error is not None and self.paced(error):
            return 0.0
        wait = self.exponential(state) * random.uniform(0.5, 1.0)
        wanted = self.asked(error) if error is not None else None
        return max(wait, wanted) if wanted is not None else wait
