"""Errors typed by what the caller can do about them: fix the input, wait, retry, or re-authenticate."""

from __future__ import annotations

from pathlib import Path


class CrmbridgeError(Exception):
    """Base of every error the CLI turns into a clear message and a non-zero exit."""

    exit_code = 1


class ConfigError(CrmbridgeError):
    """Bad configuration: names the file, line and key when they are known."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | Path | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class ApiError(CrmbridgeError):
    """A CRM answered with an error (or not at all)."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None,
                 category: str | None = None) -> None:
        self.status = status
        self.endpoint = endpoint
        self.category = category
        super().__init__(message)


class RetryableError(ApiError):
    """Worth trying again after a back-off: 5xx, timeouts, dropped connections."""


class RateLimitedError(RetryableError):
    """The vendor said to slow down; ``retry_after`` is how long it asked us to wait, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, policy: str | None = None,
                 **kw: object) -> None:
        self.retry_after = retry_after
        self.policy = policy
        super().__init__(message, **kw)  # type: ignore[arg-type]


class PermanentError(ApiError):
    """The request itself is wrong (4xx): retrying will not help."""


class AuthError(PermanentError):
    """The token is missing, wrong, or lacks a scope."""


class NotFoundError(PermanentError):
    """The record or endpoint does not exist."""


class SearchCapError(PermanentError):
    """A search asked past the vendor's result cap; the caller must narrow its window."""
