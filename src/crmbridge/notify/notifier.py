"""``Notifier``: fans one hand-off notice out to the team channels and the owner's mailbox, retries what is
worth retrying under one bounded policy, and reports every outcome as a ``Delivery``. It never raises:
a notification that cannot go out must not hold up the hand-off it announces."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay
from tenacity.stop import stop_base

from crmbridge.logs import redact
from crmbridge.notify.errors import NotifyError, NotifyRetryable
from crmbridge.notify.notice import Delivery, HandoffNotice
from crmbridge.notify.settings import NotifySettings
from crmbridge.notify.smtp import SmtpMailer
from crmbridge.notify.webhooks import SlackWebhook, TeamsWebhook
from crmbridge.retrying import backoff

log = structlog.get_logger("crmbridge.notify")


def _log(level: str, event: str, **fields: object) -> None:
    # A broken log sink must not turn a delivery report into a raise.
    with contextlib.suppress(Exception):
        getattr(log, level)(event, **fields)

EMAIL = "email"


class Channel(Protocol):
    """Anything that can deliver a notice: ``send`` returns, or raises ``NotifyRetryable``/``NotifyPermanent``."""

    name: str
    target: str  # where it delivers, safe to log (no secret)

    def send(self, notice: HandoffNotice, recipient: str | None = None) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one delivery is tried before it is left to the caller's outbox.

    ``attempts`` in all, exponential back-off with jitter between them, a receiver's Retry-After honoured
    up to ``max_retry_after`` seconds (a longer one ends the delivery as retryable right away), and no
    wait that would end past ``max_total`` seconds since the first attempt.
    """

    attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 4.0
    max_retry_after: float = 30.0
    max_total: float = 45.0

    def retrying(self, sleep: Callable[[float], None], before_sleep: Callable[[RetryCallState], None]) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(self.attempts) | stop_before_delay(self.max_total)
            | _retry_after_beyond(self.max_retry_after),
            wait=backoff(self.backoff_base, self.backoff_max,
                         asked=lambda e: e.retry_after if isinstance(e, NotifyRetryable) else None),
            retry=retry_if_exception_type(NotifyRetryable),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )


