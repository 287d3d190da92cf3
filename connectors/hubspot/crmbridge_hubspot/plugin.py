"""The object registered under the ``crmbridge.connectors`` entry-point group as ``hubspot``."""

from __future__ import annotations

from typing import Any

from crmbridge.connectors import SANDBOX_TOKEN, Connector, SandboxOptions, WebhookVerifier

# The sandbox's public app, unless ``SandboxOptions.extra`` names others (``hubspot_app_id``,
# ``hubspot_developer_api_key``).
SANDBOX_APP_ID = 2_718_281
SANDBOX_DEVELOPER_KEY = "sandbox-developer-key"


class HubSpotPlugin:
    name = "hubspot"

    def connector(self, base_url: str | None = None, **options: Any) -> Connector:
        from crmbridge_hubspot.connector import HubSpotConnector

        return HubSpotConnector.from_settings(base_url=base_url, **options)

    def sandbox_connector(self, base_url: str, time_scale: float = 1.0, **options: Any) -> Connector:
        # The sandbox's default token; search has no quota headers, so its pace follows the time scale.
        # Its app's id and developer key have fixed defaults, so ``setup`` can subscribe webhooks there.
        defaults = {"access_token": SANDBOX_TOKEN, "search_per_second": 5.0 * time_scale,
                    "app_id": SANDBOX_APP_ID, "developer_api_key": SANDBOX_DEVELOPER_KEY}
        return self.connector(base_url=base_url, **{**defaults, **options})

    def sandbox(self, options: SandboxOptions) -> Any:
        from crmbridge_hubspot.sandbox import HubSpotSandbox

        return HubSpotSandbox(options)

    def webhooks(self, **options: Any) -> WebhookVerifier:
        """Deliveries signed with the app's client secret: option ``secret``, else
        ``CRMBRIDGE_HUBSPOT_CLIENT_SECRET``; without one every delivery is refused (401)."""
        from crmbridge_hubspot.webhooks import verifier

        return verifier(**options)


plugin = HubSpotPlugin()
