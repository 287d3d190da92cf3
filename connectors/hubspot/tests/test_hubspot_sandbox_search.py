"""CRM search: filters, sorts and totals as HubSpot computes them, its limits, and its lagging index."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hubspot.crm.objects import PublicObjectSearchRequest
from hubspot.crm.objects.exceptions import ApiException

from .conftest import sdk_client


def search(client: Any, object_type: str, groups: list[list[dict[str, Any]]], **kwargs: Any) -> Any:
    request = PublicObjectSearchRequest(filter_groups=[{"filters": g} for g in groups], **kwargs)
    return client.crm.objects.search_api.do_search(object_type, request)


def search_all(client: Any, object_type: str, groups: list[list[dict[str, Any]]], **kwargs: Any) -> list[Any]:
    results, after = [], None
    while True:
        page = search(client, object_type, groups, limit=200, after=after, **kwargs)
        results.extend(page.results)
        if not page.paging:
            return results
        after = page.paging.next.after


def state(hs: Any, object_type: str) -> list[dict[str, Any]]:
    return [hs.get(object_type, i) for i in hs.ids(object_type)]


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_search_results_deserialise_with_totals_and_default_properties(client: Any, hs: Any) -> None:
    page = search(client, "contacts", [], limit=5)
    assert page.total == hs.count("contacts")
    assert len(page.results) == 5 and page.paging.next.after == "5"
    assert set(page.results[0].properties) == {"createdate", "email", "firstname", "hs_object_id",
                                               "lastmodifieddate", "lastname"}


def test_asked_properties_come_with_the_three_hubspot_always_adds(client: Any) -> None:
    page = search(client, "companies", [], limit=2, properties=["industry"])
    assert set(page.results[0].properties) == {"createdate", "hs_lastmodifieddate", "hs_object_id", "industry"}


def test_filters_within_a_group_are_and_and_groups_are_or(client: Any, hs: Any) -> None:
    contacts = state(hs, "contacts")
    groups = [
        [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "customer"},
         {"propertyName": "hs_seniority", "operator": "IN", "values": ["executive", "vp"]}],
        [{"propertyName": "bant_budget", "operator": "EQ", "value": "approved"}],
    ]
    expected = {c["hs_object_id"] for c in contacts
                if (c.get("lifecyclestage") == "customer" and c.get("hs_seniority") in ("executive", "vp"))
                or c.get("bant_budget") == "approved"}
    found = search_all(client, "contacts", groups)
    assert expected and {r.id for r in found} == expected
    assert search(client, "contacts", groups, limit=1).total == len(expected)


@pytest.mark.parametrize(("operator", "value", "check"), [
    ("GT", "1000", lambda n: n > 1000), ("LTE", "50", lambda n: n <= 50), ("NEQ", "10", lambda n: n != 10),
])
def test_number_comparisons(client: Any, hs: Any, operator: str, value: str, check: Any) -> None:
    expected = {c["hs_object_id"] for c in state(hs, "companies") if check(int(c["numberofemployees"]))}
    found = search_all(client, "companies", [[{"propertyName": "numberofemployees", "operator": operator,
                                                "value": value}]])
    assert {r.id for r in found} == expected


def test_between_has_property_and_contains_token(client: Any, hs: Any) -> None:
    companies = state(hs, "companies")
    found = search_all(client, "companies", [[{"propertyName": "numberofemployees", "operator": "BETWEEN",
                                                "value": "100", "highValue": "500"}]])
    assert {r.id for r in found} == {c["hs_object_id"] for c in companies if 100 <= int(c["numberofemployees"]) <= 500}
    found = search_all(client, "companies", [[{"propertyName": "renewal_date", "operator": "HAS_PROPERTY"}]])
    assert {r.id for r in found} == {c["hs_object_id"] for c in companies if c.get("renewal_date")}
    found = search_all(client, "contacts", [[{"propertyName": "email", "operator": "CONTAINS_TOKEN",
                                               "value": "*@gmail.com"}]])
    gmail = {c["hs_object_id"] for c in state(hs, "contacts") if c["email"].endswith("@gmail.com")}
    assert gmail and {r.id for r in found} == gmail


def test_checkbox_values_match_any_listed_option(client: Any, hs: Any) -> None:
    found = search_all(client, "companies", [[{"propertyName": "tech_stack", "operator": "IN",
                                                "values": ["salesforce", "hubspot"]}]])
    expected = {c["hs_object_id"] for c in state(hs, "companies")
                if {"salesforce", "hubspot"} & set((c.get("tech_stack") or "").split(";"))}
    assert expected and {r.id for r in found} == expected


def test_last_modified_windows_take_epoch_ms_or_iso(client: Any, hs: Any) -> None:
    contacts = state(hs, "contacts")
    stamps = sorted(ms(c["lastmodifieddate"]) for c in contacts)
    low, high = stamps[len(stamps) // 4], stamps[len(stamps) // 2]
    expected = {c["hs_object_id"] for c in contacts if low <= ms(c["lastmodifieddate"]) < high}
    as_ms = search_all(client, "contacts", [[
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(low)},
        {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(high)}]])
    as_iso = search_all(client, "contacts", [[
        {"propertyName": "lastmodifieddate", "operator": "GTE",
         "value": datetime.fromtimestamp(low / 1000, UTC).isoformat()},
        {"propertyName": "lastmodifieddate", "operator": "LT",
         "value": datetime.fromtimestamp(high / 1000, UTC).isoformat()}]])
    assert {r.id for r in as_ms} == {r.id for r in as_iso} == expected


def test_sorting_by_last_modified_then_resuming_after_the_last_seen_pair(client: Any, hs: Any) -> None:
    """The (timestamp, id) restart a sync uses past 10,000 results must see every record exactly once."""
    seen: list[str] = []
    last_ms, last_id = 0, 0
    while True:
        page = search(client, "contacts", [
            [{"propertyName": "lastmodifieddate", "operator": "GT", "value": str(last_ms)}],
            [{"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(last_ms)},
             {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)}],
        ], limit=37, sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}])
        if not page.results:
            break
        seen.extend(r.id for r in page.results)
        last_ms, last_id = ms(page.results[-1].properties["lastmodifieddate"]), int(page.results[-1].id)
    assert len(seen) == len(set(seen)) == hs.count("contacts")


def test_descending_sort_on_a_text_property(client: Any) -> None:
    page = search(client, "companies", [], limit=50, properties=["name"],
                  sorts=[{"propertyName": "name", "direction": "DESCENDING"}])
    names = [r.properties["name"].lower() for r in page.results]
    assert names == sorted(names, reverse=True)


def test_offset_paging_covers_every_match_once(client: Any, hs: Any) -> None:
    found = search_all(client, "calls", [])
    assert len(found) == len({r.id for r in found}) == hs.count("calls")


def test_paging_past_ten_thousand_results_is_refused_never_truncated(http: Any) -> None:
    ok = http("POST", "/crm/v3/objects/contacts/search", {"limit": 200, "after": 9800})
    assert ok.status == 200
    refused = http("POST", "/crm/v3/objects/contacts/search", {"limit": 200, "after": 9900})
    assert refused.status == 400
    assert refused.body["status"] == "error" and refused.body["category"] == "VALIDATION_ERROR"
    assert "10,000" in refused.body["message"] and refused.body["correlationId"]
    assert http("POST", "/crm/v3/objects/contacts/search", {"limit": 10, "after": 10000}).status == 400


@pytest.mark.parametrize(("body", "needle"), [
    ({"limit": 201}, "limit"),
    ({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}] * 6}, "filter groups"),
    ({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 7}]}, "filters"),
    ({"sorts": [{"propertyName": "email"}, {"propertyName": "firstname"}]}, "sorts"),
    ({"filterGroups": [{"filters": [{"propertyName": "shoe_size", "operator": "EQ", "value": "9"}]}]}, "shoe_size"),
    ({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "x"}]}]}, "operator"),
])
def test_search_limits_answer_400(http: Any, body: dict[str, Any], needle: str) -> None:
    answer = http("POST", "/crm/v3/objects/contacts/search", body)
    assert answer.status == 400 and answer.body["category"] == "VALIDATION_ERROR"
    assert needle in answer.body["message"]


def test_a_search_body_over_three_thousand_characters_is_refused(http: Any) -> None:
    body = {"query": "x" * 3000}
    answer = http("POST", "/crm/v3/objects/contacts/search", body)
    assert answer.status == 400 and "3000" in answer.body["message"]


def test_search_never_returns_archived_records(client: Any, hs: Any) -> None:
    victim = hs.ids("deals")[0]
    hs.archive("deals", victim)
    found = search_all(client, "deals", [])
    assert victim not in {r.id for r in found}
    assert len(found) == hs.count("deals")


def test_search_answers_carry_no_rate_limit_headers(http: Any) -> None:
    answer = http("POST", "/crm/v3/objects/contacts/search", {"limit": 1})
    assert answer.status == 200
    assert not [h for h in answer.headers if h.startswith("x-hubspot-ratelimit")]
    listed = http("GET", "/crm/v3/objects/contacts?limit=1")
    assert "x-hubspot-ratelimit-remaining" in listed.headers


def test_free_text_query_matches_name_and_email_tokens(client: Any, hs: Any) -> None:
    target = hs.get("contacts", hs.ids("contacts")[0])
    page = client.crm.objects.search_api.do_search("contacts", PublicObjectSearchRequest(
        query=target["lastname"], limit=200))
    assert target["hs_object_id"] in {r.id for r in page.results}


# -- the index lag -----------------------------------------------------------------------------------------------


def wait_until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_with_an_index_lag_search_shows_the_previous_state_until_the_index_catches_up(make_sandbox: Any) -> None:
    server, client, _ = make_sandbox(contacts=40, hubspot_search_lag_seconds=0.4, hubspot_search_per_second=10_000)
    hs = server.vendor("hubspot")
    contact_id = hs.ids("contacts")[0]
    old_title = hs.get("contacts", contact_id).get("jobtitle")

    def title_seen() -> str | None:
        page = search(client, "contacts", [[{"propertyName": "hs_object_id", "operator": "EQ",
                                             "value": contact_id}]], properties=["jobtitle"])
        return page.results[0].properties["jobtitle"]

    hs.update("contacts", contact_id, {"jobtitle": "VP Revenue"})
    new_id = hs.create("contacts", {"email": "lagging@example.org"})
    assert title_seen() == old_title, "the index still holds the old value"
    assert hs.get("contacts", contact_id)["jobtitle"] == "VP Revenue", "reads see the write at once"
    assert new_id not in {r.id for r in search_all(client, "contacts", [])}
    assert wait_until(lambda: title_seen() == "VP Revenue")
    assert wait_until(lambda: new_id in {r.id for r in search_all(client, "contacts", [])})


def test_by_default_search_lags_each_write_by_one_to_three_scaled_seconds() -> None:
    # No lag option: the default is on. At time scale 10 each write shows after 0.1-0.3 s, each its own.
    from crmbridge.connectors import SandboxOptions
    from crmbridge.sandbox import SandboxServer

    options = SandboxOptions(seed=3, contacts=40, time_scale=10, extra={"hubspot_search_per_second": 10_000})
    with SandboxServer(options, sources=["hubspot"]) as server:
        hs = server.vendor("hubspot")
        client = sdk_client(server)
        ids = hs.ids("contacts")[:6]
        written = time.monotonic()
        shown: dict[str, float] = {}
        for cid in ids:
            hs.update("contacts", cid, {"jobtitle": f"Lagging {cid}"})

        def seen() -> bool:
            page = search(client, "contacts", [[{"propertyName": "jobtitle", "operator": "CONTAINS_TOKEN",
                                                 "value": "lagging"}]], properties=["jobtitle"])
            for r in page.results:
                shown.setdefault(r.id, time.monotonic() - written)
            return len(shown) == len(ids)

        assert not seen() and not shown, "no write is searchable at once"
        assert wait_until(seen, timeout=5)
    assert all(0.09 <= lag <= 0.6 for lag in shown.values()), shown
    assert max(shown.values()) - min(shown.values()) > 0.01, "each write draws its own lag"


def test_the_lag_option_takes_a_range_and_zero_turns_it_off() -> None:
    from crmbridge_hubspot.sandbox import search_lag

    assert search_lag({}, 1.0) == (1.0, 3.0)
    assert search_lag({}, 10.0) == (0.1, 0.3)
    assert search_lag({"hubspot_search_lag_seconds": [2, 4]}, 2.0) == (1.0, 2.0)
    assert search_lag({"hubspot_search_lag_seconds": 0}, 1.0) == (0.0, 0.0)
    assert search_lag({"search_lag": 5.0}, 1.0) == (5.0, 5.0), "the CLI's spelling is read too"
    with pytest.raises(ValueError):
        search_lag({"hubspot_search_lag_seconds": [3, 1]}, 1.0)


def test_without_a_lag_writes_are_searchable_at_once(client: Any, hs: Any) -> None:
    contact_id = hs.ids("contacts")[0]
    hs.update("contacts", contact_id, {"jobtitle": "Head of Growth"})
    page = search(client, "contacts", [[{"propertyName": "jobtitle", "operator": "EQ", "value": "head of growth"}]])
    assert contact_id in {r.id for r in page.results}


def test_search_is_limited_to_five_requests_per_second_per_token(make_sandbox: Any) -> None:
    # A time scale below one stretches the one-second window, so the burst below always falls in it.
    _, client, http = make_sandbox(contacts=20, time_scale=0.05, tokens=("sandbox", "another-app"))
    answers = [http("POST", "/crm/v3/objects/contacts/search", {"limit": 1}) for _ in range(6)]
    assert [a.status for a in answers] == [200] * 5 + [429]
    assert answers[-1].body["errorType"] == "RATE_LIMIT" and answers[-1].body["policyName"] == "SECONDLY"
    assert not [h for h in answers[-1].headers if h.startswith("x-hubspot-ratelimit")]
    other_token = http("POST", "/crm/v3/objects/contacts/search", {"limit": 1}, token="another-app")
    assert other_token.status == 200, "the limit is per token"
    with pytest.raises(ApiException) as refused:
        search(client, "contacts", [], limit=1)
    assert refused.value.status == 429


@pytest.mark.parametrize("direction", ["ASCENDING", "DESCENDING"])
def test_a_last_modified_window_sorted_by_last_modified_comes_back_in_order(
        client: Any, hs: Any, direction: str) -> None:
    found = search_all(client, "contacts", [[{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]],
                       sorts=[{"propertyName": "lastmodifieddate", "direction": direction}])
    keys = [(ms(r.properties["lastmodifieddate"]), int(r.id)) for r in found]
    assert keys == sorted(keys, reverse=direction == "DESCENDING")
    assert len(keys) == hs.count("contacts")


def test_iso_values_with_an_offset_and_string_limits_are_understood(http: Any, hs: Any) -> None:
    body = {"filterGroups": [{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "2025-09-19T04:30:45-08:00"},
        {"propertyName": "lastmodifieddate", "operator": "LTE", "value": "2027-01-01T00:00:00-08:00"}]}],
        "limit": "200", "properties": ["email"], "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]}
    answer = http("POST", "/crm/v3/objects/contacts/search", body)
    low, high = ms("2025-09-19T12:30:45Z"), ms("2027-01-01T08:00:00Z")
    expected = sorted((c["hs_object_id"] for c in state(hs, "contacts")
                       if low <= ms(c["lastmodifieddate"]) <= high), key=int)
    assert answer.status == 200 and answer.body["total"] == len(expected)
    assert [r["id"] for r in answer.body["results"]] == expected[:200]
