"""``write_deals`` on HubSpot: SLA fields and owners, 100 deals per batch call, a bad deal failing alone.

Calls are counted where HubSpot would count them, at the sandbox (``/_sandbox/stats``), and every value is
read back through the API with the real SDK.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import urllib3

from crmbridge.connectors import plugin
from crmbridge.writeback.contract import DealUpdate, PersonUpdate, ProvisionSpec

BATCH_UPDATE = "POST /crm/v3/objects/deals/batch/update"
SLA = ["crmbridge_sla_due_at", "crmbridge_sla_status", "crmbridge_sla_first_touch_at",
       "crmbridge_sla_business_minutes"]


def stats_calls(server: Any) -> Counter[str]:
    """The sandbox's own count of API calls, as its control route reports it."""
    answer = urllib3.PoolManager(retries=False).request("GET", f"{server.url}/_sandbox/stats", timeout=10)
    assert answer.status == 200
    return Counter(answer.json()["hubspot"]["calls"])


class Calls:
    """The calls the sandbox counted since this was made."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.before = stats_calls(server)

    def since(self) -> Counter[str]:
        return stats_calls(self.server) - self.before


def provisioned(server: Any) -> tuple[Any, dict[str, str]]:
    writer = plugin("hubspot").sandbox_connector(server.base_url("hubspot")).writer()
    return writer, dict(writer.provision(ProvisionSpec()).field_keys)


def read_back(client: Any, ids: list[str], properties: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for start in range(0, len(ids), 100):
        answer = client.crm.deals.batch_api.read({"inputs": [{"id": i} for i in ids[start:start + 100]],
                                                  "properties": properties})
        out.update({r.id: r.properties for r in answer.results})
    return out


def deal_ids(hs: Any, n: int) -> list[str]:
    ids = hs.ids("deals")
    while len(ids) < n:
        ids.append(hs.create("deals", {"dealname": f"SLA deal {len(ids)}"}))
    return ids[:n]


def test_150_deals_cost_two_batch_calls_and_every_value_reads_back_as_written(hs_server, hs, client) -> None:
    writer, keys = provisioned(hs_server)
    calls = Calls(hs_server)
    ids = deal_ids(hs, 150)
    due = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    updates = []
    for n, deal_id in enumerate(ids):
        at = due + timedelta(minutes=n)
        updates.append(DealUpdate(deal_id, {
            "sla_due_at": at if n % 2 else at.isoformat().replace("+00:00", "Z"),  # aware datetimes and texts
            "sla_status": "at risk" if n % 3 else "on track",
            "sla_first_touch_at": (at - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5))),
            "sla_business_minutes": 17.5 if n % 5 == 0 else n,
        }))

    result = writer.write_deals(updates, keys)

    assert calls.since() == {BATCH_UPDATE: 2}
    assert result.calls == 2 and result.failed == {} and result.written == ids
    found = read_back(client, ids, SLA)
    for n, deal_id in enumerate(ids):
        at = due + timedelta(minutes=n)
        assert found[deal_id]["crmbridge_sla_due_at"] == at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert found[deal_id]["crmbridge_sla_first_touch_at"] == (at - timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"), "an instant given in another zone is the same instant in UTC"
        assert found[deal_id]["crmbridge_sla_status"] == ("at risk" if n % 3 else "on track")
        assert found[deal_id]["crmbridge_sla_business_minutes"] == ("17.5" if n % 5 == 0 else str(n))


def test_owner_reassignment_reads_back_and_notifies_the_owner_change(hs_server, hs, client, receiver) -> None:
    writer = plugin("hubspot").sandbox_connector(hs_server.base_url("hubspot")).writer()
    keys = dict(writer.provision(ProvisionSpec(webhook_url=receiver.url)).field_keys)
    deal_id = hs.ids("deals")[0]
    current = hs.get("deals", deal_id).get("hubspot_owner_id")
    other = next(o.id for o in hs.portal.owners if not o.archived and o.id != current)

    result = writer.write_deals([DealUpdate(deal_id, {"owner_id": other, "sla_status": "breached"})], keys)

    assert result.written == [deal_id] and result.calls == 1
    found = read_back(client, [deal_id], ["hubspot_owner_id", "crmbridge_sla_status"])[deal_id]
    assert (found["hubspot_owner_id"], found["crmbridge_sla_status"]) == (other, "breached")
    assert hs.drain_webhooks(20)
    changes = [e for e in receiver.events if e.get("subscriptionType") == "deal.propertyChange"]
    assert [(str(e["objectId"]), e["propertyName"], e["propertyValue"]) for e in changes] == [
        (deal_id, "hubspot_owner_id", other)]


def test_a_deal_hubspot_does_not_hold_fails_alone_in_the_same_call(hs_server, hs, client) -> None:
    writer, keys = provisioned(hs_server)
    calls = Calls(hs_server)
    ids = hs.ids("deals")[:3]
    result = writer.write_deals([DealUpdate(i, {"sla_status": "met"}) for i in [ids[0], "999999999", *ids[1:]]],
                                keys)
    assert result.written == ids and list(result.failed) == ["999999999"]
    assert "OBJECT_NOT_FOUND" in result.failed["999999999"] or "not exist" in result.failed["999999999"]
    assert result.calls == 1 and calls.since() == {BATCH_UPDATE: 1}
    assert {v["crmbridge_sla_status"] for v in read_back(client, ids, SLA).values()} == {"met"}


def test_an_owner_hubspot_does_not_know_fails_only_its_deal(hs_server, hs, client) -> None:
    writer, keys = provisioned(hs_server)
    calls = Calls(hs_server)
    good, bad, also_good = hs.ids("deals")[:3]
    result = writer.write_deals([DealUpdate(good, {"sla_status": "missed"}),
                                 DealUpdate(bad, {"owner_id": "123", "sla_status": "missed"}),
                                 DealUpdate(also_good, {"sla_business_minutes": 42})], keys)
    assert result.written == [good, also_good] and list(result.failed) == [bad]
    assert "123 is not a valid owner id" in result.failed[bad]
    # HubSpot refuses the whole batch, so each deal is sent again on its own.
    assert calls.since() == {BATCH_UPDATE: 1, "PATCH /crm/v3/objects/deals/{objectId}": 3}
    assert result.calls == 4
    found = read_back(client, [good, bad, also_good], SLA)
    assert found[good]["crmbridge_sla_status"] == "missed" and found[bad]["crmbridge_sla_status"] is None
    assert found[also_good]["crmbridge_sla_business_minutes"] == "42"


def test_a_value_that_is_no_instant_fails_its_deal_before_any_call(hs_server, hs) -> None:
    writer, keys = provisioned(hs_server)
    calls = Calls(hs_server)
    one, two = hs.ids("deals")[:2]
    result = writer.write_deals([DealUpdate(one, {"sla_due_at": "next tuesday"}),
                                 DealUpdate(two, {"sla_due_at": datetime(2026, 3, 2, 9)})], keys)
    assert result.written == [] and result.calls == 0 and calls.since() == {}
    assert "not an ISO-8601 instant" in result.failed[one] and "aware datetime" in result.failed[two]


def test_no_update_makes_no_call(hs_server) -> None:
    writer, keys = provisioned(hs_server)
    calls = Calls(hs_server)
    result = writer.write_deals([], keys)
    assert (result.written, result.failed, result.calls) == ([], {}, 0)
    assert calls.since() == {}


def test_a_contact_hubspot_refuses_fails_alone_too(hs_server, hs, client) -> None:
    """``write_people`` shares the batch helper: a value HubSpot will not take no longer fails the batch."""
    writer, keys = provisioned(hs_server)
    calls = Calls(hs_server)
    good, bad = hs.ids("contacts")[:2]
    result = writer.write_people([PersonUpdate(good, {"score": 61}), PersonUpdate(bad, {"score": "lots"})], keys)
    assert result.written == [good] and list(result.failed) == [bad] and result.calls == 3
    assert calls.since() == {"POST /crm/v3/objects/contacts/batch/update": 1,
                             "PATCH /crm/v3/objects/contacts/{objectId}": 2}
    assert hs.get("contacts", good)["crmbridge_score"] == "61"
