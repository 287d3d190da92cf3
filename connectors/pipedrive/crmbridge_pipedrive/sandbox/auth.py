"""Who is calling: the sandbox's credentials, taken the ways Pipedrive takes each kind.

An API token (``SandboxOptions.tokens``) is accepted only as the ``x-api-token`` header or the
``api_token`` query parameter; an OAuth access token (the sandbox option ``pipedrive_oauth_tokens``)
only as ``Authorization: Bearer``. Anything else (no credential, an unknown one, or one sent the
other kind's way) is refused with Pipedrive's 401. Each credential belongs to a user of the account:
the first to the company's first user (its admin), the next ones to the next users in turn; that
user is who a write is made by and who owns a record created without ``owner_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

API_TOKEN = "api_token"
OAUTH = "oauth"


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: int | None
    kind: str  # API_TOKEN or OAUTH
    token: str  # whose burst window the request counts in


class Credentials:
    """The accepted API tokens and OAuth tokens, each with its user."""

    def __init__(self, api_tokens: Sequence[str], oauth_tokens: Sequence[str], user_ids: Sequence[int]) -> None:
        users = list(user_ids) or [None]
        self.api = {t: users[i % len(users)] for i, t in enumerate(dict.fromkeys(api_tokens)) if t}
        self.oauth = {t: users[i % len(users)] for i, t in enumerate(dict.fromkeys(oauth_tokens)) if t}

    def caller(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Caller | None:
        """The user behind a request's credential, or None when Pipedrive would answer 401."""
        api_token = headers.get("x-api-token") or query.get("api_token")
        if api_token:
            return Caller(self.api[api_token], API_TOKEN, api_token) if api_token in self.api else None
        scheme, _, bearer = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and bearer.strip() in self.oauth:
            return Caller(self.oauth[bearer.strip()], OAUTH, bearer.strip())
        return None
