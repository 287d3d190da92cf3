"""The object registered under the ``crmbridge.connectors`` entry-point group as ``pipedrive``."""

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

# What ``crmbridge sandbox --option pipedrive.<name>=<value>`` sets, and the ``SandboxOptions.extra``
# key the Pipedrive sandbox reads it from.
SANDBOX_OPTIONS = (
    SandboxOption("plan", "pipedrive_plan", "the company's plan: its burst and daily token budget",
                  default="growth", choices=("lite", "growth", "premium", "ultimate")),
    SandboxOption("seats", "pipedrive_seats", "paid seats (the daily budget grows with them)", type="int",
                  default=10),
    SandboxOption("burst", "pipedrive_burst", "requests per 2-second window (default: the plan's)", type="int"),
    SandboxOption("daily_tokens", "pipedrive_daily_tokens", "the daily token budget (default: plan x seats)",
                  type="int"),
    SandboxOption("cdn_strikes", "pipedrive_cdn_strikes", "429s in a row before the CDN bans the client",
                  type="int", default=10),
    SandboxOption("stall_seconds", "pipedrive_stall_seconds", "how long a timeout fault stalls before answering",
                  type="float", default=30.0),
    SandboxOption("oauth_tokens", "pipedrive_oauth_tokens",
                  "OAuth access tokens the sandbox takes as Bearer (API tokens come from --token)", type="list"),
    SandboxOption("openapi_dir", "pipedrive_openapi_dir",
                  "the folder of Pipedrive's OpenAPI files that writes are validated against"),
)


class PipedrivePlugin:
    name = "pipedrive"
    # Sellers work in Pipedrive: with "auto", hand-off deals go here when it is a configured source.
    capabilities = Capabilities(label="Pipedrive", handoff_rank=10, sandbox_options=SANDBOX_OPTIONS)

    def connector(self, base_url: str | None = None, **options: Any) -> Connector:
        from crmbridge_pipedrive.connector import PipedriveConnector

        return PipedriveConnector.from_settings(base_url=base_url, **options)

    def sandbox_connector(self, base_url: str, time_scale: float = 1.0, **options: Any) -> Connector:
        # The sandbox's default token; its windows (the 2-second burst, the CDN's ban) run time_scale
        # times faster, so the connector's pacing does too.
        from crmbridge_pipedrive.sandbox.limits import CDN_BAN_SECONDS

        defaults = {"api_token": SANDBOX_TOKEN, "burst_interval_seconds": 2.0 / time_scale,
                    "cdn_block_seconds": CDN_BAN_SECONDS / time_scale}
        return self.connector(base_url=base_url, **{**defaults, **options})

    def sandbox(self, options: SandboxOptions) -> Any:
        from crmbridge_pipedrive.sandbox import PipedriveSandbox

        return PipedriveSandbox(options)

    def webhooks(self, **options: Any) -> WebhookVerifier:
        """Webhooks v2 with HTTP Basic auth: ``user``/``password`` are the credentials ``setup`` registers."""
        from crmbridge_pipedrive.webhooks import verifier

        return verifier(**options)


plugin = PipedrivePlugin()
