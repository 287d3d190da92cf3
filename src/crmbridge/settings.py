"""Deployment settings read once at start-up from ``CRMBRIDGE_*`` variables and ``.env``.

Vendor settings (tokens, base URLs) belong to each connector plugin, which reads its own
``CRMBRIDGE_<SOURCE>_*`` variables; this module holds what the core itself needs.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from crmbridge.connectors import default_sources
from crmbridge.errors import ConfigError

_REPO = Path(__file__).resolve().parents[2]
_REPO_MAPPINGS = _REPO / "mappings"
_DEFAULT_MODEL = _REPO / "examples" / "scoring" / "default.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRMBRIDGE_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///crmbridge.db"
    mappings_dir: Path | None = None
    scoring_model: Path | None = None
    # The CRMs ``backfill``, ``sync`` and ``run`` work on; unset, those whose plugin asks to be synced
    # by default.
    sources: Annotated[list[str], NoDecode] = Field(default_factory=default_sources)
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Incremental passes behind the webhooks; zero or negative would be a tight loop, so it is refused.
    sync_interval_seconds: float = Field(default=300.0, gt=0)
    # The webhook receiver: the largest body it reads (larger is 413), and how often a failing event is
    # tried before it is quarantined (``crmbridge inbox replay`` gives it new attempts).
    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    worker_max_attempts: int = Field(default=5, ge=1)
    # Inbox workers of ``crmbridge run`` as processes of their own (mapping and scoring then never hold
    # up the receiver's acknowledgements); 0 runs one worker as a thread inside the daemon.
    worker_processes: int = Field(default=1, ge=0, le=16)
    # Write-back and hand-off: the YAML configuration (target CRM, stage, routing file), and where
    # the CRMs should send webhooks when ``setup`` subscribes them (the daemon's public address).
    handoff_config: Path | None = None
    public_url: str | None = None
    webhook_user: str | None = None
    webhook_password: SecretStr | None = None
    # The response-time SLA: the calendars and policies file, how often the daemon's leader ticks the
    # clocks (reminders, escalations, reassignments), and the token that opens the dashboard.
    sla_config: Path | None = None
    sla_tick_seconds: float = Field(default=30.0, gt=0)
    dashboard_token: SecretStr | None = None
    # Trying a policy on the sandbox: the SLA's clock runs this many times faster than the wall clock from
    # the epoch on (60: an hour of business time per real minute). The epoch keeps one timeline across
    # restarts. 1 (the default) is the wall clock.
    sla_clock_speed: float = Field(default=1.0, gt=0, le=100_000)
    sla_clock_epoch: datetime | None = None

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        if isinstance(value, str) and not value.startswith("["):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @cached_property
    def mappings_path(self) -> Path:
        """Where ``<source>.yaml`` mappings live: the setting, else ./mappings, else the project's own."""
        if self.mappings_dir is not None:
            return self.mappings_dir
        local = Path("mappings")
        return local if local.is_dir() else _REPO_MAPPINGS

    def mapping_file(self, source: str) -> Path:
        return self.mappings_path / f"{source}.yaml"

    @property
    def merge_policy_file(self) -> Path:
        return self.mappings_path / "merge.yaml"

    @cached_property
    def scoring_model_path(self) -> Path:
        """The scoring model: the setting, else ./scoring.yaml, else the playbook's default model."""
        if self.scoring_model is not None:
            return self.scoring_model
        local = Path("scoring.yaml")
        return local if local.is_file() else _DEFAULT_MODEL

    @cached_property
    def handoff_config_path(self) -> Path | None:
        """The hand-off configuration: the setting, else ./handoff.yaml, else built-in defaults (None)."""
        if self.handoff_config is not None:
            return self.handoff_config
        local = Path("handoff.yaml")
        return local if local.is_file() else None

    @cached_property
    def sla_config_path(self) -> Path | None:
        """The SLA file: the setting, else ./sla.yaml, else the built-in default (None)."""
        if self.sla_config is not None:
            return self.sla_config
        local = Path("sla.yaml")
        return local if local.is_file() else None


def load_settings(**overrides: object) -> Settings:
    """The settings, or a ``ConfigError`` naming the variable, what is wrong and (unless secret) the value."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        key = "CRMBRIDGE_" + "_".join(str(p) for p in first["loc"]).upper()
        message = first["msg"]
        field = Settings.model_fields.get(name)
        secret = field is not None and "SecretStr" in str(field.annotation)
        if "input" in first and not secret and isinstance(first["input"], str | int | float):
            message += f" (got {first['input']!r})"
        raise ConfigError(message, file=".env / environment", key=key) from None
