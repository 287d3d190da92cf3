"""What a sandbox counts: calls per endpoint, 429s sent, faults injected, webhooks emitted."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class SandboxStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.calls: Counter[str] = Counter()
            self.rate_limited = 0
            self.faults: Counter[str] = Counter()
            self.webhooks_emitted = 0
            # Events delivered, failed (per attempt), dropped after the last retry, lost to a ban,
            # sent twice on purpose; and delivery requests made.
            self.webhook_outcomes: Counter[str] = Counter()
            self.tokens_spent = 0

    def call(self, endpoint: str, tokens: int = 0) -> None:
        with self._lock:
            self.calls[endpoint] += 1
            self.tokens_spent += tokens

    def limited(self) -> None:
        with self._lock:
            self.rate_limited += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def webhook(self, count: int = 1) -> None:
        with self._lock:
            self.webhooks_emitted += count

    def webhook_outcome(self, outcome: str, count: int = 1) -> None:
        with self._lock:
            self.webhook_outcomes[outcome] += count

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": dict(sorted(self.calls.items())),
                "total_calls": sum(self.calls.values()),
                "rate_limited": self.rate_limited,
                "faults": dict(self.faults),
                "webhooks_emitted": self.webhooks_emitted,
                "webhooks": {"emitted": self.webhooks_emitted,
                             **{k: self.webhook_outcomes.get(k, 0)
                                for k in ("delivered", "failed", "dropped", "banned", "duplicated", "requests")}},
                "tokens_spent": self.tokens_spent,
            }
