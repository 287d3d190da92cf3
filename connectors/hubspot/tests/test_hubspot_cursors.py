"""HubSpot's owners and pipelines cursors copy nothing the store holds: deleted pipelines are found by the
pass's own read, owners who leave by a fingerprint of the active set, and a cursor stored before still reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crmbridge.connectors import StreamState, plugin
from crmbridge.mapping import SourceMapping
from crmbridge.model import EntityType
from crmbridge.sandbox import SandboxServer
from crmbridge.store import Store
from crmbridge.sync import RunReport, Syncer

MAPPING = Path(__file__).resolve().parents[3] / "mappings" / "hubspot.yaml"
OWNERS, PIPELINES = "GET /crm/v3/owners", "GET /crm/v3/pipelines/deals"

Sync = Callable[..., RunReport]


@pytest.fixture
def account(hs_server: SandboxServer, tmp_path: Path) -> tuple[Store, Sync]:
    """A store holding the sandbox's owners and pipelines; each pass runs as a new process would."""
    store = Store(f"sqlite:///{tmp_path / 'crmbridge.db'}")

    def job() -> Syncer:
        connector = plugin("hubspot").sandbox_connector(hs_server.base_url("hubspot"))
        return Syncer(store, connector, SourceMapping.load(MAPPING))

    job().backfill(["owners", "pipelines"])

    def sync(streams: list[str] | None = None) -> RunReport:
        return job().sync(streams or ["owners", "pipelines"])

    return store, sync


def _cursor(store: Store, stream: str) -> dict[str, Any]:
    return store.cursors.get("hubspot", stream, "incremental") or {}


def _deactivate(hs: Any, owner_id: str) -> None:
    owner = next(o for o in hs.portal.owners if o.id == owner_id)
    owner.archived = owner.body["archived"] = True


def _active_in_store(store: Store) -> set[str]:
    ids = store.records.live_ids("hubspot", "owners", EntityType.OWNER)
    return {i for i in ids if store.records.get(EntityType.OWNER, "hubspot", i).active}


def test_cursors_keep_no_ids_and_a_quiet_pass_costs_one_call_each(account: tuple[Store, Sync], hs: Any) -> None:
    store, sync = account
    report = sync()
    assert report.api_calls == {OWNERS: 1, PIPELINES: 1}
    assert all(s.stored.new == s.stored.changed == s.stored.archived == 0 for s in report.streams.values())
    assert _cursor(store, "pipelines") == {"timestamp_ms": 0, "last_id": None, "lookback_ms": 0}
    owners = _cursor(store, "owners")
    assert set(owners["position"]) == {"active_digest"} and len(owners["position"]["active_digest"]) == 16
    for stream in ("owners", "pipelines"):
        assert not any(o.id in str(_cursor(store, stream)) for o in hs.portal.owners if len(o.id) > 3)


def test_a_deleted_pipeline_is_archived_with_no_extra_call(account: tuple[Store, Sync], hs: Any) -> None:
    store, sync = account
    live = [p["id"] for p in hs.portal.pipelines]
    assert len(live) > 1
    hs.portal.pipelines.pop()
    report = sync(["pipelines"])
    assert store.records.live_ids("hubspot", "pipelines", EntityType.PIPELINE) == set(live[:-1])
    assert report.streams["pipelines"].stored.archived == 1 and report.streams["pipelines"].complete
    assert report.api_calls == {PIPELINES: 1}


def test_an_owner_who_leaves_is_marked_inactive(account: tuple[Store, Sync], hs: Any) -> None:
    store, sync = account
    leaving = next(o.id for o in hs.portal.owners if not o.archived)
    _deactivate(hs, leaving)
    report = sync(["owners"])
    assert report.api_calls == {OWNERS: 2}, "the inactive list is read once the active set changed"
    assert _active_in_store(store) == {o.id for o in hs.portal.owners if not o.archived}
    assert leaving in store.records.live_ids("hubspot", "owners", EntityType.OWNER)
    assert sync(["owners"]).api_calls == {OWNERS: 1}


@pytest.mark.parametrize("typed", [False, True], ids=["plain-checkpoint", "checkpoint-as-position"])
def test_a_cursor_stored_with_id_lists_still_reads(account: tuple[Store, Sync], hs: Any, typed: bool) -> None:
    """What an older deployment left: the active owners' ids and the pipelines' ids in the cursors."""
    store, sync = account
    active = sorted(o.id for o in hs.portal.owners if not o.archived)
    pipelines = sorted(p["id"] for p in hs.portal.pipelines)
    for stream, old in (("owners", {"active": active}), ("pipelines", {"ids": pipelines, "done": True})):
        stored = {"timestamp_ms": 0, "last_id": None, "lookback_ms": 0, "position": old} if typed else old
        store.cursors.put("hubspot", stream, "incremental", stored)
    report = sync()
    assert report.api_calls == {OWNERS: 1, PIPELINES: 1}, "an upgrade needs no extra call and no backfill"
    assert all(s.stored.new == s.stored.changed == s.stored.archived == 0 for s in report.streams.values())
    assert "ids" not in str(_cursor(store, "pipelines")) and "'active'" not in str(_cursor(store, "owners"))
    # and an owner who left before the upgrade is still found
    store.cursors.put("hubspot", "owners", "incremental", {"active": active})
    _deactivate(hs, active[0])
    assert sync(["owners"]).api_calls == {OWNERS: 2}
    assert active[0] not in _active_in_store(store)


def test_an_owners_backfill_resumed_from_an_older_checkpoint_ends_on_the_same_fingerprint(
        hs_server: SandboxServer, hs: Any) -> None:
    """A backfill interrupted before the upgrade kept the active ids so far; resumed, it starts the
    incremental cursor on the fingerprint a quiet pass then finds again (one call, not two)."""
    connector = plugin("hubspot").sandbox_connector(hs_server.base_url("hubspot"))
    active = sorted(o.id for o in hs.portal.owners if not o.archived)
    pages = list(connector.backfill("owners", {"phase": "inactive", "after": None, "active": active}))
    last = pages[-1].checkpoint or {}
    assert last["done"] and set(last["next"]) == {"active_digest"}
    assert {r.id for p in pages for r in p.records} == {o.id for o in hs.portal.owners if o.archived}
    [page] = list(connector.changes("owners", StreamState(last["next"], 0)))
    assert page.checkpoint == last["next"] and len(page.records) == len(active)
    assert connector.usage().calls == {OWNERS: 2}, "one for the inactive owners left, one for the quiet pass"
