"""Tern's client side: a ``Connector`` (pages of raw records), its ``Writer`` and its webhook verifier.

Written only against crmbridge's public protocols (``crmbridge.connectors``, ``crmbridge.writeback.contract``),
as a third-party package would be.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from crmbridge.connectors import (
    ApiUsage,
    Page,
    RawRecord,
    StreamSpec,
    StreamState,
    WebhookEvent,
    WebhookRejected,
    WebhookRequest,
)
from crmbridge.errors import ConfigError
from crmbridge.model import EntityType
from crmbridge.writeback.contract import (
    DealDraft,
    DealRef,
    DealUpdate,
    PersonDraft,
    PersonUpdate,
    Provisioned,
    ProvisionSpec,
    ProvisionStep,
    WriteResult,
    create_each,
)

KEY_HEADER = "X-Tern-Key"
PAGE_SIZE = 50
LOOKBACK_MS = 60_000
SPECS = (StreamSpec("users", EntityType.OWNER, PAGE_SIZE), StreamSpec("companies", EntityType.COMPANY, PAGE_SIZE),
         StreamSpec("people", EntityType.PERSON, PAGE_SIZE), StreamSpec("events", EntityType.ACTIVITY, PAGE_SIZE))
ASSOCIATIONS = {"people": {"company_id": "companies"}, "events": {"person_id": "people"}}


class TernError(Exception):
    """An answer Tern refused with."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        self.status, self.body = status, body
        super().__init__(f"Tern answered {status}: {body.get('error')}")


