"""The object registered under the ``crmbridge.connectors`` entry-point group as ``pipedrive``."""

from __future__ import annotations

from typing import Any

from crmbridge.connectors import SANDBOX_TOKEN, Connector, SandboxOptions, WebhookVerifier


class PipedrivePlugin:
    name = "pipedrive"

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
