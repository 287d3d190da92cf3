"""Write-back into Pipedrive: custom fields, the hand-off stage, webhooks, person updates and deals.

Webhooks are subscribed in version 2.0 (actions ``create``/``change``/``delete``, all by ``*``), one
subscription per object; one that already exists for the same object and URL but in v1 or with other
credentials (which the receiver would refuse) is replaced.

Pipedrive has no batch update: each person costs one ``PATCH /api/v2/persons/{id}`` and each deal one
``PATCH /api/v2/deals/{id}`` (5 tokens each), paced by the connector's shared pacer, so write-back stays
inside the burst window and the planner keeps the count down by writing only what changed. Pipedrive
enforces no unique field, so a deal's hand-off key is checked against the person's open deals before
creating, and a create that timed out is looked for before it is tried again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmbridge.errors import PermanentError, RetryableError
from crmbridge.logs import get_logger
from crmbridge.writeback.contract import (
    CLEAR,
    DEAL_FIELDS,
    DealDraft,
    DealRef,
    DealUpdate,
    FieldSpec,
    PersonDraft,
    PersonUpdate,
    Provisioned,
    ProvisionSpec,
    ProvisionStep,
    WriteResult,
    create_each,
    utc_instant,
)
from crmbridge_pipedrive import streams as S
from crmbridge_pipedrive.client import PipedriveClient
from crmbridge_pipedrive.settings import DEFAULT_BASE_URL, PipedriveSettings

log = get_logger("crmbridge.pipedrive")

# Pipedrive persons have no lifecycle stage: write-back keeps it in a field of its own.
LIFECYCLE_FIELD = FieldSpec("lifecycle_stage", "crmbridge lifecycle stage", "text", "Lead, MQL or SQL")
# Pipedrive's custom fields hold a date or a time, never an instant: instants are ISO-8601 UTC text.
_TYPES = {"number": "double", "text": "varchar", "datetime": "varchar"}
_DEAL_TYPES = {f.key: f.type for f in DEAL_FIELDS}
OWNER = "owner_id"  # the canonical key that hands a deal to another seller
PER_ID_LIMIT = 20  # above this many people and companies, one list of every open deal is cheaper
CREATE_ATTEMPTS = 3


class PipedriveWriter:
    source = "pipedrive"
    batch_size = 1

    def __init__(self, client: PipedriveClient, settings: PipedriveSettings) -> None:
        self.client = client
        self.settings = settings

    # -- setup -------------------------------------------------------------------------------------

    def provision(self, spec: ProvisionSpec, *, dry_run: bool = False) -> Provisioned:
        steps: list[ProvisionStep] = []
        keys: dict[str, str] = {}
        for kind, fields in (("personFields", (*spec.person_fields, LIFECYCLE_FIELD)),
                             ("dealFields", tuple(spec.deal_fields))):
            found, created = self._fields(kind, fields, dry_run)
            keys.update(found)
            steps.extend(created)
        pipeline_id, stage_id, stage_steps = self._stage(spec, dry_run)
        steps.extend(stage_steps)
        if spec.webhook_url:
            steps.extend(self._webhooks(spec, dry_run))
        return Provisioned(pipeline_id, stage_id, tuple(steps), keys)

    def _fields(self, kind: str, fields: Sequence[FieldSpec], dry_run: bool
                ) -> tuple[dict[str, str], list[ProvisionStep]]:
        by_name = {str(f.get("name")): str(f.get("key")) for f in self.client.fields(kind)
                   if f.get("active_flag", True) is not False}
        keys, steps = {}, []
        what = kind.removesuffix("Fields") + " field"
        for f in fields:
            if f.label in by_name:
                keys[f.key] = by_name[f.label]
                steps.append(ProvisionStep(what, f.label, "present"))
                continue
            steps.append(ProvisionStep(what, f.label, "would create" if dry_run else "created"))
            if not dry_run:
                made = self.client.add_field(kind, {"name": f.label, "field_type": _TYPES[f.type]})
                keys[f.key] = str(made.get("key"))
        return keys, steps

    def _stage(self, spec: ProvisionSpec, dry_run: bool) -> tuple[str, str, list[ProvisionStep]]:
        pipelines = self.client.v2_list("pipelines", {"limit": S.V2_PAGE}).items
        if not pipelines:
            raise PermanentError("Pipedrive has no pipeline to put sales-ready leads in")
        wanted = spec.pipeline
        if wanted:
            chosen = next((p for p in pipelines if wanted in (str(p.get("id")), p.get("name"))), None)
            if chosen is None:
                known = ", ".join(sorted(str(p.get("name")) for p in pipelines))
                raise PermanentError(f"no Pipedrive pipeline named {wanted!r} (pipelines: {known})")
        else:
            chosen = min(pipelines, key=lambda p: (int(p.get("order_nr") or 0), int(p["id"])))
        stages = self.client.v2_list("stages", {"pipeline_id": chosen["id"], "limit": S.V2_PAGE}).items
        name = f"{chosen.get('name')} / {spec.stage}"
        found = next((s for s in stages if str(s.get("name", "")).strip().lower() == spec.stage.strip().lower()),
                     None)
        if found is not None:
            return str(chosen["id"]), str(found["id"]), [ProvisionStep("deal stage", name, "present")]
        if dry_run:
            return str(chosen["id"]), "", [ProvisionStep("deal stage", name, "would create")]
        created = self.client.v2_create("stages", {"name": spec.stage, "pipeline_id": chosen["id"],
                                                   "deal_probability": 10})
        return str(chosen["id"]), str(created["id"]), [ProvisionStep("deal stage", name, "created")]

    def _webhooks(self, spec: ProvisionSpec, dry_run: bool) -> list[ProvisionStep]:
        url = str(spec.webhook_url).strip()
        hooks = [h for h in self.client.webhooks() if h.get("is_active", 1)]
        steps = []
        for obj in S.WEBHOOK_OBJECTS:
            name = f"*.{obj} -> {url} (v{S.WEBHOOK_VERSION})"
            if any(_covers(h, obj, url, spec.webhook_user) for h in hooks):
                steps.append(ProvisionStep("webhook", name, "present"))
                continue
            stale = [h for h in hooks if h.get("event_object") == obj and _url(h) == url]
            steps.append(self._subscribe(obj, url, spec, stale, name, dry_run))
        return steps

    def _subscribe(self, obj: str, url: str, spec: ProvisionSpec, stale: Sequence[Mapping[str, Any]], name: str,
                   dry_run: bool) -> ProvisionStep:
        """One v2 subscription for ``obj``; the stale ones for the same object and URL go once it exists."""
        detail = ", ".join(f"replaces webhook {h.get('id')} ({_why_stale(h, spec.webhook_user)})" for h in stale)
        if dry_run:
            return ProvisionStep("webhook", name, "would create", detail)
        body = {"subscription_url": url, "event_action": "*", "event_object": obj, "version": S.WEBHOOK_VERSION}
        if spec.webhook_user:
            body |= {"http_auth_user": spec.webhook_user, "http_auth_password": spec.webhook_password}
        self.client.add_webhook(body)
        for hook in stale:
            self.client.delete_webhook(hook["id"])
            log.info("pipedrive.webhook_replaced", webhook_id=hook.get("id"), event_object=obj)
        return ProvisionStep("webhook", name, "updated" if stale else "created", detail)

    # -- people --------------------------------------------------------------------------------

    def write_people(self, updates: Sequence[PersonUpdate], field_keys: Mapping[str, str]) -> WriteResult:
        result = WriteResult()
        for u in updates:
            custom = {field_keys[k]: _value(v) for k, v in u.values.items() if k in field_keys}
            if not custom:
                continue
            try:
                self.client.v2_update("persons", u.source_id, {"custom_fields": custom})
                result.written.append(u.source_id)
            except PermanentError as exc:  # a deleted or merged person: the others go on
                result.failed[u.source_id] = str(exc)[:300]
            result.calls += 1
        return result

    def ensure_people(self, drafts: Sequence[PersonDraft]) -> dict[str, tuple[str, str | None]]:
        out: dict[str, tuple[str, str | None]] = {}
        for d in drafts:
            hit = _search_hits(self.client.v2_search("persons", {"term": d.email, "fields": "email",
                                                                "exact_match": "true", "limit": 1}))
            if hit:
                out[d.email.lower()] = hit
                continue
            org_id = self._organization(d) if d.company_name else None
            name = " ".join(p for p in (d.first_name, d.last_name) if p) or d.email
            body: dict[str, Any] = {"name": name, "emails": [{"value": d.email, "primary": True, "label": "work"}]}
            if org_id:
                body["org_id"] = int(org_id)
            if d.phone:
                body["phones"] = [{"value": d.phone, "primary": True, "label": "work"}]
            person = self.client.v2_create("persons", body)
            out[d.email.lower()] = (str(person["id"]), org_id)
        return out

    def _organization(self, d: PersonDraft) -> str:
        hit = _search_hits(self.client.v2_search("organizations", {"term": d.company_name, "fields": "name",
                                                                  "exact_match": "true", "limit": 1}))
        if hit:
            return hit[0]
        return str(self.client.v2_create("organizations", {"name": d.company_name})["id"])

    # -- deals ---------------------------------------------------------------------------------

    def open_deals(self, person_ids: Sequence[str], company_ids: Sequence[str], keys: Sequence[str],
                   field_keys: Mapping[str, str]) -> list[DealRef]:
        key_field = field_keys.get("handoff_key")
        base = {"status": "open", "limit": S.V2_PAGE}
        if key_field:
            base["custom_fields"] = key_field
        pages: list[dict[str, Any]] = []
        people, companies = sorted(set(person_ids)), sorted(set(company_ids))
        if len(people) + len(companies) > PER_ID_LIMIT:
            pages = self._all(base)
        else:
            for pid in people:
                pages.extend(self._all({**base, "person_id": pid}))
            for cid in companies:
                pages.extend(self._all({**base, "org_id": cid}))
        wanted_people, wanted_companies, wanted_keys = set(people), set(companies), set(keys)
        out: dict[str, DealRef] = {}
        for deal in pages:
            ref = _deal_ref(deal, key_field)
            if set(ref.person_ids) & wanted_people or set(ref.company_ids) & wanted_companies or \
                    (ref.key and ref.key in wanted_keys):
                out[ref.id] = ref
        return list(out.values())

    def _all(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self.client.v2_list("deals", {**params, **({"cursor": cursor} if cursor else {})})
            items.extend(page.items)
            cursor = page.next_cursor
            if not cursor:
                return items

    def create_deals(self, drafts: Sequence[DealDraft]) -> dict[str, DealRef | Exception]:
        """One create per deal (Pipedrive has no batch create); a refused deal never fails the others."""
        return create_each(drafts, self.create_deal, (PermanentError, RetryableError))

    def create_deal(self, draft: DealDraft) -> DealRef:
        keys = draft.field_keys
        body: dict[str, Any] = {"title": draft.title, "person_id": int(draft.person_id),
                                "pipeline_id": int(draft.pipeline_id), "stage_id": int(draft.stage_id),
                                "custom_fields": {keys["handoff_key"]: draft.key, keys["score_summary"]: draft.summary}}
        if draft.company_id:
            body["org_id"] = int(draft.company_id)
        if draft.owner_id:
            body["owner_id"] = int(draft.owner_id)
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                deal = self.client.v2_create("deals", body, retry=False)
                return _deal_ref(deal, keys["handoff_key"])
            except RetryableError:
                # Made or not? Look before trying again, so a timeout never makes a second deal.
                existing = [d for d in self.open_deals([draft.person_id], [], [draft.key], keys) if d.key == draft.key]
                if existing:
                    return existing[0]
                if attempt == CREATE_ATTEMPTS:
                    raise
                log.info("pipedrive.deal_create_retry", key=draft.key, attempt=attempt)
        raise AssertionError("unreachable")

    def write_deals(self, updates: Sequence[DealUpdate], field_keys: Mapping[str, str]) -> WriteResult:
        """One ``PATCH /api/v2/deals/{id}`` per deal (custom fields and owner together); a deal Pipedrive
        refuses or no longer has fails alone."""
        result = WriteResult()
        bodies: dict[str, dict[str, Any]] = {}
        for u in updates:  # a deal named twice is written once, with every value
            try:
                body = _deal_body(u.values, field_keys)
            except ValueError as exc:
                result.failed[u.deal_id] = str(exc)
                continue
            merged = bodies.setdefault(u.deal_id, {})
            merged.update({k: v for k, v in body.items() if k != "custom_fields"})
            if body.get("custom_fields"):
                merged.setdefault("custom_fields", {}).update(body["custom_fields"])
        for deal_id, body in bodies.items():
            if deal_id in result.failed or not body:
                continue
            result.calls += 1
            try:
                self.client.v2_update("deals", deal_id, body)
            except PermanentError as exc:
                if exc.status in (401, 403):
                    raise
                result.failed[deal_id] = str(exc)[:300]
            else:
                result.written.append(deal_id)
        return result

    def deal_url(self, deal_id: str) -> str | None:
        if self.settings.app_url:
            return f"{self.settings.app_url.rstrip('/')}/deal/{deal_id}"
        if self.settings.base_url.rstrip("/") != DEFAULT_BASE_URL:  # a sandbox: link the API record
            return f"{self.settings.base_url.rstrip('/')}{S.V2_PREFIX}/deals/{deal_id}"
        return None


def _url(hook: Mapping[str, Any]) -> str:
    return str(hook.get("subscription_url") or "").strip()


def _version(hook: Mapping[str, Any]) -> str:
    """A listed webhook's version (top-level in Pipedrive's examples, under ``additional_data`` too)."""
    return str(hook.get("version") or (hook.get("additional_data") or {}).get("version") or "1.0")


def _covers(hook: Mapping[str, Any], obj: str, url: str, user: str | None) -> bool:
    """Whether a webhook already sends every v2 event of ``obj`` to ``url`` with these credentials."""
    return hook.get("event_object") in (obj, "*") and hook.get("event_action") == "*" and _url(hook) == url \
        and _version(hook) == S.WEBHOOK_VERSION and (hook.get("http_auth_user") or None) == (user or None)


def _why_stale(hook: Mapping[str, Any], user: str | None) -> str:
    if _version(hook) != S.WEBHOOK_VERSION:
        return f"version {_version(hook)}"
    if (hook.get("http_auth_user") or None) != (user or None):
        return "other credentials"
    return f"event_action {hook.get('event_action')}"


def _value(value: Any) -> Any:
    return None if value == CLEAR else value


def _deal_body(values: Mapping[str, Any], field_keys: Mapping[str, str]) -> dict[str, Any]:
    """A v2 deal update: ``owner_id`` at the top, crmbridge's fields under ``custom_fields`` by hash key."""
    body: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in values.items():
        if key == OWNER:
            if value is None or value == CLEAR or not str(value).isdigit():
                raise ValueError(f"owner_id: {value!r} is not a Pipedrive user id")
            body["owner_id"] = int(value)
        elif key not in field_keys:
            raise ValueError(f"{key}: no Pipedrive deal field holds it (run crmbridge setup)")
        elif _DEAL_TYPES.get(key) == "datetime" and value is not None and value != CLEAR:
            custom[field_keys[key]] = _instant(value, key)
        else:
            custom[field_keys[key]] = _value(value)
    if custom:
        body["custom_fields"] = custom
    return body


def _instant(value: Any, key: str) -> str:
    """An aware datetime or an ISO-8601 UTC text as the text field holds it: ``2026-06-01T09:30:00Z``."""
    value = utc_instant(value, key)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


def _search_hits(items: Sequence[Any]) -> tuple[str, str | None] | None:
    for entry in items:
        item = entry.get("item", entry) if isinstance(entry, dict) else {}
        if item.get("id") is None:
            continue
        org = item.get("organization") or {}
        return str(item["id"]), (str(org["id"]) if isinstance(org, dict) and org.get("id") else None)
    return None


def _deal_ref(deal: Mapping[str, Any], key_field: str | None) -> DealRef:
    custom = deal.get("custom_fields") or {}
    person = deal.get("person_id")
    org = deal.get("org_id")
    return DealRef(str(deal["id"]), deal.get("title"), (custom.get(key_field) if key_field else None) or None,
                   deal.get("status", "open") == "open" and not deal.get("is_deleted"),
                   str(deal.get("stage_id")) if deal.get("stage_id") is not None else None,
                   str(deal.get("owner_id")) if deal.get("owner_id") is not None else None,
                   (str(person),) if person else (), (str(org),) if org else ())