class TernClient:
    """JSON over HTTP to one Tern account, counting calls per endpoint."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url, self.api_key = base_url.rstrip("/"), api_key
        self.calls: Counter[str] = Counter()

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        self.calls[f"{method} {path}"] += 1
        url = f"{self.base_url}{path}"
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={KEY_HEADER: self.api_key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise TernError(exc.code, json.loads(exc.read() or b"{}")) from None


def _record(stream: str, row: Mapping[str, Any]) -> RawRecord:
    links = {target: [str(row[prop])] for prop, target in ASSOCIATIONS.get(stream, {}).items() if row.get(prop)}
    properties = {k: v for k, v in row.items() if k != "id"}
    if "at_ms" in row:
        properties["at"] = int(row["at_ms"])
    return RawRecord(stream, str(row["id"]), properties, links)


class TernConnector:
    """``crmbridge.connectors.Connector`` for Tern."""

    source = "tern"

    def __init__(self, client: TernClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, base_url: str | None = None, api_key: str | None = None) -> TernConnector:
        base = base_url or os.environ.get("CRMBRIDGE_TERN_BASE_URL")
        key = api_key or os.environ.get("CRMBRIDGE_TERN_API_KEY")
        if not base or not key:
            raise ConfigError("Tern needs CRMBRIDGE_TERN_BASE_URL and CRMBRIDGE_TERN_API_KEY",
                              key="CRMBRIDGE_TERN_API_KEY")
        return cls(TernClient(base, key))

    def streams(self) -> Sequence[StreamSpec]:
        return SPECS

    def _pages(self, stream: str, after: int, since: int | None) -> Iterator[Page]:
        while True:
            answer = self.client.call("GET", f"/v1/{stream}", after=after, limit=PAGE_SIZE, updated_since=since)
            rows = answer["data"]
            nxt = answer["next_after"]
            after = int(nxt) if nxt else after
            checkpoint: dict[str, Any] = {"after": after} if nxt else {"done": True}
            yield Page(stream, [_record(stream, r) for r in rows], checkpoint=checkpoint,
                       live_total=answer["total"] if since is None and not nxt else None)
            if not nxt:
                return

    def backfill(self, stream: str, resume: Mapping[str, Any] | None) -> Iterator[Page]:
        return self._pages(stream, int((resume or {}).get("after", 0)), None)

    def changes(self, stream: str, state: StreamState) -> Iterator[Page]:
        started = int(time.time() * 1000)
        since = int((state.cursor or {}).get("since_ms", 0)) - LOOKBACK_MS
        for page in self._pages(stream, 0, since):
            page.checkpoint = {"since_ms": started} if page.checkpoint.get("done") else None  # type: ignore[union-attr]
            yield page

    def reconcile(self, stream: str) -> Iterator[Page]:
        for page in self._pages(stream, 0, None):
            yield Page(stream, live_ids=[r.id for r in page.records], live_total=page.live_total)

    def request_properties(self, wanted: Mapping[str, Collection[str]]) -> None:
        """Tern always answers with every property."""

    def start_cursor(self, stream: str) -> Mapping[str, Any]:
        return {"since_ms": int(time.time() * 1000)}

    def field_catalog(self, stream: str) -> Mapping[str, str]:
        return {}

    def fetch(self, stream: str, ids: Sequence[str]) -> Iterator[Page]:
        for start in range(0, len(ids), PAGE_SIZE):
            answer = self.client.call("POST", f"/v1/{stream}/read", {"ids": list(ids[start:start + PAGE_SIZE])})
            yield Page(stream, [_record(stream, r) for r in answer["data"]], archived_ids=list(answer["missing"]))

    def followups(self, stream: str, properties: Collection[str | None] = ()) -> Sequence[str]:
        return []

    def usage(self) -> ApiUsage:
        return ApiUsage(dict(self.client.calls))

    def writer(self) -> TernWriter:
        return TernWriter(self.client)

    def close(self) -> None:
        """Nothing held open between calls."""


def _field_key(key: str) -> str:
    return f"cb_{key}"


class TernWriter:
    """``crmbridge.writeback.contract.Writer`` for Tern: custom fields named ``cb_<key>``, one pipeline."""

    source = "tern"
    batch_size = 100

    def __init__(self, client: TernClient) -> None:
        self.client = client

    def provision(self, spec: ProvisionSpec, *, dry_run: bool = False) -> Provisioned:
        steps: list[ProvisionStep] = []
        present = {(f["object"], f["key"]) for f in self.client.call("GET", "/v1/fields")["data"]}
        keys: dict[str, str] = {}
        for obj, specs in (("person", spec.person_fields), ("deal", spec.deal_fields)):
            for field in specs:
                keys[field.key] = _field_key(field.key)
                if (obj, _field_key(field.key)) in present:
                    steps.append(ProvisionStep("field", field.label, "present"))
                    continue
                if not dry_run:
                    self.client.call("POST", "/v1/fields", {"object": obj, "key": _field_key(field.key),
                                                            "label": field.label, "type": field.type})
                steps.append(ProvisionStep("field", field.label, "would create" if dry_run else "created"))
        stages = {s["name"]: s["id"] for s in self.client.call("GET", "/v1/stages")["data"]}
        stage_id = stages.get(spec.stage)
        if stage_id is None:
            stage_id = "" if dry_run else self.client.call("POST", "/v1/stages", {"name": spec.stage})["id"]
            steps.append(ProvisionStep("stage", spec.stage, "would create" if dry_run else "created"))
        else:
            steps.append(ProvisionStep("stage", spec.stage, "present"))
        return Provisioned("default", stage_id, tuple(steps), keys)

    def _fields(self, values: Mapping[str, Any], field_keys: Mapping[str, str]) -> dict[str, Any]:
        return {("stage" if k == "lifecycle_stage" else field_keys.get(k, _field_key(k))): v for k, v in values.items()}

    def write_people(self, updates: Sequence[PersonUpdate], field_keys: Mapping[str, str]) -> WriteResult:
        result = WriteResult()
        for start in range(0, len(updates), self.batch_size):
            batch = updates[start:start + self.batch_size]
            answer = self.client.call("POST", "/v1/people/update", {"updates": [
                {"id": u.source_id, "fields": self._fields(u.values, field_keys)} for u in batch]})
            result.calls += 1
            result.written += answer["updated"]
            result.failed.update(answer["errors"])
        return result

    def _deals(self) -> list[DealRef]:
        return [DealRef(d["id"], d.get("title"), (d.get("fields") or {}).get(_field_key("handoff_key")),
                        d.get("status") == "open", d.get("stage_id"), d.get("owner_id"),
                        (d["person_id"],) if d.get("person_id") else (),
                        (d["company_id"],) if d.get("company_id") else ())
                for d in self.client.call("GET", "/v1/deals")["data"]]

    def open_deals(self, person_ids: Sequence[str], company_ids: Sequence[str], keys: Sequence[str],
                   field_keys: Mapping[str, str]) -> list[DealRef]:
        people, companies, wanted = set(person_ids), set(company_ids), set(keys)
        return [d for d in self._deals() if (d.key in wanted) or (d.open and (
            people.intersection(d.person_ids) or companies.intersection(d.company_ids)))]

    def _create(self, draft: DealDraft) -> DealRef:
        fields = {_field_key("handoff_key"): draft.key, _field_key("score_summary"): draft.summary}
        body = {"title": draft.title, "stage_id": draft.stage_id, "person_id": draft.person_id,
                "company_id": draft.company_id, "owner_id": draft.owner_id, "fields": fields}
        try:
            made = self.client.call("POST", "/v1/deals", body)
        except TernError as exc:
            if exc.status != 409:
                raise
            return next(d for d in self._deals() if d.id == exc.body["id"])
        return DealRef(made["id"], draft.title, draft.key, True, draft.stage_id, draft.owner_id,
                       (draft.person_id,), (draft.company_id,) if draft.company_id else ())

    def create_deals(self, drafts: Sequence[DealDraft]) -> dict[str, DealRef | Exception]:
        return create_each(drafts, self._create, (TernError,))

    def ensure_people(self, drafts: Sequence[PersonDraft]) -> dict[str, tuple[str, str | None]]:
        known: dict[str, tuple[str, str | None]] = {}
        after = 0
        while True:
            answer = self.client.call("GET", "/v1/people", after=after, limit=PAGE_SIZE)
            for row in answer["data"]:
                if row.get("email"):
                    known[str(row["email"]).lower()] = (row["id"], row.get("company_id"))
            if not answer["next_after"]:
                break
            after = int(answer["next_after"])
        out: dict[str, tuple[str, str | None]] = {}
        for draft in drafts:
            found = known.get(draft.email.lower())
            if found is None:
                made = self.client.call("POST", "/v1/people", {"email": draft.email, "first_name": draft.first_name,
                                                               "last_name": draft.last_name, "title": draft.title})
                found = (made["id"], None)
            out[draft.email] = found
        return out

    def write_deals(self, updates: Sequence[DealUpdate], field_keys: Mapping[str, str]) -> WriteResult:
        answer = self.client.call("POST", "/v1/deals/update", {"updates": [
            {"id": u.deal_id, "fields": {("owner_id" if k == "owner_id" else field_keys.get(k, _field_key(k))): v
                                         for k, v in u.values.items()}} for u in updates]})
        return WriteResult(list(answer["updated"]), dict(answer["errors"]), calls=1)

    def deal_url(self, deal_id: str) -> str | None:
        return f"{self.client.base_url}/deals/{deal_id}"


class TernWebhooks:
    """Tern signs nothing: it sends a shared secret in a header, and a JSON list of changed records."""

    source = "tern"
    max_events = 100

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret or os.environ.get("CRMBRIDGE_TERN_WEBHOOK_SECRET")

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        if not self.secret or request.headers.get("x-tern-secret") != self.secret:
            raise WebhookRejected(401, "missing or wrong X-Tern-Secret")
        try:
            items = json.loads(request.body)
            events = [WebhookEvent(str(i["id"]), str(i["stream"]), str(i["object_id"]), str(i["action"]),
                                   int(i["at_ms"])) for i in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected(400, f"malformed delivery: {exc}") from None
        if len(events) > self.max_events:
            raise WebhookRejected(400, f"more than {self.max_events} events")
        return events
