"""Pipedrive's incremental cursors are watermarks (``since_ms``, ``last_id``), its custom-field catalogs
live in the store's catalogs (never in a cursor), and a cursor stored in the older form still reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from requests.adapters import HTTPAdapter

from crmbridge.model import EntityType
from crmbridge.store import Store
from crmbridge.store.crm_facts import FieldCatalog
from crmbridge.sync import Syncer

V2_LISTS = ("organizations", "persons", "deals", "activities")
WITH_FIELDS = ("organizations", "persons", "deals")
FIELD_CALLS = {"GET /v1/personFields", "GET /v1/organizationFields", "GET /v1/dealFields"}
LOOKBACK_MS = 300_000  # the connector's default look-back
BUDGET_VALUES = {"Approved": "approved", "Planned": "planned", "No budget": "none"}  # mappings/pipedrive.yaml


def epoch_ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Asked(HTTPAdapter):
    """The v2 list path and query of every request a connector sends."""

    def __init__(self) -> None:
        super().__init__()
        self.lists: list[tuple[str, dict[str, list[str]]]] = []

    def send(self, request, *args, **kwargs):
        url = urlsplit(request.url)
        if "/api/v2/" in url.path:
            self.lists.append((url.path.rsplit("/api/v2/", 1)[-1], parse_qs(url.query)))
        return super().send(request, *args, **kwargs)


@pytest.fixture
def account(sandbox_factory, connect, mapping, sqlite_url):
    """A sandbox, a store holding its backfill and one settling pass, and a pass run as a new process."""
    server = sandbox_factory(contacts=600)
    store = Store(sqlite_url)
    connector = connect(server)
    Syncer(store, connector, mapping(store, connector)).backfill()

    def sync(streams=None, adapter=None):
        fresh = connect(server)
        if adapter is not None:
            fresh.client.session.mount("http://", adapter)
        return Syncer(store, fresh, mapping(store, fresh)).sync(streams)

    sync()  # anything left from the backfill's own window is settled first
    yield server, store, sync
    store.close()


def raw_cursors(store: Store) -> dict[str, dict]:
    return {row["stream"]: row["value"] for row in store.cursors.all("pipedrive") if row["kind"] == "incremental"}


def test_cursors_hold_watermarks_and_no_field_catalog(account):
    server, store, sync = account
    state = server.vendor("pipedrive").state
    touched = state.touch("persons", count=25)
    sync(["persons"])
    mark = store.cursors.watermark("pipedrive", "persons", "incremental")
    rows = {i: state.tables["persons"].rows[i] for i in touched}
    newest = max(r["update_time"] for r in rows.values())
    assert mark.timestamp_ms == epoch_ms(newest)
    assert mark.last_id in {str(i) for i, r in rows.items() if r["update_time"] == newest}
    for stream, value in raw_cursors(store).items():
        text = orjson.dumps(value).decode()
        assert '"fields"' not in text and '"since"' not in text, stream  # nothing cached, nothing untyped
    # The catalogs the connector read live in the store's catalogs, with the option labels values need.
    kept = store.catalogs.get("pipedrive", "persons")
    budget = state.catalogs.key("person", "BANT budget")
    assert kept.fields["BANT budget"] == budget
    options = {str(i): label for label, i in state.catalogs.options[("person", "BANT budget")].items()}
    assert kept.detail[budget][2] == options


@pytest.mark.parametrize("typed", [False, True], ids=["plain-checkpoint", "checkpoint-as-position"])
def test_a_cursor_stored_before_watermarks_reads_and_the_upgrade_needs_no_backfill(account, typed):
    """What an older deployment left: ``since`` as RFC 3339 with the catalog inside the cursor (the
    checkpoint as it came, or kept whole as the position of a watermark with no time), and catalogs
    of labels only (as the store's migration moved them out of the cursor table)."""
    server, store, sync = account
    vendor = server.vendor("pipedrive")
    state = vendor.state
    before = {s: store.cursors.watermark("pipedrive", s, "incremental").timestamp_ms for s in V2_LISTS}
    for stream in V2_LISTS:
        old: dict = {"since": rfc3339(before[stream])}
        if stream in WITH_FIELDS:
            kept = store.catalogs.get("pipedrive", stream)
            old["fields"] = dict(kept.detail)
            store.catalogs.put("pipedrive", stream, FieldCatalog(dict(kept.fields), kept.fetched_ms))
        stored = {"timestamp_ms": 0, "last_id": None, "lookback_ms": 0, "position": old} if typed else old
        store.cursors.put("pipedrive", stream, "incremental", stored)
    store.cursors.put("pipedrive", "users", "incremental", {"ids": ["1", "2"]})

    persons = state.touch("persons", count=30, changes={"job_title": "Head of Upgrades"})
    deal = state.live_ids("deals")[0]
    state.update("deals", deal, {"title": "Renewal, upgraded"})
    vendor.reset_stats()
    asked = Asked()
    report = sync(adapter=asked)

    # Exactly what changed since the old cursor, read from it less the look-back: no list walked whole.
    assert set(report.streams["persons"].stored.changed_ids) == {str(i) for i in persons}
    assert report.streams["deals"].stored.changed_ids == [str(deal)]
    windows = {path: q["updated_since"] for path, q in asked.lists if path in V2_LISTS}
    assert windows == {s: [rfc3339(before[s] - LOOKBACK_MS)] for s in V2_LISTS}
    calls = vendor.stats()["calls"]
    assert all(calls[f"GET /api/v2/{s}"] == 1 for s in V2_LISTS)
    # The catalogs had no option labels: read once, and kept by the store from now on.
    assert {k: v for k, v in calls.items() if k in FIELD_CALLS} == dict.fromkeys(FIELD_CALLS, 1)
    assert all(store.catalogs.get("pipedrive", s).detail for s in WITH_FIELDS)

    # The cursors are watermarks now, and the next pass reads no catalog and nothing twice.
    rows = raw_cursors(store)
    assert all("since" not in orjson.dumps(rows[s]).decode() for s in V2_LISTS)
    newest = max(state.tables["persons"].rows[i]["update_time"] for i in persons)
    assert store.cursors.watermark("pipedrive", "persons", "incremental").timestamp_ms == epoch_ms(newest)
    assert store.cursors.watermark("pipedrive", "organizations", "incremental").timestamp_ms == before[
        "organizations"]  # nothing newer: the watermark stays
    vendor.reset_stats()
    again = sync()
    assert not FIELD_CALLS & set(vendor.stats()["calls"])
    assert all(not s.stored.changed_ids for s in again.streams.values())


def test_an_option_the_kept_catalog_lacks_is_read_once_and_kept_for_the_next_process(account):
    server, store, sync = account
    vendor = server.vendor("pipedrive")
    state = vendor.state
    budget = state.catalogs.key("person", "BANT budget")
    kept = store.catalogs.get("pipedrive", "persons")
    label, option = next(iter(state.catalogs.options[("person", "BANT budget")].items()))
    detail = {k: list(v) for k, v in kept.detail.items()}
    detail[budget][2] = {i: o for i, o in detail[budget][2].items() if i != str(option)}
    store.catalogs.put("pipedrive", "persons", replace(kept, detail=detail))  # as read before the option existed

    person = next(i for i in state.live_ids("persons")
                  if (state.tables["persons"].rows[i].get("custom_fields") or {}).get(budget) == option)
    state.touch("persons", ids=[person])
    vendor.reset_stats()
    sync(["persons"])
    assert vendor.stats()["calls"].get("GET /v1/personFields") == 1
    assert store.catalogs.get("pipedrive", "persons").detail[budget][2][str(option)] == label
    # The person's budget is read as its option's label, as the mapping names it.
    stored = store.records.get(EntityType.PERSON, "pipedrive", str(person))
    assert stored.custom["bant_budget"] == BUDGET_VALUES[label]

    vendor.reset_stats()
    state.touch("persons", ids=[person])
    sync(["persons"])
    assert "GET /v1/personFields" not in vendor.stats()["calls"]


def test_a_deleted_pipeline_is_archived_without_its_ids_in_the_cursor_or_another_call(account):
    """Deleted pipelines are in no list: the pass's own read of the pipelines tells which are gone."""
    server, store, sync = account
    vendor = server.vendor("pipedrive")
    pipelines = vendor.state.live_ids("pipelines")
    assert len(pipelines) > 1
    vendor.state.delete("pipelines", pipelines[-1])
    vendor.reset_stats()
    report = sync(["pipelines"])
    assert store.records.live_ids("pipedrive", "pipelines", EntityType.PIPELINE) == {str(i) for i in pipelines[:-1]}
    assert report.streams["pipelines"].stored.archived == 1 and report.streams["pipelines"].complete
    assert vendor.stats()["calls"] == {"GET /api/v2/pipelines": 1, "GET /api/v2/stages": 1}
    assert raw_cursors(store)["pipelines"] == {"timestamp_ms": 0, "last_id": None, "lookback_ms": 0}
