"""The Pipedrive sandbox: Pipedrive's shapes, limits, CDN ban, faults, determinism and the world overlap."""

from __future__ import annotations

import time

import requests

from crmbridge.mapping.transforms import normalise_domain, normalise_email
from crmbridge_pipedrive import streams as S
from crmbridge_pipedrive.fields import FieldCatalog, is_custom_key
from crmbridge_pipedrive.sandbox.render import field_key

H = {"x-api-token": "sandbox"}


def get(server, path, **params):
    return requests.get(server.base_url("pipedrive") + path, params=params, headers=H, timeout=10)


def walk(server, path, **params):
    """Every record of a v2 list, following its cursors."""
    out, cursor = [], None
    while True:
        body = get(server, path, **{"limit": 500, **params, **({"cursor": cursor} if cursor else {})}).json()
        out += body["data"]
        cursor = body["additional_data"]["next_cursor"]
        if not cursor:
            return out


def call(server, method, path, body=None):
    return requests.request(method, server.base_url("pipedrive") + path, json=body, headers=H, timeout=10)


# -- shapes ------------------------------------------------------------------------------------

V2_KINDS = ("persons", "organizations", "deals", "activities", "pipelines", "stages")


def test_every_v2_operation_served_answers_in_the_openapi_shape(sandbox_factory, check_shape):
    server = sandbox_factory()
    problems = []
    for kind in V2_KINDS:
        listing = get(server, f"/api/v2/{kind}", limit=3).json()
        assert listing["success"] is True and listing["data"], kind
        problems += check_shape("v2", "get", f"/{kind}", listing)
        first = listing["data"][0]["id"]
        problems += check_shape("v2", "get", f"/{kind}/{{id}}", get(server, f"/api/v2/{kind}/{first}").json())
    created = {
        "persons": {"name": "Ada Lovelace", "emails": [{"value": "ada@example.com", "primary": True}]},
        "organizations": {"name": "Analytical Engines Ltd"},
        "deals": {"title": "Engines - Pilot", "value": 1000},
        "activities": {"subject": "Intro call", "type": "call", "due_date": "2026-06-02"},
        "pipelines": {"name": "Partners"},
        "stages": {"name": "Qualified", "pipeline_id": 1},
    }
    for kind, body in created.items():
        made = call(server, "POST", f"/api/v2/{kind}", body).json()
        problems += check_shape("v2", "post", f"/{kind}", made)
        rid = made["data"]["id"]
        changed = call(server, "PATCH", f"/api/v2/{kind}/{rid}", {"name": "Renamed"} if "name" in body
                       else {"title": "Renamed"} if kind == "deals" else {"subject": "Renamed"}).json()
        problems += check_shape("v2", "patch", f"/{kind}/{{id}}", changed)
        deleted = call(server, "DELETE", f"/api/v2/{kind}/{rid}").json()
        problems += check_shape("v2", "delete", f"/{kind}/{{id}}", deleted)
    problems += check_shape("v2", "get", "/deals/archived", get(server, "/api/v2/deals/archived").json())
    problems += check_shape("v2", "get", "/persons/search", get(server, "/api/v2/persons/search", term="an").json())
    problems += check_shape("v2", "get", "/organizations/search",
                            get(server, "/api/v2/organizations/search", term="ab").json())
    assert problems == [], problems


