"""The client waits as long as HubSpot's ``Retry-After`` says after a 429, no less and not its own guess."""

from __future__ import annotations

import time
from typing import Any

from crmbridge_hubspot.client import HubSpotClient
from crmbridge_hubspot.settings import HubSpotSettings


def test_after_a_429_the_client_waits_for_retry_after_then_succeeds(make_sandbox: Any) -> None:
    # Three calls per window; at time scale 5 the ten-second window lasts two seconds.
    server, _, http = make_sandbox(contacts=20, hubspot_burst_limit=3, time_scale=5)
    for _ in range(3):  # another process on the same token uses up the window
        assert http("GET", "/crm/v3/owners").status == 200
    refused = http("GET", "/crm/v3/owners")
    retry_after = float(refused.headers["retry-after"])
    assert refused.status == 429 and 0.5 < retry_after <= 2.0
    # Its own pacer believes there is room (burst 100), its back-off is tiny and its fallback wait (the
    # burst interval) is long: only Retry-After can make it wait about two seconds.
    client = HubSpotClient(HubSpotSettings(access_token="sandbox", base_url=server.base_url("hubspot"),
                                           burst_limit=100, burst_interval_seconds=30.0, backoff_base_seconds=0.01,
                                           backoff_max_seconds=0.02, max_attempts=20))
    started = time.monotonic()
    page = client.list_page("contacts", after=None, properties=["email"], associations=())
    waited = time.monotonic() - started
    assert len(page["results"]) == 20
    usage = client.usage()
    assert usage.rate_limited == 1, "one 429, then it waited instead of knocking again"
    assert server.vendor("hubspot").stats()["rate_limited"] == 2
    assert 1.0 < waited < 5.0, f"waited {waited:.2f} s; the window freed up after ~2 s"
