"""Slack and Teams webhooks against a real local HTTP receiver: shapes, retries, refusals, timeouts."""

from __future__ import annotations

import pytest
from notify_helpers import SLACK_PATH, TEAMS_PATH, Answer, WebhookReceiver

from crmbridge.notify import (
    HandoffNotice,
    Notifier,
    NotifyPermanent,
    NotifyRetryable,
    RetryPolicy,
    SlackWebhook,
    TeamsWebhook,
)
from crmbridge.notify.webhooks import parse_retry_after


def _slack_notifier(url: str, policy: RetryPolicy, sleeps: list[float] | None = None,
                    timeout: float = 2.0) -> Notifier:
    record = sleeps.append if sleeps is not None else (lambda _: None)
    return Notifier([SlackWebhook(url, timeout=timeout)], policy=policy, sleep=record)


def test_slack_receives_the_card_as_json(receiver: WebhookReceiver, notice: HandoffNotice,
                                         fast_policy: RetryPolicy) -> None:
    [delivery] = _slack_notifier(receiver.url(), fast_policy).deliver(notice)
    assert delivery.ok and delivery.attempts == 1 and delivery.error is None
    [request] = receiver.requests
    assert request.path == SLACK_PATH
    assert request.headers["Content-Type"].startswith("application/json")
    payload = request.json()
    assert "Dana Whitfield" in payload["text"]
    flat = str(payload["blocks"])
    assert "Northwind Analytics" in flat and "Contact request form (+50)" in flat and notice.deal_url in flat


def test_a_500_then_a_200_is_retried_and_delivered(receiver: WebhookReceiver, notice: HandoffNotice,
                                                   fast_policy: RetryPolicy) -> None:
    receiver.answer(Answer(500, "rollup_error"))
    sleeps: list[float] = []
    [delivery] = _slack_notifier(receiver.url(), fast_policy, sleeps).deliver(notice)
    assert delivery.ok
    assert delivery.attempts == 2
    assert len(receiver.requests) == 2
    assert len(sleeps) == 1 and 0 < sleeps[0] <= fast_policy.backoff_max


def test_a_persistent_500_ends_as_a_retryable_failure_after_the_bounded_attempts(
        receiver: WebhookReceiver, notice: HandoffNotice, fast_policy: RetryPolicy) -> None:
    receiver.default = Answer(503, "service unavailable")
    [delivery] = _slack_notifier(receiver.url(), fast_policy).deliver(notice)
    assert not delivery.ok
    assert delivery.retryable
    assert delivery.attempts == fast_policy.attempts == len(receiver.requests)
    assert delivery.error == f"slack: http://127.0.0.1:{receiver.port}/… answered 503: service unavailable"


@pytest.mark.parametrize(("status", "body"), [(400, "invalid_payload"), (404, "no_service"),
                                              (410, "channel_is_archived"), (403, "action_prohibited")])
def test_a_refusal_by_slack_is_not_retried(receiver: WebhookReceiver, notice: HandoffNotice,
                                           fast_policy: RetryPolicy, status: int, body: str) -> None:
    receiver.default = Answer(status, body)
    [delivery] = _slack_notifier(receiver.url(), fast_policy).deliver(notice)
    assert (delivery.ok, delivery.retryable, delivery.attempts) == (False, False, 1)
    assert len(receiver.requests) == 1
    assert delivery.error is not None and f"answered {status}: {body}" in delivery.error


def test_a_429_waits_as_long_as_retry_after_asks(receiver: WebhookReceiver, notice: HandoffNotice,
                                                 fast_policy: RetryPolicy) -> None:
    receiver.answer(Answer(429, "rate_limited", {"Retry-After": "3"}))
    sleeps: list[float] = []
    [delivery] = _slack_notifier(receiver.url(), fast_policy, sleeps).deliver(notice)
    assert delivery.ok and delivery.attempts == 2
    assert sleeps == [3.0]


