"""The board's HTTP routes: the page, the fragment it polls, its static files and the JSON API, all behind
the dashboard token.

Credentials are the token as ``Authorization: Bearer``, or a session cookie the browser receives by opening
``/dashboard?token=…`` once. The cookie holds an HMAC of the token, not the token, so it is the same on
every replica and stops working when the token is rotated. Times on the page are UTC, marked as such, in
``<time datetime>`` elements that carry the exact instant.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import mimetypes
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader

from crmbridge.dashboard import model
from crmbridge.logs import get_logger, register_secret

log = get_logger("crmbridge.dashboard")

TOKEN_SETTING = "CRMBRIDGE_DASHBOARD_TOKEN"
SESSION_COOKIE = "crmbridge_dashboard"
SESSION_DAYS = 30  # a wall screen should survive a reboot; rotating the token ends every session at once
REFRESH_SECONDS = 2.0
DISABLED = f"the dashboard is disabled until {TOKEN_SETTING} is set"
STATIC_PREFIX = "/dashboard/static"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DashboardAuth:
    """Checks a request's credentials against the configured token, in constant time."""

    _SESSION_LABEL = b"crmbridge.dashboard.session.v1"

    def __init__(self, token: str | None) -> None:
        self.enabled = bool(token)
        secret = (token or "").encode()
        register_secret(token)
        # Both sides are hashed first so that the comparison takes as long whatever the length presented.
        self._token_digest = hashlib.sha256(secret).digest()
        self.session_value = hmac.new(secret, self._SESSION_LABEL, hashlib.sha256).hexdigest()

    def token_matches(self, presented: str) -> bool:
        if not self.enabled:
            return False
        return hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), self._token_digest)

    def session_matches(self, presented: str) -> bool:
        return self.enabled and hmac.compare_digest(presented.encode(), self.session_value.encode())

    def refusal(self, request: web.Request) -> str | None:
        """Why the request may not see the board, or None when it may."""
        if not self.enabled:
            return DISABLED
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return None if self.token_matches(credentials.strip()) else "the bearer token is not valid"
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return None if self.session_matches(cookie) else "the session has expired; open the dashboard link again"
        return "sign in with the dashboard link, or send Authorization: Bearer <token>"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("crmbridge.dashboard", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(
        utc=_utc_text, iso=model.iso_utc, duration=model.duration_text, pct=_pct, used=_used, minutes=_minutes,
        colour=model.colour, status_text=model.status_text, time_left=_time_left, link=_safe_link,
    )
    return env


def _utc_text(moment: datetime) -> str:
    return model.iso_utc(moment)[:16].replace("T", " ") + " UTC"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} %"


def _used(value: float) -> str:
    # Rounded down, so that 74.9 % (green) never reads as 75 % (where amber starts).
    return f"{math.floor(value)} %"


def _minutes(value: float | None) -> str:
    return "—" if value is None else model.duration_text(round(value))


def _time_left(row: model.HandoffRow) -> str:
    left = row.business_minutes_left
    if left >= 0:
        return model.duration_text(left)
    return f"{model.duration_text(math.ceil(-left))} over"


def _safe_link(url: str | None) -> str | None:
    """Only web addresses become links: a ``javascript:`` URL from a CRM field would run on the board."""
    if url and url.lower().startswith(("https://", "http://")):
        return url
    return None


def _static_files() -> dict[str, Path]:
    folder = resources.files("crmbridge.dashboard") / "static"
    return {entry.name: Path(str(entry)) for entry in folder.iterdir() if entry.is_file()}


