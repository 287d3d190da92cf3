"""Keep notification secrets out of logs and errors: a webhook URL's path and query are its credential."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from crmbridge.logs import register_secret

ELLIPSIS = "…"


def redact_url(url: str) -> str:
    """Scheme and host only (``https://hooks.slack.com/…``): enough to tell where, never the token."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return f"[url]{ELLIPSIS}"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme or 'http'}://{host}{port}/{ELLIPSIS}"


def url_secrets(url: str) -> list[str]:
    """The parts of a webhook URL that authenticate: the whole URL, its path and its query (raw and decoded)."""
    parts = urlsplit(url)
    found = [url, parts.path, parts.query, unquote(parts.path), unquote(parts.query)]
    if parts.password:
        found.append(parts.password)
    return [s for s in found if s and s != "/"]


class Scrubber:
    """Replaces known secrets in any text; also registers them with the log scrubber of ``crmbridge.logs``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a URL is replaced whole before its path would be.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        for secret in self._secrets:
            register_secret(secret)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text
