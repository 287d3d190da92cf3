"""The board over HTTP: who gets in (token, session cookie) and what everyone else is told, the JSON API
against the snapshot, and what a hostile CRM field can and cannot do to the page."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from dashboard_helpers import TOKEN, MutableSource, board_app, breached, row, snapshot

from crmbridge.dashboard import as_json
from crmbridge.dashboard.views import SESSION_COOKIE
from crmbridge.logs import configure

ROUTES = ["/dashboard", "/dashboard/fragment", "/dashboard/static/htmx.min.js", "/api/sla", "/api/handoffs"]
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def run(source: MutableSource, scenario: Callable[[TestClient], Awaitable[Any]], token: str | None = TOKEN) -> Any:
    async def go() -> Any:
        async with TestClient(TestServer(board_app(source, token), host="127.0.0.1")) as client:
            return await scenario(client)

    return asyncio.run(go())


async def _statuses(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, int]:
    answers = {}
    for path in ROUTES:
        async with client.get(path, headers=headers or {}, allow_redirects=False) as response:
            answers[path] = response.status
    return answers


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer"},
    {"Cookie": f"{SESSION_COOKIE}={TOKEN}"},  # the token itself is not a session
    {"Cookie": f"{SESSION_COOKIE}=forged"},
], ids=["none", "wrong", "longer", "basic", "empty", "token-as-cookie", "forged-cookie"])
def test_every_route_refuses_a_visitor_without_valid_credentials(source, headers):
    assert run(source, lambda c: _statuses(c, headers)) == dict.fromkeys(ROUTES, 401)
    assert source.calls == 0  # nothing was computed for them


def test_refusals_are_json_for_the_api_and_a_page_for_the_browser(source):
    async def scenario(client: TestClient) -> tuple[Any, str, str]:
        api = await (await client.get("/api/sla")).json()
        page = await client.get("/dashboard")
        return api, page.content_type, await page.text()

    api, kind, page = run(source, scenario)
    assert api == {"status": "error",
                   "message": "sign in with the dashboard link, or send Authorization: Bearer <token>"}
    assert kind == "text/html"
    assert "Not signed in" in page and "?token=" in page


@pytest.mark.parametrize("token", [None, ""])
def test_without_a_configured_token_every_route_says_the_dashboard_is_disabled(source, token):
    async def scenario(client: TestClient) -> tuple[dict[str, int], Any, str, int]:
        statuses = await _statuses(client, {"Authorization": "Bearer anything"})
        api = await (await client.get("/api/handoffs")).json()
        link = await client.get("/dashboard", params={"token": ""}, allow_redirects=False)
        return statuses, api, await link.text(), link.status

    statuses, api, page, link_status = run(source, scenario, token=token)
    assert statuses == dict.fromkeys(ROUTES, 401) and link_status == 401
    assert api["message"] == "the dashboard is disabled until CRMBRIDGE_DASHBOARD_TOKEN is set"
    assert "CRMBRIDGE_DASHBOARD_TOKEN" in page


def test_bearer_token_opens_every_route(source):
    assert run(source, lambda c: _statuses(c, BEARER)) == dict.fromkeys(ROUTES, 200)


def test_dashboard_link_trades_the_token_for_a_session_cookie_and_leaves_the_address_bar(source):
    async def scenario(client: TestClient) -> tuple[Any, ...]:
        link = await client.get("/dashboard", params={"token": TOKEN}, allow_redirects=False)
        followed = await _statuses(client)  # the client's cookie jar now holds the session
        return link.status, link.headers["Location"], link.headers.getall("Set-Cookie"), followed

    status, location, cookies, followed = run(source, scenario)
    assert status == 303 and location == "/dashboard"
    [cookie] = cookies
    value = re.match(rf"{SESSION_COOKIE}=([^;]+);", cookie).group(1)
    assert TOKEN not in cookie and len(value) == 64
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert followed == dict.fromkeys(ROUTES, 200)


def test_a_wrong_dashboard_link_sets_no_cookie(source):
    async def scenario(client: TestClient) -> tuple[int, list[str], str]:
        link = await client.get("/dashboard", params={"token": "guess"}, allow_redirects=False)
        return link.status, link.headers.getall("Set-Cookie", []), await link.text()

    status, cookies, page = run(source, scenario)
    assert status == 401 and cookies == []
    assert "This dashboard link is not valid" in page


def test_the_token_is_never_accepted_from_the_query_of_the_api(source):
    async def scenario(client: TestClient) -> int:
        return (await client.get("/api/sla", params={"token": TOKEN})).status

    assert run(source, scenario) == 401


def test_the_token_never_appears_in_the_logs(source, capsys):
    async def scenario(client: TestClient) -> None:
        await client.get("/dashboard", params={"token": TOKEN}, allow_redirects=False)
        await client.get("/dashboard", params={"token": TOKEN + "-wrong"}, allow_redirects=False)
        await client.get("/api/sla", headers={"Authorization": f"Bearer {TOKEN}-wrong"})

    configure("DEBUG", "json")
    try:
        run(source, scenario)
    finally:
        configure("WARNING", "console")
    logged = capsys.readouterr().err
    assert "dashboard.signed_in" in logged and "dashboard.refused" in logged
    assert TOKEN not in logged


def test_a_link_opened_from_another_site_retries_once_from_the_board_itself(source):
    """Browsers withhold a SameSite=Strict cookie from a navigation that began on another site (a link in
    chat or e-mail), so that refusal page reloads once from this origin, where the cookie is sent."""
    async def scenario(client: TestClient) -> tuple[str, str]:
        cross = await client.get("/dashboard", headers={"Sec-Fetch-Site": "cross-site"})
        same = await client.get("/dashboard", headers={"Sec-Fetch-Site": "same-origin"})
        return await cross.text(), await same.text()

    cross, same = run(source, scenario)
    assert 'http-equiv="refresh"' in cross
    assert 'http-equiv="refresh"' not in same  # a refusal from this origin is final: no loop


def test_api_answers_are_the_snapshot(source):
    snap = snapshot(rows=[row(), breached(row("h-2", person="Linus"))])
    source.set(snap)

    async def scenario(client: TestClient) -> tuple[Any, Any]:
        sla = await (await client.get("/api/sla", headers=BEARER)).json()
        handoffs = await (await client.get("/api/handoffs", headers=BEARER)).json()
        return sla, handoffs

    sla, handoffs = run(source, scenario)
    expected = as_json(snap)
    assert sla == {k: expected[k] for k in ("generated_at", "counts", "owners", "funnel", "surges")}
    assert sla["counts"] == {"breached": 1, "at_risk": 0, "on_track": 1, "paused": 0, "met": 0}
    assert handoffs == {"generated_at": "2025-03-04T14:30:00Z", "handoffs": expected["handoffs"]}
    assert [h["status_text"] for h in handoffs["handoffs"]] == ["on track", "breached — 35 min over"]


def test_page_shows_each_row_with_its_colour_and_its_words(source):
    source.set(snapshot(rows=[row(), breached(row("h-2")), row("h-3", status="paused")]))

    async def scenario(client: TestClient) -> str:
        return await (await client.get("/dashboard", headers=BEARER)).text()

    page = run(source, scenario)
    cells = re.findall(r'<td class="status status--(\w+)"><span class="swatch" aria-hidden="true"></span>([^<]+)', page)
    assert [(c, t.strip()) for c, t in cells] == [
        ("red", "breached — 35 min over"), ("green", "on track"), ("grey", "paused — outside working hours")]
    assert '<time datetime="2025-03-04T15:24:00Z">2025-03-04 15:24 UTC</time>' in page
    assert 'hx-get="/dashboard/fragment"' in page and 'hx-trigger="every 2s"' in page


def test_page_loads_nothing_from_outside_the_daemon(source):
    async def scenario(client: TestClient) -> str:
        return await (await client.get("/dashboard", headers=BEARER)).text()

    page = run(source, scenario)
    assert re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page) == [
        "/dashboard/static/favicon.svg", "/dashboard/static/dashboard.css", "/dashboard/static/htmx.min.js",
        "/dashboard/static/dashboard.js"]


def test_a_person_named_like_a_script_tag_is_shown_as_text(source):
    source.set(snapshot(rows=[row(person="<script>alert(1)</script>", company='"><img src=x onerror=alert(2)>',
                                  deal_url="javascript:alert(3)")]))

    async def scenario(client: TestClient) -> tuple[str, str]:
        page = await (await client.get("/dashboard", headers=BEARER)).text()
        fragment = await (await client.get("/dashboard/fragment", headers=BEARER)).text()
        return page, fragment

    for html in run(source, scenario):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "javascript:" not in html  # not a link at all


def test_static_files_are_the_packages_own_and_nothing_else(source):
    async def scenario(client: TestClient) -> tuple[Any, ...]:
        htmx = await client.get("/dashboard/static/htmx.min.js", headers=BEARER)
        missing = await client.get("/dashboard/static/nope.js", headers=BEARER)
        escape = await client.get("/dashboard/static/..%2Fviews.py", headers=BEARER)
        return htmx.status, htmx.content_type, (await htmx.read())[:40], missing.status, escape.status

    status, kind, head, missing, escape = run(source, scenario)
    assert status == 200 and kind in ("application/javascript", "text/javascript")
    assert head.startswith(b"var htmx=function()")
    assert missing == 404 and escape == 404


def test_a_store_that_fails_gives_503_with_a_message_never_500(source):
    source.failure = OSError("database is locked")

    async def scenario(client: TestClient) -> dict[str, int]:
        return await _statuses(client, BEARER)

    statuses = run(source, scenario)
    assert statuses == {"/dashboard": 503, "/dashboard/fragment": 503, "/dashboard/static/htmx.min.js": 200,
                        "/api/sla": 503, "/api/handoffs": 503}


def test_nothing_on_the_board_is_cached_by_the_browser_or_leaked_by_referrer(source):
    async def scenario(client: TestClient) -> Any:
        return (await client.get("/dashboard", headers=BEARER)).headers

    headers = run(source, scenario)
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
