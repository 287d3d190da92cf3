"""Sandbox sellers answering hand-off deals in Pipedrive, in simulated time, seen through the API and webhooks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import requests

from crmbridge_pipedrive.records import due_at

H = {"x-api-token": "sandbox"}


class Account:
    """The sandbox's Pipedrive over plain HTTP, as a user of its API sees it."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.base = server.base_url("pipedrive")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = requests.request(method, self.base + path, headers=H, json=body, timeout=30)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()["data"]

    def users(self) -> list[dict[str, Any]]:
        return [u for u in self.call("GET", "/v1/users") if u["active_flag"]]

    def handoff_stage(self) -> int:
        return self.call("POST", "/api/v2/stages", {"name": "Sales-ready leads", "pipeline_id": 1})["id"]

    def hand_off(self, stage: int, owners: list[int], n: int) -> list[dict[str, Any]]:
        """``n`` hand-off deals as write-back makes them: in the stage, owned, with the person and organization."""
        persons = [p for p in self.call("GET", "/api/v2/persons?limit=100") if p["org_id"]][:n]
        return [self.call("POST", "/api/v2/deals", {"title": f"Hand-off {i}", "person_id": p["id"],
                                                    "org_id": p["org_id"], "pipeline_id": 1, "stage_id": stage,
                                                    "owner_id": owners[i % len(owners)]})
                for i, p in enumerate(persons)]

    def simulate(self, body: Any) -> requests.Response:
        return requests.post(self.server.url + "/_sandbox/simulate", params={"source": "pipedrive"}, json=body,
                             timeout=30)

    def work(self, until: datetime, **sellers: Any) -> dict[str, Any]:
        answer = self.simulate({"sellers": {"until": until.isoformat(), **sellers}})
        assert answer.status_code == 200, answer.text
        return answer.json()["pipedrive"]["sellers"]


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@pytest.fixture
def account(sandbox_factory: Any) -> Account:
    return Account(sandbox_factory())


def test_a_fast_seller_logs_a_done_call_or_email_within_minutes_of_the_hand_off(account: Account) -> None:
    owners = [u["id"] for u in account.users()[:2]]
    deals = account.hand_off(account.handoff_stage(), owners, 4)
    created = max(_at(d["add_time"]) for d in deals)
    done = account.work(created + timedelta(minutes=21), seed=7, profiles={str(o): "fast" for o in owners})
    assert done["summary"]["touches"] == 4
    added = {str(d["id"]): _at(d["add_time"]) for d in deals}
    for deal in done["deals"]:
        [touch] = deal["actions"]
        activity = account.call("GET", f"/api/v2/activities/{touch['activity_id']}")
        assert activity["type"] in ("call", "email") and activity["done"]
        assert due_at(activity) == touch["at"], "the canonical activity's occurred_at is the simulated instant"
        assert activity["marked_as_done_time"] == touch["at"]
        assert timedelta(minutes=2) < _at(touch["at"]) - added[deal["deal_id"]] <= timedelta(minutes=20)
        assert str(activity["deal_id"]) == deal["deal_id"] and activity["person_id"] and activity["org_id"]
        assert str(activity["owner_id"]) == deal["owner_id"]


def test_a_seller_who_never_answers_leaves_the_deal_in_the_hand_off_stage(account: Account) -> None:
    [user] = account.users()[:1]
    stage = account.handoff_stage()
    [deal] = account.hand_off(stage, [user["id"]], 1)
    done = account.work(_at(deal["add_time"]) + timedelta(days=90), profiles={user["email"]: "never"})
    assert done["deals"] == [] and done["summary"]["handoff_deals"] == 1
    assert account.call("GET", f"/api/v2/deals/{deal['id']}")["stage_id"] == stage
    assert account.call("GET", f"/api/v2/activities?deal_id={deal['id']}") == []


def test_an_outside_hours_seller_answers_only_in_their_working_hours(account: Account) -> None:
    users = account.users()[:4]
    zones = {str(u["id"]): u["timezone_name"] for u in users}
    deals = account.hand_off(account.handoff_stage(), [u["id"] for u in users], 6)
    created = max(_at(d["add_time"]) for d in deals)
    done = account.work(created + timedelta(days=60), profiles={u["email"]: "outside_hours" for u in users})
    assert done["summary"]["touches"] == 6
    for deal in done["deals"]:
        for action in deal["actions"]:
            local = _at(action["at"]).astimezone(ZoneInfo(zones[deal["owner_id"]]))
            assert local.weekday() < 5 and 9 <= local.hour < 17, (deal["owner_id"], action)


