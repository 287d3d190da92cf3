"""Chat channels: a Slack incoming webhook and a Microsoft Teams webhook (Workflows or incoming webhook).

One HTTP POST of JSON per notice, with a timeout, no redirects (a redirected POST would silently turn
into a GET), and every answer sorted into retryable or permanent. The URL is the credential: it is
kept out of every message and log line; ``target`` is the scheme and host only.
"""

from __future__ import annotations

import email.utils
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC
from typing import Any

import orjson

from crmbridge.notify.errors import NotifyPermanent, NotifyRetryable
from crmbridge.notify.notice import HandoffNotice
from crmbridge.notify.redact import Scrubber, redact_url, url_secrets
from crmbridge.notify.render import slack_message, teams_message

MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "crmbridge-notify"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx surfaces as an HTTPError and is reported, never followed


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Retry-After in seconds, from either of its forms (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


class JsonWebhook:
    """POSTs a rendered notice to one webhook URL; subclasses choose the renderer and read the answer."""

    name = "webhook"
    render: Callable[[HandoffNotice], dict[str, Any]]

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        if not url.lower().startswith(("https://", "http://")):
            raise ValueError(f"{self.name}: the webhook URL must start with https:// ({redact_url(url)})")
        self._url = url
        self.timeout = timeout
        self.target = redact_url(url)
        self._scrub = Scrubber(url_secrets(url))
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"

    def send(self, notice: HandoffNotice, recipient: str | None = None) -> None:
        """Deliver ``notice`` to the channel (``recipient`` is unused: a webhook posts where it was made for)."""
        body = orjson.dumps(type(self).render(notice))
        request = urllib.request.Request(self._url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
        })
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, text = response.status, response.read(MAX_ANSWER_BYTES).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            text = _drain(exc)
            raise self._refusal(exc.code, text, exc.headers.get("Retry-After") if exc.headers else None) from None
        except TimeoutError:
            raise NotifyRetryable(f"{self.name}: no answer within {self.timeout:g} s", channel=self.name) from None
        except urllib.error.URLError as exc:
            raise self._connection_error(exc.reason) from None
        except (OSError, http.client.HTTPException) as exc:  # reset, or a broken answer, while reading
            raise self._connection_error(exc) from None
        self._accepted(status, text)

    def _connection_error(self, reason: object) -> NotifyRetryable:
        if isinstance(reason, TimeoutError):
            return NotifyRetryable(f"{self.name}: no answer within {self.timeout:g} s", channel=self.name)
        what = type(reason).__name__ if isinstance(reason, BaseException) else "connection problem"
        detail = self._scrub(str(getattr(reason, "strerror", None) or reason))[:200]
        return NotifyRetryable(f"{self.name}: cannot reach {self.target} ({what}: {detail})", channel=self.name)

    def _refusal(self, status: int, text: str, retry_after: str | None) -> NotifyRetryable | NotifyPermanent:
        detail = self._scrub(" ".join(text.split()))[:200] or "no details"
        message = f"{self.name}: {self.target} answered {status}: {detail}"
        if status == 429:
            wait = parse_retry_after(retry_after)
            suffix = f" (retry after {wait:g} s)" if wait is not None else ""
            return NotifyRetryable(message + suffix, channel=self.name, status=status, retry_after=wait)
        if status >= 500 or status == 408:
            return NotifyRetryable(message, channel=self.name, status=status,
                                   retry_after=parse_retry_after(retry_after))
        if 300 <= status < 400:
            message = f"{self.name}: {self.target} answered {status} (a redirect): check the webhook URL"
        return NotifyPermanent(message, channel=self.name, status=status)

    def _accepted(self, status: int, text: str) -> None:
        """A 2xx answer means delivered, unless the channel says otherwise in the body."""


class SlackWebhook(JsonWebhook):
    """A Slack incoming webhook (``https://hooks.slack.com/services/…``).

    Slack answers 200 ``ok``; refusals come as 4xx with a short code (``invalid_payload``,
    ``no_service``, ``channel_is_archived``, ``action_prohibited``…), which no resend will fix.
    """

    name = "slack"
    render = staticmethod(slack_message)


class TeamsWebhook(JsonWebhook):
    """A Microsoft Teams webhook: a Workflows "When a Teams webhook request is received" URL, or a
    legacy incoming-webhook URL. Both take the Adaptive Card message that ``teams_message`` renders.

    The legacy incoming webhook can answer 200 with a body that reports the failure (for instance when
    Teams throttled it with a 429); that is read as a failure, not as a delivery.
    """

    name = "teams"
    render = staticmethod(teams_message)

    def _accepted(self, status: int, text: str) -> None:
        lowered = text.lower()
        if "delivery failed" not in lowered:
            return
        detail = self._scrub(" ".join(text.split()))[:200]
        if "429" in lowered or "throttl" in lowered:
            raise NotifyRetryable(f"{self.name}: {self.target} was throttled: {detail}", channel=self.name,
                                  status=429)
        raise NotifyPermanent(f"{self.name}: {self.target} answered {status} but did not deliver: {detail}",
                              channel=self.name, status=status)


def _drain(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read(MAX_ANSWER_BYTES).decode("utf-8", "replace") if exc.fp else ""
    except OSError:
        return ""
    finally:
        exc.close()