def test_every_v1_operation_served_answers_in_the_openapi_shape(sandbox_factory, check_shape):
    server = sandbox_factory()
    problems = check_shape("v1", "get", "/users", get(server, "/v1/users").json())
    problems += check_shape("v1", "get", "/users/{id}", get(server, "/v1/users/12000001").json())
    for endpoint in ("personFields", "organizationFields", "dealFields"):
        problems += check_shape("v1", "get", f"/{endpoint}", get(server, f"/v1/{endpoint}").json())
    problems += check_shape("v1", "get", "/leads", get(server, "/v1/leads").json())
    hook = call(server, "POST", "/v1/webhooks", {"subscription_url": "https://example.com/hook",
                                                 "event_action": "*", "event_object": "person", "version": "2.0"})
    assert hook.status_code == 201
    problems += check_shape("v1", "post", "/webhooks", hook.json(), status="201")
    problems += check_shape("v1", "get", "/webhooks", get(server, "/v1/webhooks").json())
    bad = call(server, "POST", "/v1/webhooks", {"event_action": "*"})
    assert bad.status_code == 400
    problems += check_shape("v1", "post", "/webhooks", bad.json(), status="400")
    problems += check_shape("v1", "delete", "/webhooks/{id}",
                            call(server, "DELETE", f"/v1/webhooks/{hook.json()['data']['id']}").json())
    persons = get(server, "/api/v2/persons", limit=2).json()["data"]
    merged = call(server, "PUT", f"/v1/persons/{persons[0]['id']}/merge", {"merge_with_id": persons[1]["id"]})
    problems += check_shape("v1", "put", "/persons/{id}/merge", merged.json())
    for kind in ("organizations", "deals"):
        a, b = (r["id"] for r in get(server, f"/api/v2/{kind}", limit=2).json()["data"])
        answer = call(server, "PUT", f"/v1/{kind}/{a}/merge", {"merge_with_id": b})
        assert answer.status_code == 200
        problems += check_shape("v1", "put", f"/{kind}/{{id}}/merge", answer.json())
    problems += check_shape("v1", "get", "/users/me", get(server, "/v1/users/me").json())
    field = call(server, "POST", "/v1/personFields", {"name": "Crmbridge score", "field_type": "double"}).json()
    problems += check_shape("v1", "post", "/personFields", field)
    one_field = get(server, f"/v1/personFields/{field['data']['id']}").json()
    problems += check_shape("v1", "get", "/personFields/{id}", one_field)
    lead = call(server, "POST", "/v1/leads", {"title": "Inbound demo request", "person_id": persons[1]["id"]})
    assert lead.status_code == 201
    problems += check_shape("v1", "post", "/leads", lead.json(), status="201")
    lead_id = lead.json()["data"]["id"]
    problems += check_shape("v1", "get", "/leads/{id}", get(server, f"/v1/leads/{lead_id}").json())
    problems += check_shape("v1", "patch", "/leads/{id}", call(server, "PATCH", f"/v1/leads/{lead_id}",
                                                                {"title": "Demo request"}).json())
    problems += check_shape("v1", "delete", "/leads/{id}", call(server, "DELETE", f"/v1/leads/{lead_id}").json())
    assert problems == [], problems


