"""The object registered under the ``crmbridge.connectors`` entry-point group as ``hubspot``."""

from __future__ import annotations

from typing import Any

from crmbridge.connectors import Connector, SandboxOptions


class HubSpotPlugin:
    name = "hubspot"

    def connector(self, base_url: str | None = None, **options: Any) -> Connector:
        from crmbridge_hubspot.connector import HubSpotConnector

        return HubSpotConnector.from_settings(base_url=base_url, **options)

    def sandbox_connector(self, base_url: str, time_scale: float = 1.0, **options: Any) -> Connector:
        # The sandbox accepts any token; search has no quota headers, so its pace follows the time scale.
        defaults = {"access_token": "sandbox-token", "search_per_second": 5.0 * time_scale}
        return self.connector(base_url=base_url, **{**defaults, **options})

    def sandbox(self, options: SandboxOptions) -> Any:
        from crmbridge_hubspot.sandbox import HubSpotSandbox

        return HubSpotSandbox(options)


plugin = HubSpotPlugin()
