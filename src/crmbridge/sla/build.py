"""Build the SLA engine from settings and a write-back (which holds the store, the writers, the routing
rules and the notifier), so the daemon, the CLI and the demo share one way of making it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from crmbridge.errors import ConfigError
from crmbridge.settings import Settings
from crmbridge.sla.config import SlaConfig, load_sla
from crmbridge.sla.engine import SlaEngine
from crmbridge.sla.reassign import RoutingReassigner
from crmbridge.store.store import now_ms


def sla_config(settings: Settings) -> SlaConfig:
    path = settings.sla_config_path
    return load_sla(path) if path is not None else SlaConfig.default()


@dataclass(frozen=True)
class Timeline:
    """The SLA's time: the wall clock, or one running ``speed`` times faster from ``epoch_ms`` on."""

    speed: float = 1.0
    epoch_ms: int = 0

    def at(self, real_ms: int) -> int:
        if self.speed == 1.0:
            return real_ms
        return int(self.epoch_ms + (real_ms - self.epoch_ms) * self.speed)

    def now(self) -> int:
        return self.at(now_ms())


def timeline(settings: Settings) -> Timeline:
    if settings.sla_clock_speed == 1.0:
        return Timeline()
    if settings.sla_clock_epoch is None:
        raise ConfigError("a fast SLA clock needs an epoch, so that restarts keep one timeline "
                          "(e.g. CRMBRIDGE_SLA_CLOCK_EPOCH=2026-03-09T09:00:00Z)", key="CRMBRIDGE_SLA_CLOCK_EPOCH")
    epoch = settings.sla_clock_epoch
    if epoch.tzinfo is None:
        epoch = epoch.replace(tzinfo=UTC)
    return Timeline(settings.sla_clock_speed, int(epoch.timestamp() * 1000))


def sla_engine(settings: Settings, writeback: Any, *, clock: Callable[[], int] | None = None,
               config: SlaConfig | None = None) -> SlaEngine:
    """``writeback`` is a ``WriteBack``: its store, writers, router and notifier are the SLA's too."""
    line = timeline(settings)
    return SlaEngine(writeback.store, config or sla_config(settings), notifier=writeback.notifier,
                     writers=writeback.writers, reassigner=RoutingReassigner(writeback.store, writeback.router),
                     clock=clock or line.now, at=None if line.speed == 1.0 else line.at)