def test_a_retry_after_beyond_the_bound_is_left_to_the_outbox(receiver: WebhookReceiver, notice: HandoffNotice,
                                                              fast_policy: RetryPolicy) -> None:
    receiver.default = Answer(429, "rate_limited", {"Retry-After": "120"})
    sleeps: list[float] = []
    [delivery] = _slack_notifier(receiver.url(), fast_policy, sleeps).deliver(notice)
    assert (delivery.ok, delivery.retryable, delivery.attempts) == (False, True, 1)
    assert delivery.retry_after == 120.0
    assert sleeps == []
    assert "(retry after 120 s)" in (delivery.error or "")


def test_a_closed_port_is_a_quick_retryable_failure(closed_port: int, notice: HandoffNotice,
                                                    fast_policy: RetryPolicy) -> None:
    url = f"http://127.0.0.1:{closed_port}{SLACK_PATH}"
    [delivery] = _slack_notifier(url, fast_policy).deliver(notice)
    assert (delivery.ok, delivery.retryable, delivery.attempts) == (False, True, 3)
    assert delivery.error is not None
    assert "cannot reach" in delivery.error and "ConnectionRefusedError" in delivery.error


def test_a_stalled_receiver_times_out_as_a_retryable_failure(receiver: WebhookReceiver, notice: HandoffNotice) -> None:
    receiver.default = Answer(200, "ok", stall=5.0)
    policy = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.01)
    [delivery] = _slack_notifier(receiver.url(), policy, timeout=0.3).deliver(notice)
    assert (delivery.ok, delivery.retryable, delivery.attempts) == (False, True, 2)
    assert delivery.error == "slack: no answer within 0.3 s"


def test_a_redirect_is_reported_not_followed(receiver: WebhookReceiver, notice: HandoffNotice,
                                             fast_policy: RetryPolicy) -> None:
    receiver.default = Answer(302, "", {"Location": receiver.url("/elsewhere")})
    [delivery] = _slack_notifier(receiver.url(), fast_policy).deliver(notice)
    assert (delivery.ok, delivery.retryable) == (False, False)
    assert [r.path for r in receiver.requests] == [SLACK_PATH]
    assert "a redirect" in (delivery.error or "")


def test_teams_receives_an_adaptive_card_message(receiver: WebhookReceiver, notice: HandoffNotice) -> None:
    receiver.default = Answer(202, "")  # Workflows answers 202 Accepted with no body
    TeamsWebhook(receiver.url(TEAMS_PATH), timeout=2).send(notice)
    [request] = receiver.requests
    payload = request.json()
    assert payload["type"] == "message"
    card = payload["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["actions"][0]["url"] == notice.deal_url
    assert "Dana Whitfield" in card["body"][0]["text"]


def test_teams_throttling_reported_inside_a_200_is_retryable(receiver: WebhookReceiver,
                                                             notice: HandoffNotice) -> None:
    receiver.default = Answer(200, "Webhook message delivery failed with error: Microsoft Teams endpoint "
                                   "returned HTTP error 429 with ContextId tcid=0")
    with pytest.raises(NotifyRetryable) as info:
        TeamsWebhook(receiver.url(TEAMS_PATH), timeout=2).send(notice)
    assert info.value.status == 429


def test_a_bad_payload_answer_from_teams_is_permanent(receiver: WebhookReceiver, notice: HandoffNotice) -> None:
    receiver.default = Answer(400, '{"error":{"code":"TriggerInputSchemaMismatch"}}')
    with pytest.raises(NotifyPermanent, match=r"answered 400: .*TriggerInputSchemaMismatch"):
        TeamsWebhook(receiver.url(TEAMS_PATH), timeout=2).send(notice)


def test_a_webhook_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="must start with https://") as info:
        SlackWebhook("hooks.slack.com/services/T0/B0/secret-token")
    assert "secret-token" not in str(info.value)


def test_retry_after_is_read_in_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=lambda: 1445412480.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
