"""Notification errors, typed by what the caller can do: try again later, or fix the configuration/data."""

from __future__ import annotations

from crmbridge.errors import CrmbridgeError


class NotifyError(CrmbridgeError):
    """A notification was not delivered. The message never carries a webhook URL or a password."""

    def __init__(self, message: str, *, channel: str, status: int | None = None) -> None:
        self.channel = channel
        self.status = status
        super().__init__(message)


class NotifyRetryable(NotifyError):
    """Worth sending again: 5xx, 429, timeouts, refused or reset connections, SMTP 4xx.

    ``retry_after`` is the wait the receiver asked for (seconds), when it said so.
    """

    def __init__(self, message: str, *, channel: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, channel=channel, status=status)


class NotifyPermanent(NotifyError):
    """Sending the same again will fail the same way: a bad payload, a revoked webhook, bad credentials,
    a refused address, a TLS or configuration mismatch. Someone must fix the settings or the data."""
