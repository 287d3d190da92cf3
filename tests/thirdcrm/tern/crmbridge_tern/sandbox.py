"""Tern's API as a loopback fake: the shared seeded world rendered into Tern's shapes, behind an API key.

Tern is a small, made-up CRM: users, companies, people and events (form submissions and page views),
and deals in one pipeline. Records are flat JSON objects with string ids; lists page by ``after`` (the
last id seen) and ``limit`` (at most ``tern_page_size``); ``updated_since`` (epoch ms) selects changes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from crmbridge.connectors import SandboxOptions
from crmbridge.sandbox.stats import SandboxStats
from crmbridge.sandbox.world import FORM_SUBMISSION, PAGE_VIEW, World, generate_world, parse_anchor

STREAMS = ("users", "companies", "people", "events")
DEFAULT_PAGE_SIZE = 50
KEY_HEADER = "X-Tern-Key"


class TernAccount:
    """One Tern account in memory: what the API serves and what a test reads back."""

    def __init__(self, world: World) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {s: {} for s in (*STREAMS, "deals")}
        self.stages: dict[str, str] = {"1": "New", "2": "Won"}
        self.fields: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1_000_000)
        self._render(world)

    def _render(self, world: World) -> None:
        at = world.anchor_ms
        for o in world.owners:
            self._put("users", str(o.index + 1), email=o.email, first_name=o.first_name, last_name=o.last_name,
                      active=o.active, updated_ms=o.created_ms)
        for c in world.companies:
            self._put("companies", str(c.index + 1), name=c.name, domain=c.domain, industry=c.industry,
                      employees=c.employees, owner_id=str(c.owner + 1) if c.owner >= 0 else None,
                      updated_ms=c.updated_ms)
        for p in world.people:
            self._put("people", str(p.index + 1), email=p.email, first_name=p.first_name, last_name=p.last_name,
                      title=p.title, seniority=p.seniority, company_id=str(p.company + 1) if p.company >= 0 else None,
                      owner_id=str(p.owner + 1) if p.owner >= 0 else None, stage=p.lifecycle.value,
                      updated_ms=p.updated_ms)
        b = world.behaviours
        for i in range(len(b)):
            if b.kind[i] == FORM_SUBMISSION:
                what = {"type": "form", "form": world.forms[b.ref[i]].name}
            elif b.kind[i] == PAGE_VIEW:
                what = {"type": "page", "url": world.pages[b.ref[i]].url}
            else:
                continue
            self._put("events", str(i + 1), person_id=str(b.person[i] + 1), at_ms=min(b.at_ms[i], at),
                      updated_ms=b.at_ms[i], **what)

    def _put(self, stream: str, record_id: str, **values: Any) -> dict[str, Any]:
        record = {"id": record_id, **values}
        self.records[stream][record_id] = record
        return record

    def new_id(self) -> str:
        return str(next(self._ids))

    def page(self, stream: str, after: int, limit: int, since: int | None) -> dict[str, Any]:
        rows = sorted((r for r in self.records[stream].values()
                       if int(r["id"]) > after and (since is None or int(r.get("updated_ms") or 0) >= since)),
                      key=lambda r: int(r["id"]))
        chunk = rows[:limit]
        more = len(rows) > limit
        return {"data": chunk, "next_after": chunk[-1]["id"] if more else None,
                "total": len(self.records[stream])}

    @property
    def deals(self) -> list[dict[str, Any]]:
        return list(self.records["deals"].values())


def _now_ms() -> int:
    return int(time.time() * 1000)


class TernSandbox:
    """``crmbridge.sandbox.VendorSandbox`` for Tern; options read from ``SandboxOptions.extra``:
    ``tern_page_size`` (the largest page a list answers)."""

    name = "tern"

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.page_size = int(options.extra.get("tern_page_size", DEFAULT_PAGE_SIZE))
        self._stats = SandboxStats()
        self.account = self._seeded()
        self.app = web.Application(middlewares=[self._gate])
        self._routes()

    def _seeded(self) -> TernAccount:
        extra = self.options.extra
        return TernAccount(generate_world(self.options.seed, self.options.contacts, parse_anchor(extra.get("anchor"))))

    def stats(self) -> dict[str, Any]:
        return self._stats.snapshot()

    def reset(self) -> None:
        self.account = self._seeded()
        self._stats.reset()

    def set_faults(self, rates: Mapping[str, float]) -> None:
        """Tern's fake has no faults to inject; the protocol asks for the method."""

    @web.middleware
    async def _gate(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if request.headers.get(KEY_HEADER) not in self.options.tokens:
            return web.json_response({"error": "unknown API key"}, status=401)
        resource = request.match_info.route.resource
        self._stats.call(f"{request.method} {resource.canonical if resource else request.path}")
        return await handler(request)

    def _routes(self) -> None:
        r = self.app.router
        r.add_get("/v1/stages", self._stages)
        r.add_post("/v1/stages", self._add_stage)
        r.add_get("/v1/fields", self._fields)
        r.add_post("/v1/fields", self._add_field)
        r.add_post("/v1/people/update", self._update_people)
        r.add_post("/v1/people", self._add_person)
        r.add_get("/v1/deals", self._list_deals)
        r.add_post("/v1/deals", self._add_deal)
        r.add_post("/v1/deals/update", self._update_deals)
        r.add_get("/v1/{stream}", self._list)
        r.add_post("/v1/{stream}/read", self._read)

    async def _list(self, request: web.Request) -> web.Response:
        stream = request.match_info["stream"]
        if stream not in STREAMS:
            return web.json_response({"error": f"no such object {stream!r}"}, status=404)
        q = request.query
        try:
            limit = min(int(q.get("limit", self.page_size)), self.page_size)
            after = int(q.get("after", 0))
            since = int(q["updated_since"]) if "updated_since" in q else None
        except ValueError:
            return web.json_response({"error": "limit, after and updated_since are integers"}, status=400)
        return web.json_response(self.account.page(stream, after, limit, since))

    async def _read(self, request: web.Request) -> web.Response:
        stream = request.match_info["stream"]
        ids = (await request.json()).get("ids") or []
        held = self.account.records.get(stream, {})
        return web.json_response({"data": [held[i] for i in ids if i in held],
                                  "missing": [i for i in ids if i not in held]})

    async def _stages(self, _: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": k, "name": v} for k, v in self.account.stages.items()]})

    async def _add_stage(self, request: web.Request) -> web.Response:
        name = str((await request.json())["name"])
        stage_id = self.account.new_id()
        self.account.stages[stage_id] = name
        return web.json_response({"id": stage_id, "name": name}, status=201)

    async def _fields(self, _: web.Request) -> web.Response:
        return web.json_response({"data": list(self.account.fields.values())})

    async def _add_field(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = f"{body['object']}.{body['key']}"
        self.account.fields.setdefault(key, dict(body))
        return web.json_response(self.account.fields[key], status=201)

    async def _update_people(self, request: web.Request) -> web.Response:
        updated, errors = [], {}
        people = self.account.records["people"]
        for item in (await request.json())["updates"]:
            record = people.get(str(item["id"]))
            if record is None:
                errors[str(item["id"])] = "no such person"
                continue
            record.update(item["fields"], updated_ms=_now_ms())
            updated.append(record["id"])
        return web.json_response({"updated": updated, "errors": errors})

    async def _add_person(self, request: web.Request) -> web.Response:
        body = await request.json()
        record = self.account._put("people", self.account.new_id(), **body, updated_ms=_now_ms())
        return web.json_response(record, status=201)

    async def _list_deals(self, _: web.Request) -> web.Response:
        return web.json_response({"data": self.account.deals})

    async def _add_deal(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = (body.get("fields") or {}).get("cb_handoff_key")
        same = next((d for d in self.account.deals if key and (d.get("fields") or {}).get("cb_handoff_key") == key),
                    None)
        if same is not None:  # Tern keeps the hand-off key unique, as a unique custom field would
            return web.json_response({"error": "duplicate hand-off key", "id": same["id"]}, status=409)
        if body.get("stage_id") not in self.account.stages:
            return web.json_response({"error": "no such stage"}, status=400)
        record = self.account._put("deals", self.account.new_id(), **body, status="open", updated_ms=_now_ms())
        return web.json_response(record, status=201)

    async def _update_deals(self, request: web.Request) -> web.Response:
        updated, errors = [], {}
        deals = self.account.records["deals"]
        for item in (await request.json())["updates"]:
            deal = deals.get(str(item["id"]))
            if deal is None:
                errors[str(item["id"])] = "no such deal"
                continue
            fields = dict(item.get("fields") or {})
            if "owner_id" in fields:
                deal["owner_id"] = fields.pop("owner_id")
            deal["fields"] = {**(deal.get("fields") or {}), **fields}
            updated.append(deal["id"])
        return web.json_response({"updated": updated, "errors": errors})
