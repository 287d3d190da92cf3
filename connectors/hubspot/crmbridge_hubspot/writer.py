"""Write-back into HubSpot: provisioning, batch updates of contacts and deals, and hand-off deals.

Every write goes through ``HubSpotClient.call`` (pacing, timeout, typed errors, retries). Contacts
and deals are updated 100 per batch call; a rejected record never fails the rest: HubSpot answers 207
with per-record errors for ids it does not hold, and a batch it refuses as a whole (a value or an
owner it will not take) is sent again one record at a time. Hand-off deals carry their key in a
property created with ``hasUniqueValue``, so HubSpot itself refuses a second deal with the same key: a
retried or concurrent create ends in a 409, and the existing deal is read back by that key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmbridge.errors import NotFoundError, PermanentError
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
from crmbridge_hubspot import streams as S
from crmbridge_hubspot.client import HubSpotClient
from crmbridge_hubspot.settings import DEFAULT_BASE_URL, HubSpotSettings

log = get_logger("crmbridge.hubspot")

GROUP = "crmbridge"
BATCH = 100
ASSOCIATIONS_BATCH = 1000
LIFECYCLE = {"subscriber": "subscriber", "lead": "lead", "mql": "marketingqualifiedlead",
             "sql": "salesqualifiedlead", "opportunity": "opportunity", "customer": "customer",
             "evangelist": "evangelist", "other": "other"}
# HubSpot-defined association types (deal -> contact, deal -> company).
DEAL_TO_CONTACT, DEAL_TO_COMPANY = 3, 5
_TYPES = {"number": ("number", "number"), "text": ("string", "textarea"), "datetime": ("datetime", "date")}
_DEAL_TYPES = {f.key: f.type for f in DEAL_FIELDS}
OWNER = "owner_id"  # the canonical key that hands a deal to another seller


def property_name(key: str) -> str:
    return f"crmbridge_{key}"


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class HubSpotWriter:
    source = "hubspot"
    batch_size = BATCH

    def __init__(self, client: HubSpotClient, settings: HubSpotSettings) -> None:
        self.client = client
        self.settings = settings

    # -- setup -------------------------------------------------------------------------------------

    def provision(self, spec: ProvisionSpec, *, dry_run: bool = False) -> Provisioned:
        steps: list[ProvisionStep] = []
        keys: dict[str, str] = {}
        for object_type, fields in (("contacts", spec.person_fields), ("deals", spec.deal_fields)):
            steps.extend(self._properties(object_type, fields, dry_run))
            keys.update({f.key: property_name(f.key) for f in fields})
        keys["lifecycle_stage"] = "lifecyclestage"
        pipeline_id, stage_id, stage_steps = self._stage(spec, dry_run)
        steps.extend(stage_steps)
        if spec.webhook_url:
            steps.extend(WebhookProvisioner(self.client, self.settings).provision(spec.webhook_url, dry_run))
        return Provisioned(pipeline_id, stage_id, tuple(steps), keys)

    def _properties(self, object_type: str, fields: Sequence[FieldSpec], dry_run: bool) -> list[ProvisionStep]:
        steps: list[ProvisionStep] = []
        groups = self.client.call(f"GET /crm/v3/properties/{object_type}/groups",
                                  self.client.property_groups.get_all_with_http_info, object_type)
        if GROUP not in {g.get("name") for g in groups.get("results") or ()}:
            steps.append(ProvisionStep(f"{object_type} property group", GROUP,
                                       "would create" if dry_run else "created"))
            if not dry_run:
                self.client.call(f"POST /crm/v3/properties/{object_type}/groups",
                                 self.client.property_groups.create_with_http_info, object_type,
                                 {"name": GROUP, "label": "crmbridge", "displayOrder": -1})
        existing = self.client.property_definitions(object_type)
        have = {p.get("name"): p for p in existing.get("results") or ()}
        missing = []
        for f in fields:
            name = property_name(f.key)
            if name in have:
                steps.append(ProvisionStep(f"{object_type} property", name, "present"))
            else:
                missing.append(self._property_input(f))
                steps.append(ProvisionStep(f"{object_type} property", name, "would create" if dry_run else "created"))
        if missing and not dry_run:
            self.client.call(f"POST /crm/v3/properties/{object_type}/batch/create",
                             self.client.properties_batch.create_with_http_info, object_type, {"inputs": missing})
        return steps

    @staticmethod
    def _property_input(f: FieldSpec) -> dict[str, Any]:
        kind, field_type = _TYPES[f.type]
        body = {"name": property_name(f.key), "label": f.label, "type": kind, "fieldType": field_type,
                "groupName": GROUP, "description": f.description, "formField": False}
        if f.key == "handoff_key":
            body["hasUniqueValue"] = True  # HubSpot then refuses a second deal with the same key
        return body

    def _stage(self, spec: ProvisionSpec, dry_run: bool) -> tuple[str, str, list[ProvisionStep]]:
        pipelines = self.client.pipelines_of("deals").get("results") or []
        if not pipelines:
            raise PermanentError("HubSpot has no deal pipeline to put sales-ready leads in")
        wanted = spec.pipeline
        chosen = next((p for p in pipelines if wanted in (p.get("id"), p.get("label"))), None) if wanted else \
            min(pipelines, key=lambda p: (int(p.get("displayOrder") or 0), str(p.get("id"))))
        if chosen is None:
            known = ", ".join(sorted(str(p.get("label")) for p in pipelines))
            raise PermanentError(f"no HubSpot deal pipeline named {wanted!r} (pipelines: {known})")
        stages = chosen.get("stages") or []
        found = next((s for s in stages if str(s.get("label", "")).strip().lower() == spec.stage.strip().lower()),
                     None)
        name = f"{chosen.get('label')} / {spec.stage}"
        if found is not None:
            return str(chosen["id"]), str(found["id"]), [ProvisionStep("deal stage", name, "present")]
        if dry_run:
            return str(chosen["id"]), "", [ProvisionStep("deal stage", name, "would create")]
        # First in the pipeline: a sales-ready lead is where a seller's work starts.
        order = min([int(s.get("displayOrder") or 0) for s in stages] or [0]) - 1
        created = self.client.call(f"POST /crm/v3/pipelines/deals/{chosen['id']}/stages",
                                   self.client.stages.create_with_http_info, "deals", chosen["id"],
                                   {"label": spec.stage, "displayOrder": order,
                                    "metadata": {"probability": "0.1", "isClosed": "false"}})
        return str(chosen["id"]), str(created["id"]), [ProvisionStep("deal stage", name, "created")]

    # -- people --------------------------------------------------------------------------------

    def write_people(self, updates: Sequence[PersonUpdate], field_keys: Mapping[str, str]) -> WriteResult:
        result = WriteResult()
        for chunk in _chunks(list(updates), BATCH):
            inputs = [{"id": u.source_id, "properties": {field_keys.get(k, property_name(k)): _value(k, v)
                                                          for k, v in u.values.items()}} for u in chunk]
            self._update_batch("contacts", inputs, result)
        return result

    def _update_batch(self, object_type: str, inputs: Sequence[Mapping[str, Any]], result: WriteResult) -> None:
        """Up to 100 records in one batch update, sorted into ``result``. A batch HubSpot refuses as a whole
        (400: a value or an owner it will not take; 409: a unique value taken) is sent again one record at a
        time, so a bad record fails only itself."""
        result.calls += 1
        try:
            body = self.client.call(f"POST /crm/v3/objects/{object_type}/batch/update",
                                    self.client.batch.update_with_http_info, object_type, {"inputs": list(inputs)})
        except PermanentError as exc:
            if exc.status not in (400, 409):
                raise
            if len(inputs) == 1:  # alone already: the answer is this record's own
                result.failed[str(inputs[0]["id"])] = str(exc)[:300]
                return
            log.info("hubspot.batch_refused", object_type=object_type, records=len(inputs), status=exc.status)
            for item in inputs:
                self._update_one(object_type, item, result)
            return
        failed = _failed_ids(body)
        for item in inputs:
            rid = str(item["id"])
            if rid in failed:
                result.failed[rid] = failed[rid]
            else:
                result.written.append(rid)

    def _update_one(self, object_type: str, item: Mapping[str, Any], result: WriteResult) -> None:
        rid = str(item["id"])
        result.calls += 1
        try:
            self.client.call(f"PATCH /crm/v3/objects/{object_type}/{{objectId}}",
                             self.client.objects.update_with_http_info, object_type, rid,
                             {"properties": item["properties"]})
        except PermanentError as exc:
            if exc.status in (401, 403):
                raise
            result.failed[rid] = str(exc)[:300]
        else:
            result.written.append(rid)

    def ensure_people(self, drafts: Sequence[PersonDraft]) -> dict[str, tuple[str, str | None]]:
        """Contacts by e-mail, upserted (HubSpot's e-mail is unique, so a repeat changes nothing)."""
        out: dict[str, tuple[str, str | None]] = {}
        for chunk in _chunks(list(drafts), BATCH):
            inputs = [{"id": d.email, "idProperty": "email", "properties": {
                k: v for k, v in {"email": d.email, "firstname": d.first_name, "lastname": d.last_name,
                                  "jobtitle": d.title, "phone": d.phone, "company": d.company_name}.items() if v}}
                      for d in chunk]
            body = self.client.call("POST /crm/v3/objects/contacts/batch/upsert",
                                    self.client.batch.upsert_with_http_info, "contacts", {"inputs": inputs})
            for record in body.get("results") or ():
                email = str((record.get("properties") or {}).get("email") or "").lower()
                out[email] = (str(record["id"]), None)
        return out

    # -- deals ---------------------------------------------------------------------------------

    def open_deals(self, person_ids: Sequence[str], company_ids: Sequence[str], keys: Sequence[str],
                   field_keys: Mapping[str, str]) -> list[DealRef]:
        links: dict[str, dict[str, set[str]]] = {}
        for from_type, ids in (("contacts", person_ids), ("companies", company_ids)):
            for chunk in _chunks(sorted(set(ids)), ASSOCIATIONS_BATCH):
                body = self.client.associations_batch(from_type, "deals", chunk)
                for result in body.get("results") or ():
                    for to in result.get("to") or ():
                        links.setdefault(str(to["toObjectId"]), {}).setdefault(from_type, set()).add(
                            str(result["from"]["id"]))
        key_prop = field_keys.get("handoff_key", property_name("handoff_key"))
        props = ["dealname", "dealstage", "pipeline", "hubspot_owner_id", "hs_is_closed", key_prop]
        deals = {d.id: d for d in self._read_deals(sorted(links), props, key_prop, None, links)}
        if keys:
            deals.update({d.id: d for d in self._read_deals(sorted(set(keys)), props, key_prop, key_prop, links)})
        return [d for d in deals.values() if d.open or d.key]

    def _read_deals(self, ids: Sequence[str], props: list[str], key_prop: str, id_property: str | None,
                    links: Mapping[str, Mapping[str, set[str]]]) -> list[DealRef]:
        out = []
        for chunk in _chunks(list(ids), BATCH):
            body: dict[str, Any] = {"inputs": [{"id": i} for i in chunk], "properties": props}
            if id_property:
                body["idProperty"] = id_property
            answer = self.client.call("POST /crm/v3/objects/deals/batch/read", self.client.batch.read_with_http_info,
                                      "deals", body)
            for record in answer.get("results") or ():
                p = record.get("properties") or {}
                rid = str(record["id"])
                linked = links.get(rid, {})
                out.append(DealRef(rid, p.get("dealname"), p.get(key_prop) or None,
                                   str(p.get("hs_is_closed") or "false").lower() != "true", p.get("dealstage"),
                                   p.get("hubspot_owner_id") or None, tuple(sorted(linked.get("contacts", ()))),
                                   tuple(sorted(linked.get("companies", ())))))
        return out

    def create_deals(self, drafts: Sequence[DealDraft]) -> dict[str, DealRef | Exception]:
        """Up to 100 deals a call, associations inline. A batch HubSpot refuses as a whole (one input is
        invalid, or a key is taken) is made one deal at a time, so one bad input fails only itself."""
        out: dict[str, DealRef | Exception] = {}
        for chunk in _chunks(list(drafts), BATCH):
            key_prop = chunk[0].field_keys.get("handoff_key", property_name("handoff_key"))
            inputs = [{**_deal_input(d), "objectWriteTraceId": d.key} for d in chunk]
            try:
                body = self.client.call("POST /crm/v3/objects/deals/batch/create",
                                        self.client.batch.create_with_http_info, "deals", {"inputs": inputs})
            except PermanentError as exc:
                if exc.status not in (400, 409):
                    raise
                out.update(create_each(chunk, self.create_deal, (PermanentError,)))
                continue
            by_key = {d.key: d for d in chunk}
            for record in body.get("results") or ():
                key = (record.get("properties") or {}).get(key_prop)
                if key in by_key:
                    out[key] = _made(record, by_key[key])
            taken = [d.key for d in chunk if d.key not in out]
            if taken:  # a 207: these keys were taken already (by an earlier, interrupted attempt)
                for ref in self._read_deals(taken, ["dealname", "dealstage", "hubspot_owner_id", "hs_is_closed",
                                                    key_prop], key_prop, key_prop, {}):
                    out[ref.key or ""] = ref
                out.update({k: PermanentError("HubSpot neither created nor holds this deal") for k in taken
                            if k not in out})
        return out

    def create_deal(self, draft: DealDraft) -> DealRef:
        key_prop = draft.field_keys.get("handoff_key", property_name("handoff_key"))
        try:
            record = self.client.call("POST /crm/v3/objects/deals", self.client.objects.create_with_http_info,
                                      "deals", _deal_input(draft))
        except PermanentError as exc:
            if exc.status != 409:
                raise
            # The key is taken: an earlier attempt (or a concurrent run) created this hand-off's deal.
            found = self._read_deals([draft.key], ["dealname", "dealstage", "hubspot_owner_id", "hs_is_closed",
                                                   key_prop], key_prop, key_prop, {})
            if not found:
                raise
            log.info("hubspot.deal_exists", key=draft.key, deal=found[0].id)
            return found[0]
        return _made(record, draft)

    def write_deals(self, updates: Sequence[DealUpdate], field_keys: Mapping[str, str]) -> WriteResult:
        """Deal fields and owners, 100 deals per batch call; datetimes go as HubSpot's ISO instants."""
        result = WriteResult()
        inputs: dict[str, dict[str, Any]] = {}
        for u in updates:  # a deal named twice is one input (HubSpot refuses a batch with an id twice)
            try:
                properties = _deal_properties(u.values, field_keys)
            except ValueError as exc:
                result.failed[u.deal_id] = str(exc)
                continue
            if properties:
                inputs.setdefault(u.deal_id, {"id": u.deal_id, "properties": {}})["properties"].update(properties)
        for chunk in _chunks([i for i in inputs.values() if i["id"] not in result.failed], BATCH):
            self._update_batch("deals", chunk, result)
        return result

    def deal_url(self, deal_id: str) -> str | None:
        if self.settings.portal_id:
            return f"{self.settings.app_url.rstrip('/')}/contacts/{self.settings.portal_id}/record/0-3/{deal_id}"
        if self.settings.base_url.rstrip("/") != DEFAULT_BASE_URL:  # a sandbox: link the API record
            return f"{self.settings.base_url.rstrip('/')}/crm/v3/objects/deals/{deal_id}"
        return None


class WebhookProvisioner:
    """The app's webhook target and subscriptions, made to match what the connector listens to.

    HubSpot keeps both in the developer app (``/webhooks/v3/{appId}``, authenticated by the developer
    account's API key), so they need ``CRMBRIDGE_HUBSPOT_APP_ID`` and ``_DEVELOPER_API_KEY``.
    """

    def __init__(self, client: HubSpotClient, settings: HubSpotSettings) -> None:
        self.client = client
        self.settings = settings

    def provision(self, target_url: str, dry_run: bool) -> list[ProvisionStep]:
        missing = [name for name, value in (("CRMBRIDGE_HUBSPOT_APP_ID", self.settings.app_id),
                                            ("CRMBRIDGE_HUBSPOT_DEVELOPER_API_KEY", self.settings.developer_api_key))
                   if value is None]
        if missing or self.client.webhook_settings is None:
            return [ProvisionStep("webhook subscriptions", "HubSpot app", "skipped",  # type: ignore[arg-type]
                                  f"set {' and '.join(missing)} so setup can subscribe to HubSpot's webhooks")]
        steps = [self._target(target_url, dry_run)]
        steps.extend(self._subscriptions(dry_run))
        return steps

    @property
    def _app(self) -> int:
        assert self.settings.app_id is not None
        return self.settings.app_id

    def _target(self, url: str, dry_run: bool) -> ProvisionStep:
        path = "/webhooks/v3/{appId}/settings"
        try:
            current = self.client.call(f"GET {path}", self.client.webhook_settings.get_all_with_http_info, self._app)
        except NotFoundError:
            current = {}
        if current.get("targetUrl") == url:
            return ProvisionStep("webhook target", url, "present")
        was = current.get("targetUrl")
        detail = f"was {was}" if was else ""
        if dry_run:
            return ProvisionStep("webhook target", url, "would create", detail)
        concurrency = (current.get("throttling") or {}).get("maxConcurrentRequests") or 10
        self.client.call(f"PUT {path}", self.client.webhook_settings.configure_with_http_info, self._app,
                         {"targetUrl": url, "throttling": {"maxConcurrentRequests": concurrency}})
        return ProvisionStep("webhook target", url, "updated" if was else "created", detail)

    def wanted(self) -> list[tuple[str, str | None]]:
        """(event type, property) for every subscription the connector needs, properties the account
        lacks left out (a custom property of the default mapping that this account never created)."""
        out: list[tuple[str, str | None]] = []
        for prefix, stream in S.WEBHOOK_OBJECTS.items():
            out.extend((f"{prefix}.{event}", None) for event in S.WEBHOOK_EVENTS)
            have = {p.get("name") for p in self.client.property_definitions(stream).get("results") or ()}
            out.extend((f"{prefix}.propertyChange", p) for p in S.WEBHOOK_PROPERTIES[prefix] if p in have)
        return out

    def _subscriptions(self, dry_run: bool) -> list[ProvisionStep]:
        api = self.client.webhook_subscriptions
        path = "/webhooks/v3/{appId}/subscriptions"
        listed = self.client.call(f"GET {path}", api.get_all_with_http_info, self._app).get("results") or []
        existing = {(s.get("eventType"), s.get("propertyName") or None): s for s in listed}
        steps = []
        for event_type, prop in self.wanted():
            name = f"{event_type} {prop}" if prop else event_type
            found = existing.get((event_type, prop))
            if found is not None and found.get("active"):
                steps.append(ProvisionStep("webhook subscription", name, "present"))
            elif dry_run:
                steps.append(ProvisionStep("webhook subscription", name, "would create",
                                           "inactive" if found is not None else ""))
            elif found is not None:
                self.client.call(f"PATCH {path}/{{subscriptionId}}", api.update_with_http_info, int(found["id"]),
                                 self._app, {"active": True})
                steps.append(ProvisionStep("webhook subscription", name, "updated", "activated"))
            else:
                body: dict[str, Any] = {"eventType": event_type, "active": True}
                if prop:
                    body["propertyName"] = prop
                self.client.call(f"POST {path}", api.create_with_http_info, self._app, body)
                steps.append(ProvisionStep("webhook subscription", name, "created"))
        log.info("hubspot.webhooks_provisioned", subscriptions=len(steps), dry_run=dry_run)
        return steps


def _deal_input(draft: DealDraft) -> dict[str, Any]:
    keys = draft.field_keys
    properties = {"dealname": draft.title, "pipeline": draft.pipeline_id, "dealstage": draft.stage_id,
                  keys.get("handoff_key", property_name("handoff_key")): draft.key,
                  keys.get("score_summary", property_name("score_summary")): draft.summary}
    if draft.owner_id:
        properties["hubspot_owner_id"] = draft.owner_id
    associations = [{"to": {"id": draft.person_id},
                     "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": DEAL_TO_CONTACT}]}]
    if draft.company_id:
        associations.append({"to": {"id": draft.company_id}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": DEAL_TO_COMPANY}]})
    return {"properties": properties, "associations": associations}


def _made(record: Mapping[str, Any], draft: DealDraft) -> DealRef:
    return DealRef(str(record["id"]), draft.title, draft.key, True, draft.stage_id, draft.owner_id,
                   (draft.person_id,), (draft.company_id,) if draft.company_id else ())


def _value(key: str, value: Any) -> Any:
    if value is None or value == CLEAR:
        return ""
    if key == "lifecycle_stage":
        return LIFECYCLE.get(str(value), str(value))
    return value


def _deal_properties(values: Mapping[str, Any], field_keys: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == OWNER:
            out["hubspot_owner_id"] = "" if value is None or value == CLEAR else str(value)
        elif _DEAL_TYPES.get(key) == "datetime" and value is not None and value != CLEAR:
            out[field_keys.get(key, property_name(key))] = _instant(value, key)
        else:
            out[field_keys.get(key, property_name(key))] = _value(key, value)
    return out


def _instant(value: Any, key: str) -> str:
    """An aware datetime or an ISO-8601 UTC text as HubSpot writes instants: ``2026-03-02T09:30:00.000Z``."""
    return utc_instant(value, key).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _failed_ids(body: Mapping[str, Any]) -> dict[str, str]:
    """Per-record errors of a 207 answer: HubSpot names the ids in each error's context."""
    out: dict[str, str] = {}
    for error in body.get("errors") or ():
        context = error.get("context") or {}
        for rid in context.get("ids") or context.get("id") or ():
            out[str(rid)] = str(error.get("message") or error.get("category") or "rejected")[:300]
    return out