def test_no_read_answers_with_a_key_outside_the_openapi_schema(sandbox_factory, check_shape):
    """After updates, deletions, merges and archiving, every read the sandbox serves (each GET route,
    with the parameters the connector and users pass) stays within its operation's described answer:
    no invented field a real account would not send. A GET route without a case here fails the test."""
    server = sandbox_factory(contacts=600)
    vendor = server.vendor("pipedrive")
    state = vendor.state
    since = state.now()
    state.clock = lambda: time.time() + 2
    live = {k: state.live_ids(k) for k in ("persons", "organizations", "deals", "activities")}
    for kind in ("persons", "organizations", "deals"):
        a, b, c = live[kind][:3]
        call(server, "DELETE", f"/api/v2/{kind}/{a}")
        assert call(server, "PUT", f"/v1/{kind}/{b}/merge", {"merge_with_id": c}).status_code == 200
    call(server, "DELETE", f"/api/v2/activities/{live['activities'][0]}")
    call(server, "PATCH", f"/api/v2/deals/{live['deals'][3]}", {"is_archived": True})
    call(server, "POST", "/v1/webhooks", {"subscription_url": "https://example.com/hook", "event_action": "*",
                                          "event_object": "*", "version": "2.0"})
    person_key = field_key(7, "person", "BANT budget")
    lead = get(server, "/v1/leads").json()["data"][0]["id"]
    changed = {"updated_since": since}
    reads: list[tuple[str, str, dict]] = []
    for kind in ("persons", "organizations", "deals", "activities"):
        variants = [{}, changed, {**changed, "sort_by": "update_time", "sort_direction": "desc"},
                    {"ids": ",".join(str(i) for i in live[kind][:4])}]
        if kind != "activities":
            variants.append({"custom_fields": person_key})
        reads += [(f"/api/v2/{kind}", f"/api/v2/{kind}", v) for v in variants]
        # One deleted moments ago, one merged away (persons, organizations, deals), the survivor.
        reads += [(f"/api/v2/{kind}/{{id}}", f"/api/v2/{kind}/{rid}", {}) for rid in live[kind][:3]]
    reads += [("/api/v2/deals", "/api/v2/deals", {"status": "deleted"}),
              ("/api/v2/deals", "/api/v2/deals", {**changed, "status": "open,won,lost,deleted"}),
              ("/api/v2/deals/archived", "/api/v2/deals/archived", {}),
              ("/api/v2/deals/archived", "/api/v2/deals/archived", changed),
              ("/api/v2/activities", "/api/v2/activities", {"done": "true"}),
              ("/api/v2/pipelines", "/api/v2/pipelines", {}), ("/api/v2/pipelines/{id}", "/api/v2/pipelines/1", {}),
              ("/api/v2/stages", "/api/v2/stages", {"pipeline_id": 1}), ("/api/v2/stages/{id}", "/api/v2/stages/1", {}),
              ("/api/v2/persons/search", "/api/v2/persons/search", {"term": "an"}),
              ("/api/v2/organizations/search", "/api/v2/organizations/search", {"term": "ab"}),
              ("/v1/users", "/v1/users", {}), ("/v1/users/me", "/v1/users/me", {}),
              ("/v1/users/{id}", "/v1/users/12000001", {}), ("/v1/leads", "/v1/leads", {}),
              ("/v1/leads/{id}", f"/v1/leads/{lead}", {}), ("/v1/webhooks", "/v1/webhooks", {}),
              ("/v1/pipelines", "/v1/pipelines", {}), ("/v1/persons", "/v1/persons", {"limit": 50})]
    for endpoint in ("personFields", "organizationFields", "dealFields"):
        first = get(server, f"/v1/{endpoint}").json()["data"][0]["id"]
        reads += [(f"/v1/{endpoint}", f"/v1/{endpoint}", {}),
                  (f"/v1/{endpoint}/{{id}}", f"/v1/{endpoint}/{first}", {})]

    served = {template for method, template in vendor.costs if method == "GET"}
    assert {template for template, _, _ in reads} == served
    problems = []
    for template, path, params in reads:
        answer = get(server, path, **params)
        assert answer.status_code == 200, (path, params, answer.text[:200])
        version, described = ("v2", template[len("/api/v2"):]) if template.startswith("/api/v2") else (
            "v1", template[len("/v1"):])
        body = answer.json()
        if template == "/v1/persons":  # custom fields by their keys, related objects by ids: not named
            body = {**{k: v for k, v in body.items() if k != "related_objects"},
                    "data": [{k: v for k, v in p.items() if not is_custom_key(k.removesuffix("_currency"))}
                             for p in body["data"]]}
        problems += [f"{path} {params}: {p}" for p in check_shape(version, "get", described, body)]
    assert problems == [], problems[:20]


def test_custom_fields_have_40_hex_keys_and_the_labels_the_mapping_names(sandbox_factory):
    server = sandbox_factory()
    catalog = FieldCatalog.from_v1(get(server, "/v1/personFields").json()["data"])
    labels = catalog.labels()
    assert {"BANT budget", "BANT timeline", "Project status", "Seniority"} <= set(labels)
    assert all(is_custom_key(k) for k in labels.values())
    orgs = FieldCatalog.from_v1(get(server, "/v1/organizationFields").json()["data"]).labels()
    assert {"Tier", "Technologies", "Website", "Industry"} <= set(orgs)
    person = get(server, "/api/v2/persons", limit=1).json()["data"][0]
    assert set(person["custom_fields"]) <= set(labels.values())


