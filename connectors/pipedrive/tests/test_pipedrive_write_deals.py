"""``write_deals`` on Pipedrive: one v2 PATCH per deal, SLA fields under their hashed keys, owners moved.

Calls are counted at the sandbox (``/_sandbox/stats``) and values read back through the API.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import requests

from crmbridge.writeback.contract import DealUpdate, ProvisionSpec

H = {"x-api-token": "sandbox"}
PATCH = "PATCH /api/v2/deals/{id}"
USER, PASSWORD = "crmbridge", "hook-password-1"


def stats_calls(server: Any) -> Counter[str]:
    answer = requests.get(server.url + "/_sandbox/stats", timeout=10)
    assert answer.status_code == 200
    return Counter(answer.json()["pipedrive"]["calls"])


class Calls:
    """The calls the sandbox counted since this was made."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.before = stats_calls(server)

    def since(self) -> Counter[str]:
        return stats_calls(self.server) - self.before


def deal(server: Any, deal_id: str) -> dict[str, Any]:
    answer = requests.get(f"{server.base_url('pipedrive')}/api/v2/deals/{deal_id}", headers=H, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def live_deals(server: Any, n: int) -> list[str]:
    ids = [str(i) for i in server.vendor("pipedrive").state.live_ids("deals")]
    assert len(ids) >= n
    return ids[:n]


def test_each_deal_costs_one_patch_and_reads_back_under_its_hashed_keys(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    writer = connect(server).writer()
    keys = writer.provision(ProvisionSpec()).field_keys
    ids = live_deals(server, 12)
    due = datetime(2026, 6, 1, 14, 30, tzinfo=UTC)
    calls = Calls(server)

    result = writer.write_deals([DealUpdate(i, {
        "sla_due_at": (due + timedelta(minutes=n)).isoformat() if n % 2 else due + timedelta(minutes=n),
        "sla_status": "at risk",
        "sla_first_touch_at": due.astimezone(timezone(timedelta(hours=2))) + timedelta(seconds=n, milliseconds=250),
        "sla_business_minutes": 37.5 if n == 0 else n,
    }) for n, i in enumerate(ids)], keys)

    assert calls.since() == {PATCH: len(ids)}
    assert result.calls == len(ids) and result.written == ids and result.failed == {}
    for n, deal_id in enumerate(ids):
        custom = deal(server, deal_id)["custom_fields"]
        assert custom[keys["sla_due_at"]] == (due + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert custom[keys["sla_first_touch_at"]] == f"2026-06-01T14:30:{n:02d}.250Z"
        assert custom[keys["sla_status"]] == "at risk"
        assert custom[keys["sla_business_minutes"]] == (37.5 if n == 0 else n)


def test_owner_reassignment_reads_back_and_is_told_as_a_deal_change(sandbox_factory, connect, receiver) -> None:
    server = sandbox_factory()
    writer = connect(server).writer()
    keys = writer.provision(ProvisionSpec(webhook_url=receiver.url, webhook_user=USER,
                                          webhook_password=PASSWORD)).field_keys
    [deal_id] = live_deals(server, 1)
    before = deal(server, deal_id)["owner_id"]
    other = next(u for u in server.vendor("pipedrive").state.users if u != before)

    result = writer.write_deals([DealUpdate(deal_id, {"owner_id": str(other), "sla_status": "breached"})], keys)

    assert result.written == [deal_id] and result.calls == 1
    after = deal(server, deal_id)
    assert (after["owner_id"], after["custom_fields"][keys["sla_status"]]) == (other, "breached")
    assert server.vendor("pipedrive").drain_webhooks(20)
    changes = [body for body in (orjson.loads(raw) for _, raw in receiver.deliveries)
               if body["meta"]["entity"] == "deal"]
    assert [(c["meta"]["action"], c["meta"]["entity_id"], c["previous"]["owner_id"], c["data"]["owner_id"])
            for c in changes] == [("change", deal_id, before, other)]


def test_a_deal_pipedrive_does_not_have_fails_alone(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    writer = connect(server).writer()
    keys = writer.provision(ProvisionSpec()).field_keys
    first, last = live_deals(server, 2)
    calls = Calls(server)
    result = writer.write_deals([DealUpdate(d, {"sla_status": "met"}) for d in (first, "99999999", last)], keys)
    assert result.written == [first, last] and list(result.failed) == ["99999999"]
    assert "404" in result.failed["99999999"] and "not found" in result.failed["99999999"].lower()
    assert result.calls == 3 and calls.since() == {PATCH: 3}
    assert {deal(server, d)["custom_fields"][keys["sla_status"]] for d in (first, last)} == {"met"}


def test_a_field_setup_never_made_or_a_naive_time_fails_its_deal_before_any_call(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    writer = connect(server).writer()
    keys = dict(writer.provision(ProvisionSpec()).field_keys)
    del keys["sla_status"]
    one, two, three = live_deals(server, 3)
    calls = Calls(server)
    result = writer.write_deals([DealUpdate(one, {"sla_status": "met"}),
                                 DealUpdate(two, {"sla_due_at": datetime(2026, 6, 1, 9)}),
                                 DealUpdate(three, {"sla_business_minutes": 12})], keys)
    assert result.written == [three] and result.calls == 1 and calls.since() == {PATCH: 1}
    assert "run crmbridge setup" in result.failed[one] and "aware datetime" in result.failed[two]


def test_no_update_makes_no_call(sandbox_factory, connect) -> None:
    server = sandbox_factory()
    writer = connect(server).writer()
    keys = writer.provision(ProvisionSpec()).field_keys
    calls = Calls(server)
    result = writer.write_deals([], keys)
    assert (result.written, result.failed, result.calls) == ([], {}, 0) and calls.since() == {}
