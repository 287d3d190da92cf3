"""Fixtures for the notification tests: local webhook and SMTP receivers, sample notices, a fast policy."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiosmtpd.controller import Controller
from structlog.testing import capture_logs

# The suite imports test files by path (--import-mode=importlib); this makes notify_helpers importable.
sys.path.insert(0, str(Path(__file__).parent))

from notify_helpers import Mailbox, WebhookReceiver, authenticator, free_port

from crmbridge.notify import HandoffNotice, RetryPolicy


@pytest.fixture(autouse=True)
def _logs_captured() -> Iterator[None]:
    """Every log line reaches a capture, whatever another test module configured (a WARNING filter, or a
    stderr that pytest has closed since)."""
    previous = structlog.get_config()
    structlog.reset_defaults()
    try:
        with capture_logs():
            yield
    finally:
        structlog.configure(**previous)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    r.start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound on 127.0.0.1 but not listening: connecting to it is refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[Controller, Mailbox]]]:
    """Starts aiosmtpd servers on demand: ``smtp_server(auth=("user", "pw"), **controller_kwargs)``."""
    started: list[Controller] = []

    def start(mailbox: Mailbox | None = None, *, auth: tuple[str, str] | None = None,
              **kwargs: Any) -> tuple[Controller, Mailbox]:
        box = mailbox or Mailbox()
        if auth:
            kwargs.update(auth_required=True, authenticator=authenticator(*auth))
            kwargs.setdefault("auth_require_tls", False)
        controller = Controller(box, hostname="127.0.0.1", port=free_port(), ready_timeout=5, **kwargs)
        controller.start()
        started.append(controller)
        return controller, box

    try:
        yield start
    finally:
        for controller in started:
            controller.stop()


# -- notices and a fast policy ----------------------------------------------------------------------

@pytest.fixture
def notice() -> HandoffNotice:
    return HandoffNotice(
        key="handoff:hubspot:1000000018:v1",
        crm="HubSpot",
        person_name="Dana Whitfield",
        person_email="dana.whitfield@northwind.example",
        person_title="VP Revenue Operations",
        company_name="Northwind Analytics",
        company_domain="northwind.example",
        score=72.0,
        stage="SQL",
        reasons=("Contact request form (+50)", "Buyer's guide download (+25)", "Company size in sweet spot (+10)"),
        deal_title="Northwind Analytics - Dana Whitfield",
        deal_url="https://app.hubspot.com/contacts/123/record/0-3/987654",
        owner_name="Sam Okafor",
        owner_email="sam.okafor@seller.example",
    )


@pytest.fixture
def claim_notice(notice: HandoffNotice) -> HandoffNotice:
    return replace(notice, claim=True, owner_name=None, owner_email=None)


@pytest.fixture
def fast_policy() -> RetryPolicy:
    """Three attempts with millisecond back-offs: the tests exercise the policy, not the clock."""
    return RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02, max_retry_after=5.0, max_total=10.0)
