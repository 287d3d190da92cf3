"""Fault injection: decide, per request, whether to answer with a 5xx, a 429, a stall, or a reset.

Decisions come from a seeded generator so a faulty run is reproducible. Whether a fault strikes
before or after the handler runs matters for writes: a timeout after the write was applied is the
case that tests idempotency, so a share of faults is injected after the handler.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from crmbridge.errors import ConfigError


class Fault(StrEnum):
    SERVER_ERROR = "5xx"
    RATE_LIMIT = "429"
    TIMEOUT = "timeout"
    RESET = "reset"


def parse_faults(spec: str | None) -> dict[str, float]:
    """Parse ``5xx=0.1,429=0.05,timeout=0.01,reset=0.01`` into rates between 0 and 1."""
    rates: dict[str, float] = {}
    if not spec:
        return rates
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in {f.value for f in Fault}:
            known = ", ".join(f.value for f in Fault)
            raise ConfigError(f"bad fault {part!r}: expected NAME=RATE, NAME one of {known}", key="--faults")
        try:
            rate = float(value)
        except ValueError:
            raise ConfigError(f"bad rate {value!r} for {name}", key="--faults") from None
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"rate for {name} must be between 0 and 1, got {rate}", key="--faults")
        rates[name] = rate
    if sum(rates.values()) > 1.0:
        raise ConfigError("fault rates add up to more than 1", key="--faults")
    return rates


@dataclass(frozen=True, slots=True)
class Decision:
    fault: Fault
    after_handler: bool


class FaultInjector:
    """Seeded per-request fault decisions; rates can be changed while the sandbox runs."""

    def __init__(self, rates: Mapping[str, float] | None = None, seed: int = 0, *,
                 stall_seconds: float = 30.0, after_share: float = 0.5) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.rates: dict[str, float] = dict(rates or {})
        self.stall_seconds = stall_seconds
        self.after_share = after_share

    def set_rates(self, rates: Mapping[str, float]) -> None:
        with self._lock:
            self.rates = dict(rates)

    def decide(self, is_write: bool = False) -> Decision | None:
        if not self.rates:
            return None
        with self._lock:
            draw = self._random.random()
            after = self._random.random() < self.after_share
        edge = 0.0
        for fault in Fault:
            edge += self.rates.get(fault.value, 0.0)
            if draw < edge:
                # A 429 never lets the request through; other faults may strike after a write applied.
                return Decision(fault, after_handler=is_write and after and fault is not Fault.RATE_LIMIT)
        return None
