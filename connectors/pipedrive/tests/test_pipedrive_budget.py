"""The client against the sandbox's daily token budget: it reads the daily headers and stops sending."""

from __future__ import annotations

import pytest

from crmbridge.errors import RateLimitedError


def test_the_client_follows_the_daily_budget_and_stops_sending_once_it_is_spent(sandbox_factory, connect):
    server = sandbox_factory(contacts=50, time_scale=1.0, pipedrive_daily_tokens=25)
    client = connect(server).client
    client.v2_list("persons", {"limit": 10})
    assert (client.daily.limit, client.daily.remaining) == (25, 15)
    client.v2_list("persons", {"limit": 10})
    client.v2_list("persons", {"limit": 10})  # the last 5 tokens still admit a 10-token call
    assert client.daily.remaining == 0
    with pytest.raises(RateLimitedError) as caught:
        client.v2_list("persons", {"limit": 10})
    assert caught.value.policy == "daily" and caught.value.retry_after > 80_000
    sent = server.vendor("pipedrive").stats()["total_calls"]
    with pytest.raises(RateLimitedError):
        client.users()
    assert server.vendor("pipedrive").stats()["total_calls"] == sent  # refused here, never sent