def test_token_costs_are_the_openapis(openapi):
    spec = openapi("v2")["paths"]
    assert spec["/persons"]["get"]["x-token-cost"] == S.V2_COST["list"]
    assert spec["/persons/{id}"]["get"]["x-token-cost"] == S.V2_COST["get"]
    assert spec["/persons"]["post"]["x-token-cost"] == S.V2_COST["create"]
    assert spec["/persons/{id}"]["patch"]["x-token-cost"] == S.V2_COST["update"]
    assert spec["/persons/{id}"]["delete"]["x-token-cost"] == S.V2_COST["delete"]
    assert spec["/persons/search"]["get"]["x-token-cost"] == S.V2_COST["search"]
    assert spec["/deals/archived"]["get"]["x-token-cost"] == S.V2_COST["list_archived_deals"]
    assert spec["/pipelines"]["get"]["x-token-cost"] == S.V2_COST["list_pipelines"]
    assert spec["/stages"]["get"]["x-token-cost"] == S.V2_COST["list_stages"]


# -- pagination and changes --------------------------------------------------------------------

def test_cursor_pages_cover_every_record_once_and_limit_is_capped_at_500(sandbox_factory):
    server = sandbox_factory()
    seen, cursor = [], None
    while True:
        body = get(server, "/api/v2/activities", limit=100, **({"cursor": cursor} if cursor else {})).json()
        seen += [a["id"] for a in body["data"]]
        cursor = body["additional_data"]["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(set(seen)) and len(seen) == server.vendor("pipedrive").state.counts()["activities"]
    too_big = get(server, "/api/v2/activities", limit=501)
    assert too_big.status_code == 400 and "limit" in too_big.json()["error"]


def test_updated_since_lists_changes_oldest_first(sandbox_factory, check_shape):
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    since = state.now()
    a, b = state.live_ids("persons")[:2]
    state.update("persons", b, {"job_title": "CTO"})
    state.clock = lambda: time.time() + 5
    state.update("persons", a, {"job_title": "CFO"})
    body = get(server, "/api/v2/persons", updated_since=since, sort_by="update_time").json()
    assert [p["id"] for p in body["data"]] == [b, a]
    assert check_shape("v2", "get", "/persons", body) == []
    later = get(server, "/api/v2/persons", updated_since=body["data"][1]["update_time"]).json()["data"]
    assert [p["id"] for p in later] == [a]


def test_deleted_persons_organizations_and_activities_are_in_no_list(sandbox_factory):
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    since = state.now()
    for kind in ("persons", "organizations", "activities"):
        gone, kept = state.live_ids(kind)[:2]
        assert call(server, "DELETE", f"/api/v2/{kind}/{gone}").json()["data"] == {"id": gone}
        for params in ({"limit": 500}, {"updated_since": since}, {"ids": f"{gone},{kept}"},
                       {"updated_since": since, "sort_by": "update_time"}):
            listed = {r["id"] for r in walk(server, f"/api/v2/{kind}", **params)}
            assert gone not in listed, (kind, params)
        assert kept in {r["id"] for r in get(server, f"/api/v2/{kind}", ids=f"{gone},{kept}").json()["data"]}
        assert gone not in state.live_ids(kind)


def test_deleted_deals_are_listed_only_with_status_deleted_and_for_30_days(sandbox_factory):
    server = sandbox_factory()
    state = server.vendor("pipedrive").state
    since = state.now()
    deal = state.live_ids("deals")[0]
    call(server, "DELETE", f"/api/v2/deals/{deal}")
    assert deal not in {d["id"] for d in walk(server, "/api/v2/deals")}
    assert deal not in {d["id"] for d in get(server, "/api/v2/deals", updated_since=since).json()["data"]}
    for params in ({"status": "deleted"}, {"status": "deleted", "updated_since": since}):
        listed = get(server, "/api/v2/deals", **params).json()["data"]
        assert [(d["id"], d["status"], d["is_deleted"]) for d in listed] == [(deal, "deleted", True)]
    both = {d["id"] for d in walk(server, "/api/v2/deals", status="open,won,lost,deleted")}
    assert deal in both and len(both) == len(state.live_ids("deals")) + 1
    real = state.clock
    state.clock = lambda: real() + 31 * 86_400
    assert get(server, "/api/v2/deals", status="deleted").json()["data"] == []


def test_a_merge_deletes_the_merged_away_record_and_moves_its_links_to_the_survivor(sandbox_factory):
    server = sandbox_factory(contacts=600)
    state = server.vendor("pipedrive").state
    rows = {k: state.tables[k].rows for k in ("persons", "deals", "activities")}
    with_deals = {r["person_id"] for r in rows["deals"].values()}
    loser, winner = [p for p in state.live_ids("persons") if p in with_deals][:2]
    since = state.now()
    state.clock = lambda: time.time() + 2  # the merge happens after `since`, on a later second
    merged = call(server, "PUT", f"/v1/persons/{loser}/merge", {"merge_with_id": winner})
    assert merged.status_code == 200 and merged.json()["data"]["id"] == winner
    assert loser not in {p["id"] for p in walk(server, "/api/v2/persons")}
    changed = {p["id"]: p for p in get(server, "/api/v2/persons", updated_since=since).json()["data"]}
    assert set(changed) == {winner}  # the survivor; the merged-away person is listed nowhere
    deals = get(server, "/api/v2/deals", updated_since=since, limit=500).json()["data"]
    acts = get(server, "/api/v2/activities", updated_since=since, limit=500).json()["data"]
    assert deals and {d["person_id"] for d in deals} == {winner}
    assert acts and all(a["person_id"] == winner for a in acts)
    assert all(p["person_id"] != loser for a in acts for p in a["participants"])
    assert not [r for k in ("deals", "activities") for r in rows[k].values() if r.get("person_id") == loser
                and not r["is_deleted"]]

    orgs = state.live_ids("organizations")
    org_loser = next(o for o in orgs if any(r.get("org_id") == o for r in rows["persons"].values()))
    org_winner = next(o for o in orgs if o != org_loser)
    state.clock = lambda: time.time() + 4  # past the person merge's second
    since = state.now()
    call(server, "PUT", f"/v1/organizations/{org_loser}/merge", {"merge_with_id": org_winner})
    assert {o["id"] for o in get(server, "/api/v2/organizations", updated_since=since).json()["data"]} == {
        org_winner}
    people = get(server, "/api/v2/persons", updated_since=since, limit=500).json()["data"]
    assert people and {p["org_id"] for p in people} == {org_winner}
    assert get(server, "/api/v2/persons", org_id=org_loser).json()["data"] == []


def test_archived_deals_leave_the_deal_list_for_deals_archived(sandbox_factory):
    server = sandbox_factory()
    deal = server.vendor("pipedrive").state.live_ids("deals")[0]
    call(server, "PATCH", f"/api/v2/deals/{deal}", {"is_archived": True})
    assert deal not in {d["id"] for d in get(server, "/api/v2/deals", limit=500).json()["data"]}
    archived = get(server, "/api/v2/deals/archived").json()["data"]
    assert [(d["id"], d["is_archived"]) for d in archived] == [(deal, True)]


# -- limits ------------------------------------------------------------------------------------

def test_the_burst_window_answers_429_in_pipedrives_shape_with_its_headers(sandbox_factory):
    server = sandbox_factory(time_scale=0.5, pipedrive_plan="lite")
    answers = [get(server, "/v1/users") for _ in range(21)]
    assert [a.status_code for a in answers[:20]] == [200] * 20
    ok, limited = answers[0], answers[20]
    assert ok.headers["x-ratelimit-limit"] == "20" and ok.headers["x-ratelimit-remaining"] == "19"
    assert limited.status_code == 429
    assert limited.json() == {"success": False, "error": "Request over limit", "errorCode": 429,
                              "error_info": "Please check developers.pipedrive.com for more information about "
                                            "Pipedrive API.", "data": None, "additional_data": None}
    assert limited.headers["x-ratelimit-remaining"] == "0" and float(limited.headers["x-ratelimit-reset"]) > 0
    assert int(limited.headers["Retry-After"]) >= 1  # whole seconds, as HTTP says
    assert float(limited.headers["x-ratelimit-reset"]) <= 2 / 0.5  # the window, never the day
    stats = server.vendor("pipedrive").stats()
    assert stats["rate_limited"] == 1 and stats["tokens_spent"] == 20 * S.V1_COST["list"]


def test_each_token_has_its_own_burst_window_and_oauth_tokens_a_larger_one(sandbox_factory):
    server = sandbox_factory(time_scale=0.5, pipedrive_plan="lite", tokens=("first", "second"),
                             pipedrive_oauth_tokens=["oauth"])
    url = server.base_url("pipedrive") + "/v1/users"

    def statuses(n, **headers):
        return [requests.get(url, headers=headers, timeout=5).status_code for _ in range(n)]

    assert statuses(21, **{"x-api-token": "first"})[-2:] == [200, 429]
    assert statuses(20, **{"x-api-token": "second"}) == [200] * 20  # the first token's 429 is not its
    oauth = requests.get(url, headers={"Authorization": "Bearer oauth"}, timeout=5)
    assert oauth.status_code == 200 and oauth.headers["x-ratelimit-limit"] == str(S.PLAN_BURST_OAUTH["lite"])


def test_clients_that_keep_going_after_429s_get_the_cdns_html_403(sandbox_factory):
    server = sandbox_factory(time_scale=0.5, pipedrive_burst=2, pipedrive_cdn_strikes=5)
    statuses = [get(server, "/api/v2/pipelines").status_code for _ in range(12)]
    assert statuses[:2] == [200, 200] and statuses[2:7] == [429] * 5
    banned = get(server, "/api/v2/pipelines")
    assert banned.status_code == 403 and banned.headers["Content-Type"].startswith("text/html")
    assert "<html" in banned.text.lower()
    assert server.vendor("pipedrive").stats()["cdn_refused"] >= 1


def test_search_has_its_own_window_of_ten_and_costs_twenty_tokens(sandbox_factory):
    server = sandbox_factory(time_scale=0.5, pipedrive_plan="ultimate")
    statuses = [get(server, "/api/v2/persons/search", term="an").status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    assert server.vendor("pipedrive").stats()["tokens_spent"] == 10 * S.V2_COST["search"]


def test_the_daily_token_budget_is_told_in_pipedrives_daily_headers_and_runs_out(sandbox_factory):
    server = sandbox_factory(pipedrive_daily_tokens=25, time_scale=1.0)
    answers = [get(server, "/api/v2/persons") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-daily-ratelimit-token-remaining"] for a in answers] == ["15", "5", "0", "0"]
    assert {a.headers["x-daily-ratelimit-token-limit"] for a in answers} == {"25"}
    spent = get(server, "/api/v2/persons")
    assert spent.json()["error"] == "Daily token budget exceeded"
    # The day's end is told by Retry-After; the burst window's reset stays the window's.
    assert int(spent.headers["Retry-After"]) > 80_000
    assert float(spent.headers["x-ratelimit-reset"]) <= 2


def test_a_new_day_renews_the_whole_budget():
    from crmbridge_pipedrive.sandbox.limits import TokenLimits

    now = [0.0]
    limits = TokenLimits("lite", daily_tokens=20, clock=lambda: now[0])
    assert [limits.admit(10).status for _ in range(3)] == [200, 200, 429]
    now[0] = 86_400.0 - 1
    assert limits.admit(10).headers["x-daily-ratelimit-token-remaining"] == "0"
    now[0] = 86_400.0 + 1
    renewed = limits.admit(10)
    assert renewed.status == 200 and renewed.headers["x-daily-ratelimit-token-remaining"] == "10"


def test_only_the_configured_tokens_are_accepted_and_only_the_ways_pipedrive_takes_them(sandbox_factory):
    server = sandbox_factory(tokens=("right",), pipedrive_oauth_tokens=["oauth-access"])
    url = server.base_url("pipedrive") + "/api/v2/persons"

    def status(**kw):
        return requests.get(url, timeout=5, **kw).status_code

    assert status(headers={"x-api-token": "right"}) == 200
    assert status(params={"api_token": "right"}) == 200
    assert status(headers={"Authorization": "Bearer oauth-access"}) == 200
    refused = [status(), status(headers={"x-api-token": "wrong"}), status(params={"api_token": "sandbox"}),
               status(headers={"Authorization": "Bearer right"}),  # an API token is never a Bearer token
               status(headers={"x-api-token": "oauth-access"}),  # nor an OAuth token an API token
               status(headers={"Authorization": "Bearer wrong"})]
    assert refused == [401] * 6
    body = requests.get(url, headers={"x-api-token": "wrong"}, timeout=5).json()
    assert body == {"success": False, "error": "unauthorized access", "errorCode": 401,
                    "error_info": "Please check developers.pipedrive.com for more information about Pipedrive API.",
                    "data": None, "additional_data": None}
    assert requests.get(server.base_url("pipedrive") + "/v1/users", timeout=5).status_code == 401


def test_the_default_sandbox_takes_only_the_sandbox_token(sandbox_factory):
    server = sandbox_factory()
    url = server.base_url("pipedrive") + "/api/v2/deals"
    assert requests.get(url, headers={"x-api-token": "sandbox"}, timeout=5).status_code == 200
    assert requests.get(url, headers={"x-api-token": "any-token"}, timeout=5).status_code == 401


# -- faults, determinism, overlap --------------------------------------------------------------

def test_faults_are_injected_as_configured(sandbox_factory):
    server = sandbox_factory(faults={"5xx": 1.0})
    statuses = {get(server, "/api/v2/persons").status_code for _ in range(8)}
    assert statuses <= {500, 502} and statuses
    server.vendor("pipedrive").set_faults({"429": 1.0})
    limited = get(server, "/api/v2/persons")
    assert limited.status_code == 429 and limited.json()["errorCode"] == 429
    server.vendor("pipedrive").set_faults({"timeout": 1.0})
    server.vendor("pipedrive").faults.stall_seconds = 1.0
    try:
        get_timeout = requests.get(server.base_url("pipedrive") + "/api/v2/persons", headers=H, timeout=0.2)
        raise AssertionError(f"expected a timeout, got {get_timeout.status_code}")
    except requests.Timeout:
        pass
    assert server.vendor("pipedrive").stats()["faults"] == {"5xx": 8, "429": 1, "timeout": 1}


def test_the_same_seed_renders_the_same_account_and_another_seed_another(sandbox_factory):
    one, two, other = sandbox_factory(seed=3), sandbox_factory(seed=3), sandbox_factory(seed=4)
    for path in ("/api/v2/persons", "/api/v2/activities", "/api/v2/deals", "/v1/personFields", "/v1/users"):
        assert get(one, path, limit=50).json() == get(two, path, limit=50).json(), path
    assert get(one, "/api/v2/persons").json() != get(other, "/api/v2/persons").json()
    assert field_key(3, "person", "Tier") != field_key(4, "person", "Tier")


def test_the_overlap_is_world_people_typed_differently_and_sales_only_people(sandbox_factory):
    server = sandbox_factory(contacts=600)
    vendor = server.vendor("pipedrive")
    overlap = requests.get(server.base_url("pipedrive") + "/_sandbox/overlap", timeout=5).json()
    assert overlap["persons"] and overlap["organizations"] and overlap["pipedrive_only_persons"]
    world = vendor.world
    raw_differs = 0
    for pid, index in overlap["persons"].items():
        typed = vendor.state.get("persons", int(pid))["emails"][0]["value"]
        raw_differs += typed != world.people[index].email
        assert normalise_email(typed) == world.people[index].email
    assert raw_differs > len(overlap["persons"]) // 4
    website = field_key(7, "organization", "Website")
    for oid, index in overlap["organizations"].items():
        typed = vendor.state.get("organizations", int(oid))["custom_fields"][website]
        assert normalise_domain(typed) == world.companies[index].domain
    world_emails = {p.email for p in world.people}
    for pid in overlap["pipedrive_only_persons"]:
        typed = vendor.state.get("persons", pid)["emails"][0]["value"]
        assert normalise_email(typed) not in world_emails
    assert len(overlap["persons"]) + len(overlap["pipedrive_only_persons"]) == vendor.state.counts()["persons"]


def test_activities_and_users_carry_what_sales_ops_needs(sandbox_factory):
    server = sandbox_factory(contacts=600)
    activities = get(server, "/api/v2/activities", limit=500).json()["data"]
    assert {a["type"] for a in activities} >= {"call", "meeting", "email", "task"}
    done = [a for a in activities if a["done"]]
    assert done and all(a["marked_as_done_time"] for a in done)
    assert any(not a["done"] and a["marked_as_done_time"] is None for a in activities)
    users = get(server, "/v1/users").json()["data"]
    assert {u["active_flag"] for u in users} == {True, False}
    assert all(u["timezone_name"] for u in users)


def test_touch_control_route_and_reset(sandbox_factory):
    server = sandbox_factory()
    vendor = server.vendor("pipedrive")
    since = vendor.state.now()
    touched = requests.post(server.base_url("pipedrive") + "/_sandbox/touch", json={"kind": "deals", "count": 4},
                            timeout=5).json()["touched"]
    assert len(touched) == 4
    changed = get(server, "/api/v2/deals", updated_since=since).json()["data"]
    assert sorted(d["id"] for d in changed) == sorted(touched)
    vendor.reset()
    assert get(server, "/api/v2/deals", updated_since=since).json()["data"] == []
    assert vendor.stats()["total_calls"] == 1


# -- parameters that work as Pipedrive's or fail as Pipedrive's ---------------------------------

def test_more_than_100_ids_is_a_400_not_a_silent_cut(sandbox_factory):
    server = sandbox_factory(contacts=50)
    ids = ",".join(str(i) for i in range(1, 102))
    answer = get(server, "/api/v2/persons", ids=ids)
    assert answer.status_code == 400 and "A maximum of 100 ids" in answer.json()["error"]
    assert get(server, "/api/v2/persons", ids=ids.rsplit(",", 1)[0]).status_code == 200


def test_filter_id_names_a_saved_filter_the_account_does_not_have(sandbox_factory):
    server = sandbox_factory(contacts=50)
    missing = get(server, "/api/v2/deals", filter_id=7)
    assert missing.status_code == 404 and missing.json()["error"] == "Filter with id 7 not found"
    assert get(server, "/api/v2/deals", filter_id="seven").status_code == 400


def test_a_fractional_updated_since_is_compared_exactly_not_cut_to_the_second(sandbox_factory):
    server = sandbox_factory(contacts=50)
    state = server.vendor("pipedrive").state
    person = state.live_ids("persons")[0]
    stamp = state.update("persons", person, {"name": "Ada Changed"})["update_time"]  # whole seconds
    at = {p["id"] for p in get(server, "/api/v2/persons", updated_since=stamp).json()["data"]}
    after = {p["id"] for p in get(server, "/api/v2/persons",
                                  updated_since=stamp.replace("Z", ".5Z")).json()["data"]}
    before = {p["id"] for p in get(server, "/api/v2/persons",
                                   updated_until=stamp.replace("Z", ".5Z")).json()["data"]}
    assert person in at and person not in after and person in before
