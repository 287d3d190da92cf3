"""The object registered under the ``crmbridge.connectors`` entry-point group as ``hubspot``."""

from __future__ import annotations

from typing import Any

from crmbridge.connectors import Connector, SandboxOptions


class HubSpotPlugin:
    name = "hubspot"

    def connector(self, base_url: str | None = None, **options: Any) -> Connector:
        from crmbridge_hubspot.connector import HubSpotConnector

        return HubSpotConnector.from_settings(base_url=base_url, **options)

    def sandbox(self, options: SandboxOptions) -> Any:
        from crmbridge_hubspot.sandbox import HubSpotSandbox

        return HubSpotSandbox(options)


plugin = HubSpotPlugin()
