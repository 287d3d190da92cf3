"""Notification settings come from CRMBRIDGE_* variables; a bad one is named, and a secret is never echoed."""

from __future__ import annotations

import pytest

from crmbridge.errors import ConfigError
from crmbridge.notify import Notifier, SlackWebhook, SmtpMailer, TeamsWebhook, load_notify_settings

SLACK_URL = "https://hooks.slack.com/services/T0AAA/B0BBB/secretToken123"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    for name in ("SLACK_WEBHOOK_URL", "TEAMS_WEBHOOK_URL", "SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME",
                 "SMTP_PASSWORD", "SMTP_SECURITY", "NOTIFY_FROM", "NOTIFY_TEAM_EMAIL", "NOTIFY_TIMEOUT"):
        monkeypatch.delenv(f"CRMBRIDGE_{name}", raising=False)


def test_every_channel_is_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SLACK_WEBHOOK_URL", SLACK_URL)
    monkeypatch.setenv("CRMBRIDGE_TEAMS_WEBHOOK_URL", "https://prod-1.westeurope.logic.azure.com/workflows/x?sig=y")
    monkeypatch.setenv("CRMBRIDGE_SMTP_HOST", "smtp.seller.example")
    monkeypatch.setenv("CRMBRIDGE_SMTP_USERNAME", "notify")
    monkeypatch.setenv("CRMBRIDGE_SMTP_PASSWORD", "pw-from-env")
    monkeypatch.setenv("CRMBRIDGE_NOTIFY_FROM", "crmbridge <revops@seller.example>")
    monkeypatch.setenv("CRMBRIDGE_NOTIFY_TEAM_EMAIL", "sales@seller.example")
    monkeypatch.setenv("CRMBRIDGE_NOTIFY_TIMEOUT", "4")
    settings = load_notify_settings()
    assert (settings.smtp_port, settings.smtp_security) == (587, "starttls")
    assert "secretToken123" not in repr(settings)
    notifier = Notifier.from_settings(settings)
    assert notifier.channels == ("slack", "teams", "email")
    assert notifier.team_email == "sales@seller.example"
    slack, teams = notifier._channels
    assert isinstance(slack, SlackWebhook) and isinstance(teams, TeamsWebhook)
    assert (slack.target, slack.timeout) == ("https://hooks.slack.com/…", 4.0)
    assert teams.target == "https://prod-1.westeurope.logic.azure.com/…"
    assert isinstance(notifier._mailer, SmtpMailer)
    assert "pw-from-env" not in repr(notifier._mailer)


def test_implicit_tls_defaults_to_port_465(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SMTP_HOST", "smtp.seller.example")
    monkeypatch.setenv("CRMBRIDGE_SMTP_SECURITY", "ssl")
    monkeypatch.setenv("CRMBRIDGE_NOTIFY_FROM", "revops@seller.example")
    assert load_notify_settings().smtp_port == 465
    monkeypatch.setenv("CRMBRIDGE_SMTP_PORT", "2465")
    assert load_notify_settings().smtp_port == 2465


def test_smtp_without_a_sender_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SMTP_HOST", "smtp.seller.example")
    with pytest.raises(ConfigError, match=r"CRMBRIDGE_NOTIFY_FROM .* is required when CRMBRIDGE_SMTP_HOST is set"):
        load_notify_settings()


def test_a_bad_security_mode_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SMTP_SECURITY", "tls")
    with pytest.raises(ConfigError) as info:
        load_notify_settings()
    assert info.value.key == "CRMBRIDGE_SMTP_SECURITY"


def test_a_malformed_webhook_url_is_rejected_without_being_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SLACK_WEBHOOK_URL", "hooks.slack.com/services/T0AAA/B0BBB/secretToken123")
    with pytest.raises(ConfigError) as info:
        load_notify_settings()
    assert info.value.key == "CRMBRIDGE_SLACK_WEBHOOK_URL"
    assert "secretToken123" not in str(info.value)


def test_an_empty_variable_means_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SLACK_WEBHOOK_URL", "")
    monkeypatch.setenv("CRMBRIDGE_SMTP_HOST", "")
    assert Notifier.from_settings(load_notify_settings()).channels == ()
