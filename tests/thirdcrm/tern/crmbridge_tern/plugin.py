"""The object a ``crmbridge.connectors`` entry point named ``tern`` points at."""

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

# Sellers work in Tern: with the hand-off target "auto" it takes deals over any CRM that ranks lower.
CAPABILITIES = Capabilities(
    label="Tern", lifecycle_forward_only=False, handoff_rank=20,
    sandbox_options=(SandboxOption("page_size", "tern_page_size", "the largest page a list answers", type="int",
                                   default=50),),
)


class TernPlugin:
    name = "tern"
    capabilities = CAPABILITIES

    def connector(self, base_url: str | None = None, **options: Any) -> Connector:
        from crmbridge_tern.connector import TernConnector

        return TernConnector.from_settings(base_url=base_url, **options)

    def sandbox_connector(self, base_url: str, time_scale: float = 1.0, **options: Any) -> Connector:
        return self.connector(base_url=base_url, **{"api_key": SANDBOX_TOKEN, **options})

    def sandbox(self, options: SandboxOptions) -> Any:
        from crmbridge_tern.sandbox import TernSandbox

        return TernSandbox(options)

    def webhooks(self, **options: Any) -> WebhookVerifier:
        from crmbridge_tern.connector import TernWebhooks

        return TernWebhooks(options.get("secret"))


plugin = TernPlugin()
