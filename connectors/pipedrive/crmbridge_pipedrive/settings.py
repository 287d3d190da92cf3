"""Pipedrive settings, read from ``CRMBRIDGE_PIPEDRIVE_*`` variables and ``.env``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BASE_URL = "https://api.pipedrive.com"

Plan = Literal["lite", "growth", "premium", "ultimate"]


class PipedriveSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMBRIDGE_PIPEDRIVE_", env_file=".env", extra="ignore")

    api_token: SecretStr | None = None
    # The company root: v1 lives under ``{base_url}/v1/``, v2 under ``{base_url}/api/v2/``.
    base_url: str = DEFAULT_BASE_URL
    # The plan sets the burst we start from; the first answer's x-ratelimit-limit corrects it.
    plan: Plan = "lite"
    burst_limit: int | None = Field(default=None, ge=1, description="overrides the plan's burst")
    burst_interval_seconds: float = Field(default=2.0, gt=0)
    search_per_window: int = Field(default=10, ge=1)
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    max_retry_seconds: float = Field(default=300.0, gt=0)
    backoff_base_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    # After the CDN's HTML 403 (what Pipedrive sends clients that ignore 429s) nobody sends for this long.
    cdn_block_seconds: float = Field(default=60.0, gt=0)
    # Every incremental window reaches back this far: update times have one-second resolution and
    # writes that commit late must still be seen.
    lookback_seconds: float = Field(default=300.0, ge=0)
    workers: int = Field(default=4, ge=1, le=16)
    # The company's web address (``https://acme.pipedrive.com``), for links to deals in notifications.
    app_url: str | None = None
