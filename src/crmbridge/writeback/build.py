"""Assemble write-back from settings: the hand-off configuration, routing, notifier and each CRM's writer
(part of the ``Connector`` protocol: every connector can take write-back)."""

from __future__ import annotations

from collections.abc import Mapping

from crmbridge.connectors import Connector
from crmbridge.notify import Notifier, load_notify_settings
from crmbridge.routing import OwnerRouter, RoutingConfig, load_routing
from crmbridge.settings import Settings
from crmbridge.store import Store
from crmbridge.writeback.config import load_handoff_config
from crmbridge.writeback.run import WriteBack


def build_writeback(settings: Settings, store: Store, connectors: Mapping[str, Connector],
                    notifier: Notifier | None = None) -> WriteBack:
    path = settings.handoff_config_path
    config = load_handoff_config(path)
    config.check_sources(list(connectors), str(path) if path else None)
    routing = load_routing(config.routing) if config.routing else RoutingConfig.default()
    writers = {source: connector.writer() for source, connector in connectors.items()}
    if notifier is None:
        notifier = Notifier.from_settings(load_notify_settings())
    password = settings.webhook_password.get_secret_value() if settings.webhook_password else None
    days_off = None
    if settings.sla_config_path is not None:  # holidays and time off in the SLA file: a seller off today is skipped
        from crmbridge.sla.config import load_sla

        days_off = load_sla(settings.sla_config_path).day_off
    return WriteBack(store, writers, config, OwnerRouter(routing, days_off=days_off), notifier,
                     webhook={"url": settings.public_url, "user": settings.webhook_user, "password": password})
