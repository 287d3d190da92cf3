"""Notification settings, read once at start-up from ``CRMBRIDGE_*`` variables and ``.env``.

Nothing is required: with nothing set there is no channel, and hand-offs simply notify nobody.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmbridge.errors import ConfigError
from crmbridge.notify.smtp import valid_address


class NotifySettings(BaseSettings):
    # hide_input_in_errors: a rejected webhook URL must not be echoed in the error.
    model_config = SettingsConfigDict(env_prefix="CRMBRIDGE_", env_file=".env", extra="ignore",
                                      hide_input_in_errors=True)

    # The webhook URLs are credentials: whoever has one can post to the channel.
    slack_webhook_url: SecretStr | None = None
    teams_webhook_url: SecretStr | None = None
    smtp_host: str | None = None
    # 587 is submission with STARTTLS; with security "ssl" and no port set, 465 is used.
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    notify_from: str | None = None
    # Where e-mail goes when no seller is named (claim mode, or an owner without an address).
    notify_team_email: str | None = None
    notify_timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("slack_webhook_url", "teams_webhook_url", mode="after")
    @classmethod
    def _https_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().strip().lower().startswith(("https://", "http://")):
            # The message must not echo the value: it is a secret.
            raise ValueError("must be an https:// URL")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("smtp_host", "smtp_username", "notify_from", "notify_team_email", mode="after")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("notify_team_email", mode="after")
    @classmethod
    def _team_address(cls, value: str | None) -> str | None:
        if value is not None and not valid_address(value):
            raise ValueError(f"not an e-mail address: {value!r}")
        return value

    @model_validator(mode="after")
    def _smtp_is_complete(self) -> NotifySettings:
        if self.smtp_host and not self.notify_from:
            raise ValueError("CRMBRIDGE_NOTIFY_FROM (the sender address) is required when CRMBRIDGE_SMTP_HOST is set")
        if self.smtp_password and not self.smtp_username:
            raise ValueError("CRMBRIDGE_SMTP_USERNAME is required when CRMBRIDGE_SMTP_PASSWORD is set")
        if self.smtp_security == "ssl" and "smtp_port" not in self.model_fields_set:
            self.smtp_port = 465
        return self

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)


def load_notify_settings(**overrides: object) -> NotifySettings:
    """``NotifySettings`` from the environment; a bad value becomes a ``ConfigError`` naming the variable."""
    try:
        return NotifySettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        key = "CRMBRIDGE_" + "_".join(loc).upper() if loc else None
        raise ConfigError(first["msg"], file=".env / environment", key=key) from None