def test_each_step_is_done_once_and_a_later_instant_carries_out_the_next_ones(account: Account) -> None:
    owners = [u["id"] for u in account.users()[:3]]
    stage = account.handoff_stage()
    deals = account.hand_off(stage, owners, 5)
    created = max(_at(d["add_time"]) for d in deals)
    profiles = {str(o): "fast" for o in owners}
    assert account.work(created + timedelta(minutes=30), seed=3, profiles=profiles)["summary"]["touches"] == 5
    again = account.work(created + timedelta(minutes=30), seed=3, profiles=profiles)
    assert again["deals"] == [] and again["summary"]["touches"] == 0, "nothing is done twice"
    later = account.work(created + timedelta(days=60), seed=3, profiles=profiles)
    assert later["summary"]["accepted"] + later["summary"]["rejected"] == 5 and later["summary"]["touches"] == 0
    for deal in later["deals"]:
        now = account.call("GET", f"/api/v2/deals/{deal['deal_id']}")
        ends = [a for a in deal["actions"] if a["action"] in ("won", "lost", "rejected")]
        if ends:
            assert now["status"] == ("won" if ends[0]["action"] == "won" else "lost")
            assert now["close_time"] == ends[0]["at"]
            if ends[0]["action"] != "won":
                assert now["lost_reason"] == ends[0]["reason"]
        if any(a["action"] == "accept" for a in deal["actions"]):
            assert now["stage_id"] != stage and now["stage_change_time"]
        for meeting in (a for a in deal["actions"] if a["action"] == "meeting"):
            activity = account.call("GET", f"/api/v2/activities/{meeting['activity_id']}")
            assert activity["type"] == "meeting" and due_at(activity) == meeting["at"]
    stats = requests.get(account.server.url + "/_sandbox/stats", timeout=10).json()["pipedrive"]["sellers"]
    assert stats["touches"] == 5 and stats["accepted"] + stats["rejected"] == 5


def test_the_same_seed_gives_the_same_actions_in_two_accounts(sandbox_factory: Any) -> None:
    runs = []
    servers = [sandbox_factory(), sandbox_factory()]
    frozen = servers[0].vendor("pipedrive").state.clock()
    for server in servers:
        server.vendor("pipedrive").state.clock = lambda: frozen  # the same hand-off instants in both
        account = Account(server)
        deals = account.hand_off(account.handoff_stage(), [u["id"] for u in account.users()[:4]], 6)
        done = account.work(_at(deals[0]["add_time"]) + timedelta(days=60), seed=21)
        runs.append([(d["deal_id"], [(a["action"], a["at"], a.get("reason")) for a in d["actions"]])
                     for d in done["deals"]])
    assert runs[0] == runs[1] and runs[0]


def test_what_sellers_do_goes_out_as_webhooks_made_in_the_app(account: Account, receiver: Any) -> None:
    owners = [u["id"] for u in account.users()[:2]]
    deals = account.hand_off(account.handoff_stage(), owners, 3)
    account.call("POST", "/v1/webhooks", {"subscription_url": receiver.url, "event_action": "*",
                                          "event_object": "*", "version": "2.0", "http_auth_user": "u",
                                          "http_auth_password": "p"})
    done = account.work(max(_at(d["add_time"]) for d in deals) + timedelta(days=60),
                        profiles={str(o): "slow" for o in owners})
    assert account.server.vendor("pipedrive").drain_webhooks(20)
    bodies = [orjson.loads(raw) for _, raw in receiver.deliveries]
    assert bodies and {b["meta"]["change_source"] for b in bodies} == {"app"}
    logged = {a["activity_id"] for d in done["deals"] for a in d["actions"] if "activity_id" in a}
    created = {b["meta"]["entity_id"] for b in bodies if b["meta"]["entity"] == "activity"
               and b["meta"]["action"] == "create"}
    assert created == logged
    changed = {b["meta"]["entity_id"] for b in bodies if b["meta"]["entity"] == "deal"}
    assert changed == {d["deal_id"] for d in done["deals"]}
    assert all(b["meta"]["user_id"] == str(b["data"]["owner_id"]) for b in bodies if b["data"])


@pytest.mark.parametrize(("body", "message"), [
    ({"sellers": {"until": "soon"}}, "sellers.until"),
    ({"sellers": {"until": "2026-06-01T09:00:00"}}, "time zone"),
    ({"sellers": {"until": "2026-06-01T09:00:00Z", "profiles": {"12000001": "eager"}}}, "unknown profile 'eager'"),
    ({"sellers": {"until": "2026-06-01T09:00:00Z", "seed": 1.5}}, "sellers.seed"),
    ({"sellers": "2026-06-01T09:00:00Z"}, "sellers must be a JSON object"),
    ({"surge": {"accounts": "three", "until": "2026-06-01T09:00:00Z"}}, "surge.accounts"),
])
def test_a_bad_sellers_request_is_refused_with_400_and_a_clear_message(account: Account, body: Any,
                                                                       message: str) -> None:
    answer = account.simulate(body)
    assert answer.status_code == 400 and message in answer.json()["error"]


def test_a_surge_is_answered_with_a_note_since_pipedrive_holds_no_marketing_behaviour(account: Account) -> None:
    answer = account.simulate({"surge": {"accounts": 3, "days": 5, "until": "2026-06-01T00:00:00Z", "seed": 7}})
    assert answer.status_code == 200
    surge = answer.json()["pipedrive"]["surge"]
    assert surge["accounts"] == [] and "no marketing behaviour" in surge["note"]
