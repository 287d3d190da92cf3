"""Sandbox sellers answering hand-offs in HubSpot, in simulated time, seen through the real SDK and webhooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hubspot.crm.deals import SimplePublicObjectInputForCreate
from hubspot.crm.pipelines import PipelineStageInput

from crmbridge_hubspot.sandbox.render import owner_id

from .conftest import RawHttp, Receiver, subscribe

DEAL_TO_CONTACT, DEAL_TO_COMPANY = 3, 5
ACTIVITY_TYPES = {"touch": ("calls", "emails"), "meeting": ("meetings",)}


def _handoff_stage(client: Any) -> str:
    return client.crm.pipelines.pipeline_stages_api.create("deals", "default", PipelineStageInput(
        label="Sales-ready leads", display_order=-1, metadata={"probability": "0.1"})).id


def _owners(client: Any) -> list[str]:
    return [o.id for o in client.crm.owners.owners_api.get_page(limit=100).results]


def _hand_off(client: Any, hs: Any, stage: str, owners: list[str], n: int) -> list[tuple[str, datetime]]:
    """``n`` hand-off deals as write-back makes them: in the stage, owned, with the contact and company."""
    made = []
    contacts = [c for c in hs.ids("contacts") if hs.associations("contacts", c, "companies")][:n]
    for i, contact in enumerate(contacts):
        company = hs.associations("contacts", contact, "companies")[0]
        deal = client.crm.deals.basic_api.create(SimplePublicObjectInputForCreate(
            properties={"dealname": f"Hand-off {i}", "pipeline": "default", "dealstage": stage,
                        "hubspot_owner_id": owners[i % len(owners)]},
            associations=[{"to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                              "associationTypeId": DEAL_TO_CONTACT}]},
                          {"to": {"id": company}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                              "associationTypeId": DEAL_TO_COMPANY}]}]))
        made.append((deal.id, deal.created_at))
    return made


def _work(http: RawHttp, until: datetime, **sellers: Any) -> dict[str, Any]:
    answer = http("POST", "/_sandbox/simulate?source=hubspot", {"sellers": {"until": until.isoformat(), **sellers}})
    assert answer.status == 200, answer.body
    return answer.body["hubspot"]["sellers"]


def _activity(client: Any, action: dict[str, Any]) -> Any:
    return client.crm.objects.basic_api.get_by_id(
        action["object_type"], action["activity_id"], properties=["hs_timestamp", "hubspot_owner_id"],
        associations=["deals", "contacts", "companies"])


@pytest.fixture
def control(hs_server: Any) -> RawHttp:
    return RawHttp(hs_server.url, token=None)


def test_a_fast_seller_calls_or_emails_within_minutes_of_the_hand_off(client: Any, hs: Any, control: RawHttp
                                                                     ) -> None:
    owners = _owners(client)[:2]
    deals = _hand_off(client, hs, _handoff_stage(client), owners, 4)
    created = max(at for _, at in deals)
    done = _work(control, created + timedelta(minutes=21), seed=7, profiles={o: "fast" for o in owners})
    assert done["summary"]["touches"] == 4 and {d["deal_id"] for d in done["deals"]} == {d for d, _ in deals}
    for deal in done["deals"]:
        [touch] = deal["actions"]
        assert touch["action"] == "touch" and touch["object_type"] in ACTIVITY_TYPES["touch"]
        activity = _activity(client, touch)
        at, handed = activity.properties["hs_timestamp"], dict(deals)[deal["deal_id"]]
        assert at == touch["at"].replace("Z", ".000Z"), "the canonical activity's occurred_at is the simulated instant"
        assert timedelta(minutes=2) < datetime.fromisoformat(at) - handed <= timedelta(minutes=20)
        assert activity.properties["hubspot_owner_id"] == deal["owner_id"]
        links = {kind: [a.id for a in found.results] for kind, found in activity.associations.items()}
        assert links["deals"] == [deal["deal_id"]] and links["contacts"] and links["companies"]


def test_a_seller_who_never_answers_leaves_the_lead_untouched(client: Any, hs: Any, control: RawHttp) -> None:
    owner = _owners(client)[0]
    stage = _handoff_stage(client)
    [(deal, created)] = _hand_off(client, hs, stage, [owner], 1)
    done = _work(control, created + timedelta(days=90), profiles={owner: "never"})
    assert done["deals"] == [] and done["summary"]["handoff_deals"] == 1
    assert hs.get("deals", deal)["dealstage"] == stage and not hs.associations("deals", deal, "calls")


def test_an_outside_hours_seller_answers_only_in_their_working_hours(client: Any, hs: Any, control: RawHttp
                                                                    ) -> None:
    owners = _owners(client)[:4]
    zones = {owner_id(o.index): o.timezone for o in hs.world.owners}
    deals = _hand_off(client, hs, _handoff_stage(client), owners, 6)
    created = max(at for _, at in deals)
    done = _work(control, created + timedelta(days=60), profiles={o: "outside_hours" for o in owners})
    assert done["summary"]["touches"] == 6
    for deal in done["deals"]:
        for action in deal["actions"]:
            local = datetime.fromisoformat(action["at"]).astimezone(ZoneInfo(zones[deal["owner_id"]]))
            assert local.weekday() < 5 and 9 <= local.hour < 17, (deal["owner_id"], action)


def test_each_step_is_done_once_and_a_later_instant_carries_out_the_next_ones(client: Any, hs: Any,
                                                                              control: RawHttp) -> None:
    owners = _owners(client)[:3]
    stage = _handoff_stage(client)
    deals = _hand_off(client, hs, stage, owners, 5)
    created = max(at for _, at in deals)
    profiles = {o: "fast" for o in owners}
    first = _work(control, created + timedelta(minutes=30), seed=3, profiles=profiles)
    assert first["summary"]["touches"] == 5
    again = _work(control, created + timedelta(minutes=30), seed=3, profiles=profiles)
    assert again["deals"] == [] and again["summary"]["touches"] == 0, "nothing is done twice"
    later = _work(control, created + timedelta(days=60), seed=3, profiles=profiles)
    summary = later["summary"]
    assert summary["touches"] == 0 and summary["accepted"] + summary["rejected"] == 5
    for deal in later["deals"]:
        now = hs.get("deals", deal["deal_id"])
        assert now["dealstage"] != stage, "accepted or rejected: out of the hand-off stage"
        ends = [a for a in deal["actions"] if a["action"] in ("won", "lost", "rejected")]
        if ends and ends[0]["action"] != "won":
            assert now["dealstage"] == "closedlost" and now["closed_lost_reason"] == ends[0]["reason"]
            assert now["closedate"] == ends[0]["at"].replace("Z", ".000Z")
        elif ends:
            assert now["dealstage"] == "closedwon" and now["hs_is_closed_won"] == "true"
        for meeting in (a for a in deal["actions"] if a["action"] == "meeting"):
            assert _activity(client, meeting).properties["hs_timestamp"] == meeting["at"].replace("Z", ".000Z")
    stats = control("GET", "/_sandbox/stats").body["hubspot"]["sellers"]
    assert stats["touches"] == 5 and stats["accepted"] + stats["rejected"] == 5
    assert stats["won"] + stats["lost"] == sum(a["action"] in ("won", "lost") for d in later["deals"]
                                               for a in d["actions"])


def test_the_same_seed_gives_the_same_actions(client: Any, hs: Any, control: RawHttp) -> None:
    runs = []
    clock = hs.portal.wall_ms
    frozen = clock()
    hs.portal.wall_ms = lambda: frozen  # the same hand-off instants in both runs
    try:
        for _ in range(2):
            hs.reset()
            deals = _hand_off(client, hs, _handoff_stage(client), _owners(client)[:4], 6)
            done = _work(control, deals[0][1] + timedelta(days=60), seed=21)
            runs.append([(d["deal_id"], [(a["action"], a["at"], a.get("reason")) for a in d["actions"]])
                         for d in done["deals"]])
    finally:
        hs.portal.wall_ms = clock
    assert runs[0] == runs[1] and runs[0]


def test_what_sellers_do_goes_out_as_webhooks_made_in_the_app(client: Any, hs: Any, control: RawHttp,
                                                              receiver: Receiver) -> None:
    subscribe(hs, receiver.url, properties={"deal": ["dealstage", "closed_lost_reason", "notes_last_contacted"],
                                            "contact": ["notes_last_contacted"]})
    owners = _owners(client)[:2]
    deals = _hand_off(client, hs, _handoff_stage(client), owners, 3)
    done = _work(control, max(at for _, at in deals) + timedelta(days=60), profiles={o: "slow" for o in owners})
    assert hs.drain_webhooks(20)
    events = [e for e in receiver.events if e["changeSource"] == "CRM_UI"]
    moved = {str(e["objectId"]) for e in events if e["propertyName"] == "dealstage"}
    assert moved == {d["deal_id"] for d in done["deals"]}
    touched = {str(e["objectId"]) for e in events if e["subscriptionType"] == "deal.propertyChange"
               and e["propertyName"] == "notes_last_contacted"}
    assert touched == moved, "a logged touch updates the deal's Last Contacted, which is a webhook"
    contacted = [e for e in events if e["subscriptionType"] == "contact.propertyChange"]
    logged = sum(a["action"] in ("touch", "meeting") for d in done["deals"] for a in d["actions"])
    assert len(contacted) == logged >= 3, "and the contact's, for every call, e-mail and meeting"


@pytest.mark.parametrize(("sellers", "message"), [
    ({"until": "soon"}, "sellers.until"),
    ({"until": "2026-03-02T09:00:00"}, "time zone"),
    ({"until": "2026-03-02T09:00:00Z", "profiles": {"70000001": "eager"}}, "unknown profile 'eager'"),
    ({"until": "2026-03-02T09:00:00Z", "seed": "seven"}, "sellers.seed"),
    ({"seed": 7}, "sellers.until is required"),
    (["until"], "sellers must be a JSON object"),
])
def test_a_bad_sellers_request_is_refused_with_400_and_a_clear_message(control: RawHttp, sellers: Any,
                                                                       message: str) -> None:
    answer = control("POST", "/_sandbox/simulate?source=hubspot", {"sellers": sellers})
    assert answer.status == 400 and message in answer.body["error"]


def _account_events(client: Any, hs: Any, company: str, after: datetime, before: datetime) -> int:
    total = 0
    for contact in hs.associations("companies", company, "contacts"):
        cursor = None
        for _ in range(100):
            page = client.events.events_api.get_page(object_type="contact", object_id=int(contact), limit=100,
                                                     occurred_after=after, occurred_before=before,
                                                     **({"after": cursor} if cursor else {}))
            total += len(page.results)
            if not (page.paging and page.paging.next):
                break
            cursor = page.paging.next.after
    return total


def test_a_surge_heats_target_accounts_up_towards_the_end(client: Any, hs: Any, control: RawHttp) -> None:
    until = datetime(2026, 3, 2, tzinfo=UTC)
    surge = {"accounts": 3, "days": 5, "until": until.isoformat(), "seed": 7}
    first_day = (until - timedelta(days=5), until - timedelta(days=4))
    last_day = (until - timedelta(days=1), until)

    def roll_up(accounts: list[str], window: tuple[datetime, datetime]) -> int:
        return sum(_account_events(client, hs, c, *window) for c in accounts)

    answer = control("POST", "/_sandbox/simulate?source=hubspot", {"surge": surge})
    assert answer.status == 200, answer.body
    done = answer.body["hubspot"]["surge"]
    accounts = done["accounts"]
    assert len(accounts) == 3 and done["events"]["guide_download"] >= 3 and not done["repeated"]
    hs.reset()
    before = {w: roll_up(accounts, w) for w in (first_day, last_day, (first_day[0], until))}
    control("POST", "/_sandbox/simulate?source=hubspot", {"surge": surge})
    after = {w: roll_up(accounts, w) for w in before}
    assert after[(first_day[0], until)] > before[(first_day[0], until)], "the accounts' engagement rose"
    assert after[last_day] - before[last_day] > after[first_day] - before[first_day], "more so towards the end"
    again = control("POST", "/_sandbox/simulate?source=hubspot", {"surge": surge}).body["hubspot"]["surge"]
    assert again["repeated"] and roll_up(accounts, (first_day[0], until)) == after[(first_day[0], until)]
