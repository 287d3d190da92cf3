"""HubSpot settings, read from ``CRMBRIDGE_HUBSPOT_*`` variables and ``.env``."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BASE_URL = "https://api.hubapi.com"


class HubSpotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMBRIDGE_HUBSPOT_", env_file=".env", extra="ignore")

    access_token: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    # Requests per rolling window before the first response tells us the real limit. 100 per 10 s
    # is the lowest tier, so starting there never overshoots.
    burst_limit: int = Field(default=100, ge=1)
    burst_interval_seconds: float = Field(default=10.0, gt=0)
    # Search answers without quota headers, so its 5 requests/second are paced from this setting.
    search_per_second: float = Field(default=5.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    max_retry_seconds: float = Field(default=300.0, gt=0)
    backoff_base_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    # Every incremental window reaches back this far: search indexes writes late.
    lookback_seconds: float = Field(default=300.0, ge=0)
    workers: int = Field(default=4, ge=1, le=16)
    # The account's id, for links to records in HubSpot's web app (notifications link the deal).
    portal_id: str | None = None
    app_url: str = "https://app.hubspot.com"
    # The public app that sends webhooks: its client secret signs every delivery (X-HubSpot-Signature-v3);
    # its id and the developer account's API key let ``crmbridge setup`` manage the subscriptions.
    client_secret: SecretStr | None = None
    app_id: int | None = Field(default=None, ge=1)
    developer_api_key: SecretStr | None = None
