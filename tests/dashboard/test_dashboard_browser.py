"""The board in a real browser: it signs in from the dashboard link, and a hand-off that breaches turns red,
with its words, on the open page without a reload."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from aiohttp import web
from dashboard_helpers import TOKEN, MutableSource, board_app, breached, row, serve, snapshot

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it in .ci/run)")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"




def test_breach_turns_the_open_board_red_without_a_reload(browser, tmp_path: Path):
    from playwright.sync_api import expect

    source = MutableSource(snapshot(rows=[row("h-1", person="Ada Lovelace")]))
    with serve(board_app(source, refresh_seconds=0.5)) as base:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))

        page.goto(f"{base}/dashboard?token={TOKEN}")
        assert page.url == f"{base}/dashboard"  # the token left the address bar
        status = page.locator('tr[data-key="h-1"] td.status')
        expect(status).to_have_text("on track")
        expect(status).to_have_class(re.compile(r"\bstatus--green\b"))
        page.evaluate("window.__marker = 1")

        source.set(snapshot(rows=[breached(row("h-1", person="Ada Lovelace"))]))
        expect(status).to_have_text(re.compile(r"^breached — 35 min over"), timeout=10_000)
        expect(status).to_have_class(re.compile(r"\bstatus--red\b"))
        expect(page.locator('li[data-status="breached"] strong')).to_have_text("1")
        assert page.evaluate("window.__marker") == 1  # the same document: refreshed in place, not reloaded

        shot = tmp_path / "board.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > len(PNG_SIGNATURE)
        assert shot.read_bytes().startswith(PNG_SIGNATURE)
        assert problems == []  # no script error, no Content-Security-Policy violation


def test_board_says_so_when_live_updates_stop(browser):
    from playwright.sync_api import expect

    source = MutableSource(snapshot())
    with serve(board_app(source, refresh_seconds=0.5)) as base:
        page = browser.new_page()
        page.goto(f"{base}/dashboard?token={TOKEN}")
        expect(page.locator('tr[data-key="h-1"] td.status')).to_have_text("on track")
        source.failure = OSError("database is locked")
        expect(page.locator("#connection")).to_have_text(re.compile("Live updates paused"), timeout=10_000)
        source.failure = None
        expect(page.locator("#connection")).to_be_hidden(timeout=10_000)


def test_dashboard_link_clicked_on_another_site_ends_on_the_board(browser):
    """Chat and e-mail links are cross-site navigations, which do not carry SameSite=Strict cookies."""
    source = MutableSource(snapshot())
    with serve(board_app(source)) as base:
        link = f"{base}/dashboard?token={TOKEN}"

        async def chat(_: web.Request) -> web.Response:
            return web.Response(text=f'<a id="link" href="{link}">board</a>', content_type="text/html")

        other_site = web.Application()
        other_site.router.add_get("/", chat)
        with serve(other_site, host="localhost") as chat_base:  # localhost and 127.0.0.1 are different sites
            page = browser.new_page()
            page.goto(chat_base)
            page.click("#link")
            page.wait_for_url(f"{base}/dashboard")
            page.locator('tr[data-key="h-1"]').wait_for(timeout=10_000)
            assert page.title().startswith("Hand-off SLA board")


def test_board_signed_out_by_a_new_token_says_so_and_stops_asking(browser):
    from playwright.sync_api import expect

    source = MutableSource(snapshot())
    with serve(board_app(source, refresh_seconds=0.3)) as base:
        page = browser.new_page()
        page.goto(f"{base}/dashboard?token={TOKEN}")
        expect(page.locator('tr[data-key="h-1"] td.status')).to_have_text("on track")
        page.context.clear_cookies()  # as when the token is rotated and the session no longer matches
        expect(page.locator("#connection")).to_have_text(re.compile("Signed out"), timeout=10_000)
        fragments: list[str] = []
        page.on("request", lambda r: fragments.append(r.url) if r.url.endswith("/fragment") else None)
        page.wait_for_timeout(1_500)  # five polling periods
        assert fragments == []
        expect(page.locator('tr[data-key="h-1"] td.status')).to_have_text("on track")  # last figures kept
