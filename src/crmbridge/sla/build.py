"""Build the SLA engine from settings and a write-back (which holds the store, the writers, the routing
rules and the notifier), so the daemon, the CLI and the demo share one way of making it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crmbridge.settings import Settings
from crmbridge.sla.config import SlaConfig, load_sla
from crmbridge.sla.engine import SlaEngine
from crmbridge.sla.reassign import RoutingReassigner
from crmbridge.store.store import now_ms


def sla_config(settings: Settings) -> SlaConfig:
    path = settings.sla_config_path
    return load_sla(path) if path is not None else SlaConfig.default()


def sla_engine(settings: Settings, writeback: Any, *, clock: Callable[[], int] = now_ms,
               config: SlaConfig | None = None) -> SlaEngine:
    """``writeback`` is a ``WriteBack``: its store, writers, router and notifier are the SLA's too."""
    return SlaEngine(writeback.store, config or sla_config(settings), notifier=writeback.notifier,
                     writers=writeback.writers, reassigner=RoutingReassigner(writeback.store, writeback.router),
                     clock=clock)
