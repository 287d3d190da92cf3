"""The fan-out: who is told about a hand-off, single-channel retries for an outbox, and never a raise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from notify_helpers import SLACK_PATH, SMTP_PASSWORD, TEAMS_PATH, Answer, Mailbox, WebhookReceiver
from structlog.testing import capture_logs

from crmbridge.notify import Delivery, HandoffNotice, Notifier, NotifySettings, RetryPolicy

StartSmtp = Callable[..., tuple[Any, Mailbox]]
_PLAIN_AUTH = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _settings(receiver: WebhookReceiver | None = None, smtp_port: int | None = None, **extra: Any) -> NotifySettings:
    values: dict[str, Any] = {}
    if receiver is not None:
        values.update(slack_webhook_url=receiver.url(SLACK_PATH), teams_webhook_url=receiver.url(TEAMS_PATH))
    if smtp_port is not None:
        values.update(smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_security="none",
                      notify_from="crmbridge <revops@seller.example>", notify_timeout=2)
    values.update(extra)
    return NotifySettings(_env_file=None, **values)


def test_an_unconfigured_notifier_delivers_nothing(monkeypatch: pytest.MonkeyPatch, notice: HandoffNotice) -> None:
    for name in ("SLACK_WEBHOOK_URL", "TEAMS_WEBHOOK_URL", "SMTP_HOST", "NOTIFY_TEAM_EMAIL"):
        monkeypatch.delenv(f"CRMBRIDGE_{name}", raising=False)
    notifier = Notifier.from_settings(NotifySettings(_env_file=None))
    assert notifier.channels == ()
    with capture_logs() as logs:
        assert notifier.deliver(notice) == []
    assert logs == []


def test_one_notice_reaches_slack_teams_and_the_owner(receiver: WebhookReceiver, smtp_server: StartSmtp,
                                                      notice: HandoffNotice, fast_policy: RetryPolicy) -> None:
    controller, box = smtp_server()
    notifier = Notifier.from_settings(_settings(receiver, controller.port), policy=fast_policy)
    assert notifier.channels == notifier.channels_for(notice) == ("slack", "teams", "email")
    deliveries = notifier.deliver(notice)
    assert [(d.channel, d.ok) for d in deliveries] == [("slack", True), ("teams", True), ("email", True)]
    assert deliveries[2].target == "sam.okafor@seller.example"
    assert sorted(r.path for r in receiver.requests) == sorted([SLACK_PATH, TEAMS_PATH])
    assert box.envelopes[0].rcpt_tos == ["sam.okafor@seller.example"]


def test_claim_mode_tells_the_team_and_the_team_address_not_a_seller(
        receiver: WebhookReceiver, smtp_server: StartSmtp, claim_notice: HandoffNotice,
        fast_policy: RetryPolicy) -> None:
    controller, box = smtp_server()
    settings = _settings(receiver, controller.port, notify_team_email="sales-team@seller.example")
    deliveries = Notifier.from_settings(settings, policy=fast_policy).deliver(claim_notice)
    assert [(d.channel, d.target, d.ok) for d in deliveries] == [
        ("slack", f"http://127.0.0.1:{receiver.port}/…", True),
        ("teams", f"http://127.0.0.1:{receiver.port}/…", True),
        ("email", "sales-team@seller.example", True),
    ]
    assert box.envelopes[0].rcpt_tos == ["sales-team@seller.example"]
    slack = next(r for r in receiver.requests if r.path == SLACK_PATH).json()
    assert slack["blocks"][0]["text"]["text"].startswith("New sales-ready lead to claim")


def test_claim_mode_without_a_team_address_sends_no_email(receiver: WebhookReceiver, smtp_server: StartSmtp,
                                                           claim_notice: HandoffNotice,
                                                           fast_policy: RetryPolicy) -> None:
    controller, box = smtp_server()
    notifier = Notifier.from_settings(_settings(receiver, controller.port), policy=fast_policy)
    assert notifier.channels_for(claim_notice) == ("slack", "teams")
    deliveries = notifier.deliver(claim_notice)
    assert [d.channel for d in deliveries] == ["slack", "teams"]
    assert box.envelopes == []
    lone = notifier.deliver_to(claim_notice, "email")
    assert (lone.ok, lone.retryable, lone.attempts) == (False, False, 0)
    assert lone.error == "no e-mail recipient for this notice (no owner address and no team address)"
    assert box.envelopes == []


def test_an_owner_without_an_address_is_covered_by_the_team_address(smtp_server: StartSmtp, notice: HandoffNotice,
                                                                   fast_policy: RetryPolicy) -> None:
    controller, box = smtp_server()
    settings = _settings(smtp_port=controller.port, notify_team_email="sales-team@seller.example")
    [delivery] = Notifier.from_settings(settings, policy=fast_policy).deliver(replace(notice, owner_email=None))
    assert (delivery.channel, delivery.target, delivery.ok) == ("email", "sales-team@seller.example", True)
    assert "Sam Okafor, a lead is sales-ready" in box.envelopes[0].content.decode()


def test_one_failing_channel_does_not_stop_the_others(receiver: WebhookReceiver, smtp_server: StartSmtp,
                                                      notice: HandoffNotice, fast_policy: RetryPolicy) -> None:
    controller, _ = smtp_server(Mailbox(refuse_rcpt="550 5.1.1 No such user here"))
    notifier = Notifier.from_settings(_settings(receiver, controller.port), policy=fast_policy)
    by_channel = {d.channel: d for d in notifier.deliver(notice)}
    assert by_channel["slack"].ok and by_channel["teams"].ok
    assert not by_channel["email"].ok and not by_channel["email"].retryable


def test_an_outbox_retries_only_the_channel_that_failed(receiver: WebhookReceiver, notice: HandoffNotice,
                                                        fast_policy: RetryPolicy) -> None:
    receiver.answer(*[Answer(503, "busy")] * 3)  # Slack and Teams share the receiver: fail three in a row
    notifier = Notifier.from_settings(_settings(receiver, teams_webhook_url=None), policy=fast_policy)
    [failed] = notifier.deliver(notice)
    assert (failed.channel, failed.ok, failed.retryable) == ("slack", False, True)
    before = len(receiver.requests)
    again = notifier.deliver_to(notice, failed.channel)
    assert again.ok and again.attempts == 1
    assert len(receiver.requests) == before + 1


def test_deliver_to_an_unconfigured_channel_reports_instead_of_raising(notice: HandoffNotice) -> None:
    delivery = Notifier().deliver_to(notice, "teams")
    assert delivery == Delivery("teams", "teams", ok=False, retryable=False, attempts=0,
                                error="channel 'teams' is not configured")


def test_a_channel_that_crashes_is_reported_not_raised(notice: HandoffNotice, fast_policy: RetryPolicy) -> None:
    class Broken:
        name, target = "pager", "pager"

        def send(self, notice: HandoffNotice, recipient: str | None = None) -> None:
            raise KeyError("blocks")

    [delivery] = Notifier([Broken()], policy=fast_policy).deliver(notice)
    assert (delivery.ok, delivery.retryable, delivery.attempts) == (False, False, 1)
    assert delivery.error == "pager: unexpected KeyError: 'blocks'"


@_PLAIN_AUTH
def test_no_secret_reaches_a_log_line_or_a_delivery(receiver: WebhookReceiver, smtp_server: StartSmtp,
                                                    closed_port: int, notice: HandoffNotice,
                                                    fast_policy: RetryPolicy, capsys: pytest.CaptureFixture) -> None:
    controller, _ = smtp_server(auth=("notify", "another-password"))
    receiver.default = Answer(500, f"echoing your URL back: {receiver.url(SLACK_PATH)}")
    settings = _settings(receiver, controller.port, smtp_username="notify", smtp_password=SMTP_PASSWORD,
                         teams_webhook_url=f"http://127.0.0.1:{closed_port}{TEAMS_PATH}")
    notifier = Notifier.from_settings(settings, policy=fast_policy)
    with capture_logs() as logs:
        deliveries = notifier.deliver(notice)
        deliveries.append(notifier.deliver_to(notice, "slack"))
    assert not any(d.ok for d in deliveries)
    assert {e["event"] for e in logs} >= {"notify.retrying", "notify.failed"}
    seen = repr(logs) + repr(deliveries) + repr(notifier.__dict__) + "".join(capsys.readouterr())
    for secret in ("T0SECRET1", "xoxWebhookToken3141592", "TeamsSig0123456789", "/workflows/5e1b2c", SMTP_PASSWORD):
        assert secret not in seen
    slack = next(d for d in deliveries if d.channel == "slack")
    assert slack.error == f"slack: http://127.0.0.1:{receiver.port}/… answered 500: echoing your URL back: [redacted]"


def test_a_sent_notice_logs_one_line_without_the_message_body(receiver: WebhookReceiver, notice: HandoffNotice,
                                                              fast_policy: RetryPolicy) -> None:
    notifier = Notifier.from_settings(_settings(receiver, teams_webhook_url=None), policy=fast_policy)
    with capture_logs() as logs:
        notifier.deliver(notice)
    assert logs == [{"event": "notify.sent", "log_level": "info", "channel": "slack",
                     "target": f"http://127.0.0.1:{receiver.port}/…", "key": notice.key, "attempts": 1,
                     "claim": False}]
