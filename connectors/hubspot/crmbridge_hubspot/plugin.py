"""The object registered under the ``crmbridge.connectors`` entry-point group as ``hubspot``."""

from __future__ import annotations

from typing import Any

from crmbridge.connectors import (
    SANDBOX_TOKEN,
    Capabilities,
    Connector,
    SandboxOption,
    SandboxOptions,
    WebhookVerifier,
)

# The sandbox's public app, unless ``SandboxOptions.extra`` names others (``hubspot_app_id``,
# ``hubspot_developer_api_key``).
SANDBOX_APP_ID = 2_718_281
SANDBOX_DEVELOPER_KEY = "sandbox-developer-key"


# What ``crmbridge sandbox --option hubspot.<name>=<value>`` sets, and the ``SandboxOptions.extra``
# key the HubSpot sandbox reads it from.
SANDBOX_OPTIONS = (
    SandboxOption("tier", "hubspot_tier", "the account's rate-limit tier", default="professional",
                  choices=("free", "starter", "professional", "enterprise", "addon", "oauth")),
    SandboxOption("search_lag_seconds", "hubspot_search_lag_seconds",
                  "how long a write stays invisible to search: seconds, or low,high to draw each write's lag "
                  "from (scaled by --time-scale; 0 only for unit tests)", type="list", default="1,3"),
    SandboxOption("client_secret", "hubspot_client_secret",
                  "the sandbox app's secret that signs webhooks", default="random, printed at start"),
    SandboxOption("app_id", "hubspot_app_id", "the sandbox app's id", type="int", default=SANDBOX_APP_ID),
    SandboxOption("developer_api_key", "hubspot_developer_api_key",
                  "the developer key that manages the app's webhook subscriptions", default=SANDBOX_DEVELOPER_KEY),
    SandboxOption("portal_id", "hubspot_portal_id", "the account id", type="int"),
    SandboxOption("burst_limit", "hubspot_burst_limit", "requests per 10-second window (default: the tier's)",
                  type="int"),
    SandboxOption("daily_limit", "hubspot_daily_limit", "requests per day (default: the tier's)", type="int"),
    SandboxOption("search_per_second", "hubspot_search_per_second", "search requests per second per token",
                  type="int", default=5),
    SandboxOption("stall_seconds", "stall_seconds", "how long a timeout fault stalls before answering",
                  type="float", default=30.0),
    SandboxOption("fault_after_share", "fault_after_share",
                  "share of faults on writes that strike after the write was applied", type="float", default=0.5),
)


class HubSpotPlugin:
    name = "hubspot"
    # HubSpot moves a lifecycle stage backwards only once it is cleared; it is the marketing CRM of a
    # two-CRM set-up (hand-offs go to a CRM that ranks higher), and the source used when none is set.
    capabilities = Capabilities(label="HubSpot", lifecycle_forward_only=True, synced_by_default=True,
                                handoff_rank=0, sandbox_options=SANDBOX_OPTIONS)

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