class _retry_after_beyond(stop_base):  # lower case, like tenacity's own stop conditions
    """Stop when the receiver asks for a longer wait than we hold a worker for: the outbox waits instead."""

    def __init__(self, bound: float) -> None:
        self.bound = bound

    def __call__(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        return isinstance(error, NotifyRetryable) and (error.retry_after or 0.0) > self.bound


@dataclass(frozen=True)
class _Route:
    name: str
    channel: Channel
    recipient: str | None

    @property
    def target(self) -> str:
        return self.recipient or self.channel.target


class Notifier:
    """Delivers hand-off notices to the configured team channels and, by e-mail, to the owner.

    Who gets what: every team channel (Slack, Teams) gets every notice. E-mail goes to the owner when
    the notice names one with an address; in claim mode, or when the owner has no address, it goes to
    the team address if one is configured, and nowhere otherwise.
    """

    def __init__(self, channels: Sequence[Channel] = (), *, mailer: Channel | None = None,
                 team_email: str | None = None, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        names = [c.name for c in channels] + ([mailer.name] if mailer else [])
        if len(set(names)) != len(names):
            raise ValueError(f"notify: channel names must be unique, got {names}")
        self._channels = tuple(channels)
        self._mailer = mailer
        self.team_email = team_email
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: NotifySettings, *, policy: RetryPolicy | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> Notifier:
        timeout = settings.notify_timeout
        channels: list[Channel] = []
        if settings.slack_webhook_url:
            channels.append(SlackWebhook(settings.slack_webhook_url.get_secret_value(), timeout=timeout))
        if settings.teams_webhook_url:
            channels.append(TeamsWebhook(settings.teams_webhook_url.get_secret_value(), timeout=timeout))
        mailer = None
        if settings.smtp_host and settings.notify_from:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
            mailer = SmtpMailer(settings.smtp_host, settings.smtp_port, settings.smtp_username, password,
                                settings.smtp_security, settings.notify_from, timeout=timeout)
        return cls(channels, mailer=mailer, team_email=settings.notify_team_email, policy=policy, sleep=sleep)

    @property
    def channels(self) -> tuple[str, ...]:
        """Names of the configured channels (``slack``, ``teams``, ``email``); empty when nothing is set up."""
        return tuple(c.name for c in self._channels) + ((self._mailer.name,) if self._mailer else ())

    def email_recipient(self, notice: HandoffNotice) -> str | None:
        if notice.recipient:
            return notice.recipient
        if not notice.claim and notice.owner_email:
            return notice.owner_email
        return self.team_email

    def channels_for(self, notice: HandoffNotice) -> tuple[str, ...]:
        """The channels this notice goes to (a subset of ``channels``): what an outbox should enqueue.

        ``email`` is left out when the notice has nobody to mail (claim mode, or an owner without an
        address, and no team address).
        """
        return tuple(r.name for r in self._routes(notice))

    def _routes(self, notice: HandoffNotice) -> list[_Route]:
        """Where this notice goes, in a fixed order: team channels first, then e-mail."""
        routes = [_Route(c.name, c, None) for c in self._channels]
        recipient = self.email_recipient(notice)
        if self._mailer is not None and recipient:
            routes.append(_Route(self._mailer.name, self._mailer, recipient))
        return routes

    def deliver(self, notice: HandoffNotice) -> list[Delivery]:
        """Send ``notice`` everywhere it should go, channels in parallel; one ``Delivery`` per channel."""
        routes = self._routes(notice)
        if len(routes) <= 1:
            return [self._deliver_route(notice, r) for r in routes]
        with ThreadPoolExecutor(max_workers=len(routes), thread_name_prefix="notify") as pool:
            # Each task gets its own copy of the caller's context, so bound log context follows it.
            futures = [pool.submit(contextvars.copy_context().run, self._deliver_route, notice, r) for r in routes]
            return [f.result() for f in futures]

    def deliver_to(self, notice: HandoffNotice, channel: str) -> Delivery:
        """Send ``notice`` to one channel only: how an outbox retries a failed delivery without repeating
        the ones that succeeded."""
        for route in self._routes(notice):
            if route.name == channel:
                return self._deliver_route(notice, route)
        if channel in self.channels:
            error = "no e-mail recipient for this notice (no owner address and no team address)"
        else:
            error = f"channel {channel!r} is not configured"
        _log("warning", "notify.failed", channel=channel, key=notice.key, attempts=0, retryable=False, error=error)
        return Delivery(channel=channel, target=channel, ok=False, retryable=False, attempts=0, error=error)

    def _deliver_route(self, notice: HandoffNotice, route: _Route) -> Delivery:
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            route.channel.send(notice, route.recipient)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            _log("info", "notify.retrying", channel=route.name, target=route.target, key=notice.key,
                 attempt=state.attempt_number, wait=round(state.upcoming_sleep, 3), error=str(error))

        try:
            self.policy.retrying(self._sleep, before_sleep)(attempt)
        except NotifyError as exc:
            retryable = isinstance(exc, NotifyRetryable)
            retry_after = exc.retry_after if isinstance(exc, NotifyRetryable) else None
            return self._failed(notice, route, attempts, retryable, str(exc), retry_after)
        except Exception as exc:  # a bug in a channel must not block the hand-off either
            return self._failed(notice, route, attempts, False,
                                f"{route.name}: unexpected {type(exc).__name__}: {redact(str(exc))[:200]}", None)
        _log("info", "notify.sent", channel=route.name, target=route.target, key=notice.key, attempts=attempts,
             claim=notice.claim)
        return Delivery(channel=route.name, target=route.target, ok=True, retryable=False, attempts=attempts)

    @staticmethod
    def _failed(notice: HandoffNotice, route: _Route, attempts: int, retryable: bool, error: str,
                retry_after: float | None) -> Delivery:
        _log("warning", "notify.failed", channel=route.name, target=route.target, key=notice.key,
             attempts=attempts, retryable=retryable, error=error)
        return Delivery(channel=route.name, target=route.target, ok=False, retryable=retryable, attempts=attempts,
                        error=error, retry_after=retry_after)