class Dashboard:
    """The board for one snapshot source and one token."""

    def __init__(self, source: model.SnapshotSource, token: str | None, *,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.source = source
        self.auth = DashboardAuth(token)
        self.refresh_seconds = refresh_seconds
        self.env = _environment()
        self.static = _static_files()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/dashboard", self.page),
            web.get("/dashboard/fragment", self._guarded(self.fragment, json=False)),
            web.get(STATIC_PREFIX + "/{name}", self._guarded(self.static_file, json=False)),
            web.get("/api/sla", self._guarded(self.api_sla, json=True)),
            web.get("/api/handoffs", self._guarded(self.api_handoffs, json=True)),
        ]

    def _guarded(self, handler: Handler, *, json: bool) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            reason = self.auth.refusal(request)
            if reason is not None:
                return self._refuse(request, reason, json=json)
            return await handler(request)

        return guarded

    async def page(self, request: web.Request) -> web.StreamResponse:
        if "token" in request.query:
            return self._sign_in(request, request.query["token"])
        reason = self.auth.refusal(request)
        if reason is not None:
            return self._refuse(request, reason, json=False)
        snapshot = await self._snapshot()
        if snapshot is None:
            return self._html("unavailable.html", status=503)
        return self._html("page.html", snapshot=snapshot, **self._board(snapshot))

    async def fragment(self, _: web.Request) -> web.StreamResponse:
        snapshot = await self._snapshot()
        if snapshot is None:
            return self._html("unavailable.html", status=503)
        return self._html("board.html", snapshot=snapshot, **self._board(snapshot))

    async def api_sla(self, _: web.Request) -> web.StreamResponse:
        data = await self._json_snapshot()
        if data is None:
            return _json_error(503, "the SLA figures could not be read; try again shortly")
        return _json({k: data[k] for k in ("generated_at", "counts", "owners", "funnel", "surges")})

    async def api_handoffs(self, _: web.Request) -> web.StreamResponse:
        data = await self._json_snapshot()
        if data is None:
            return _json_error(503, "the SLA figures could not be read; try again shortly")
        return _json({"generated_at": data["generated_at"], "handoffs": data["handoffs"]})

    async def static_file(self, request: web.Request) -> web.StreamResponse:
        path = self.static.get(request.match_info["name"])  # only the package's own files, by exact name
        if path is None:
            raise web.HTTPNotFound()
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        headers = {"Content-Type": kind, "Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"}
        return web.FileResponse(path, headers=headers)

    def _sign_in(self, request: web.Request, presented: str) -> web.StreamResponse:
        if not self.auth.enabled:
            return self._refuse(request, DISABLED, json=False)
        if not self.auth.token_matches(presented):
            return self._refuse(request, "this dashboard link is not valid", json=False)
        # A redirect, so the token leaves the address bar (and the history) for the cookie.
        response = web.Response(status=303, headers={**_NO_STORE, "Location": "/dashboard"})
        response.set_cookie(SESSION_COOKIE, self.auth.session_value, max_age=SESSION_DAYS * 86400, path="/",
                            httponly=True, samesite="Strict", secure=request.secure)
        log.info("dashboard.signed_in")
        return response

    def _refuse(self, request: web.Request, reason: str, *, json: bool) -> web.StreamResponse:
        log.info("dashboard.refused", path=request.path, reason=reason)
        headers = {"WWW-Authenticate": 'Bearer realm="crmbridge dashboard"'}
        if json:
            response = _json_error(401, reason)
        else:
            # A Strict cookie is withheld from a navigation that started on another site (a link in chat or
            # e-mail), so a browser that holds a valid session gets one retry started from this origin.
            retry = request.headers.get("Sec-Fetch-Site") == "cross-site" and request.path == "/dashboard"
            response = self._html("unauthorized.html", status=401, reason=reason, retry=retry)
        response.headers.update(headers)
        return response

    async def _snapshot(self) -> model.Snapshot | None:
        try:
            return await asyncio.to_thread(self.source.snapshot)
        except Exception as exc:  # the store may be down; the board says so instead of answering 500
            log.error("dashboard.snapshot_failed", error=type(exc).__name__)
            return None

    async def _json_snapshot(self) -> dict[str, Any] | None:
        snapshot = await self._snapshot()
        return None if snapshot is None else model.as_json(snapshot)

    def _board(self, snapshot: model.Snapshot) -> dict[str, Any]:
        return {"rows": model.board_order(snapshot.rows), "counts": model.counts_by_status(snapshot.rows),
                "statuses": model.STATUSES, "funnel": _funnel_steps(snapshot.funnel),
                "refresh_seconds": self.refresh_seconds}

    def _html(self, template: str, *, status: int = 200, **context: Any) -> web.Response:
        body = self.env.get_template(template).render(**context)
        return web.Response(text=body, status=status, content_type="text/html", headers={**_NO_STORE, **_PAGE})


_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_PAGE = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _funnel_steps(funnel: model.Funnel) -> list[dict[str, Any]]:
    """Each stage with its share of the stage before, which is what a manager reads a funnel for."""
    names = [("Leads", funnel.leads), ("MQLs", funnel.mqls), ("SQLs", funnel.sqls), ("Hand-offs", funnel.handoffs),
             ("Touched", funnel.touched), ("Meetings", funnel.meetings), ("Won", funnel.won)]
    steps: list[dict[str, Any]] = []
    previous: int | None = None
    for name, count in names:
        share = None if not previous else 100.0 * count / previous
        steps.append({"name": name, "count": count, "share": share})
        previous = count
    return steps


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=_NO_STORE)


def _json_error(status: int, message: str) -> web.Response:
    return _json({"status": "error", "message": message}, status=status)


def dashboard_routes(source: model.SnapshotSource, token: str | None, *,
                     refresh_seconds: float = REFRESH_SECONDS) -> list[web.RouteDef]:
    """The board's routes for ``app.add_routes``: ``/dashboard``, its fragment and static files, ``/api/sla``
    and ``/api/handoffs``. Without a token every one of them answers 401 saying how to enable it."""
    return Dashboard(source, token, refresh_seconds=refresh_seconds).routes()
