"""``GET /v1/persons`` and ``GET /v1/pipelines`` (what pipedrive-python-lib calls) answer in v1's shapes."""

from __future__ import annotations

import re

import requests

H = {"x-api-token": "sandbox"}
CUSTOM_KEY = re.compile(r"^[0-9a-f]{40}(_currency)?$")


def get(server, path, **params):
    return requests.get(server.base_url("pipedrive") + path, params=params, headers=H, timeout=10)


def test_v1_persons_pages_in_v1s_shape_with_what_v2_holds(sandbox_factory, check_shape):
    server = sandbox_factory(contacts=60)
    state = server.vendor("pipedrive").state
    first = get(server, "/v1/persons", limit=7).json()
    assert first["success"] is True and len(first["data"]) == 7
    assert first["additional_data"]["pagination"] == {"start": 0, "limit": 7, "more_items_in_collection": True,
                                                      "next_start": 7}
    described = {k: v for k, v in first.items() if k != "related_objects"}  # keyed by ids, not names
    described["data"] = [{k: v for k, v in p.items() if not CUSTOM_KEY.match(k)} for p in first["data"]]
    assert check_shape("v1", "get", "/persons", described) == []
    person = first["data"][0]
    row = state.get("persons", person["id"])
    assert person["owner_id"]["value"] == row["owner_id"] and person["email"] == row["emails"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", person["update_time"])
    assert str(person["owner_id"]["value"]) in first["related_objects"]["user"]
    assert set(row["custom_fields"]) <= set(person)  # custom fields at the top level, by key

    seen, start = [], 0
    while start is not None:
        page = get(server, "/v1/persons", start=start, limit=500).json()
        seen += [p["id"] for p in page["data"] or []]
        start = page["additional_data"]["pagination"].get("next_start")
    assert seen == state.live_ids("persons")


def test_v1_persons_filters_and_sorts_as_documented(sandbox_factory):
    server = sandbox_factory(contacts=60)
    state = server.vendor("pipedrive").state
    owner = state.get("persons", state.live_ids("persons")[0])["owner_id"]
    owned = get(server, "/v1/persons", user_id=owner, limit=500).json()["data"]
    assert owned and {p["owner_id"]["value"] for p in owned} == {owner}
    names = [p["name"] for p in get(server, "/v1/persons", sort="name DESC", limit=500).json()["data"]]
    assert names == sorted(names, reverse=True)
    assert get(server, "/v1/persons", sort="colour ASC").status_code == 400
    assert get(server, "/v1/persons", limit=501).status_code == 400


def test_v1_pipelines_answers_every_pipeline_in_v1s_shape(sandbox_factory, check_shape, connect):
    server = sandbox_factory(contacts=30)
    state = server.vendor("pipedrive").state
    body = get(server, "/v1/pipelines").json()
    assert check_shape("v1", "get", "/pipelines", body) == []
    assert [p["id"] for p in body["data"]] == state.live_ids("pipelines")
    assert body["data"][0]["selected"] is True and body["data"][0]["url_title"] == "sales-pipeline"
    client = connect(server).client  # through the library, as the client makes every v1 call
    listed = client._v1("GET /v1/pipelines", client.v1.pipelines.get_all_pipelines)["data"]
    assert [p["name"] for p in listed] == [p["name"] for p in body["data"]]
