"""One identity across HubSpot and Pipedrive, on the two sandboxes rendering one seeded world."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmbridge.connectors import plugin
from crmbridge.model import EntityType
from crmbridge.sandbox import SandboxServer
from crmbridge.store import Store
from crmbridge.sync import Syncer, load_mapping
from crmbridge_hubspot.sandbox.render import record_id

from .conftest import ROOT, TIME_SCALE, sandbox_options

pytestmark = pytest.mark.xdist_group("identity-e2e")


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("identity") / "store.db"
    with SandboxServer(sandbox_options(contacts=3000, seed=5), ["hubspot", "pipedrive"]) as server, \
            Store(f"sqlite:///{path}") as store:
        for source in ("hubspot", "pipedrive"):
            connector = plugin(source).sandbox_connector(server.base_url(source), time_scale=TIME_SCALE)
            Syncer(store, connector, load_mapping(store, connector, ROOT / "mappings" / f"{source}.yaml")).backfill()
        yield server, store


def _pairs(store: Store, entity: EntityType) -> list[dict[str, str]]:
    return [{m.source: m.source_id for m in members} for _, members in store.identities(entity)]


def test_the_seeded_overlap_of_people_yields_exactly_that_many_merged_persons(both) -> None:
    server, store = both
    overlap = server.vendor("pipedrive").state.overlap()["persons"]
    merged = [ids for ids in _pairs(store, EntityType.PERSON) if len(ids) == 2]

    assert len(overlap) > 50
    assert len(merged) == len(overlap)
    assert {ids["pipedrive"]: ids["hubspot"] for ids in merged} == {
        str(pid): str(record_id("contacts", world)) for pid, world in overlap.items()}


def test_case_whitespace_and_www_variants_still_match_companies(both) -> None:
    server, store = both
    overlap = server.vendor("pipedrive").state.overlap()["organizations"]
    merged = {ids["pipedrive"]: ids["hubspot"] for ids in _pairs(store, EntityType.COMPANY) if len(ids) == 2}
    expected = {str(oid): str(record_id("companies", world)) for oid, world in overlap.items()}
    assert expected.items() <= merged.items()


def test_every_record_keeps_its_own_source_id(both) -> None:
    _, store = both
    people = store.counts()
    hubspot_people = people["hubspot"]["contacts"]["live"]
    pipedrive_people = people["pipedrive"]["persons"]["live"]
    pairs = _pairs(store, EntityType.PERSON)
    assert sum(1 for ids in pairs if "hubspot" in ids) == hubspot_people
    assert sum(1 for ids in pairs if "pipedrive" in ids) == pipedrive_people


def test_an_email_change_in_one_crm_does_not_create_a_second_person(both, tmp_path: Path) -> None:
    server, store = both
    pipedrive = server.vendor("pipedrive")
    pid, world = next(iter(pipedrive.state.overlap()["persons"].items()))
    before = store.identity_count(EntityType.PERSON)
    pipedrive.state.update("persons", int(pid), {"emails": [{"value": "renamed.person@elsewhere.example",
                                                             "primary": True, "label": "work"}]})
    try:
        connector = plugin("pipedrive").sandbox_connector(server.base_url("pipedrive"), time_scale=TIME_SCALE)
        report = Syncer(store, connector, load_mapping(store, connector, ROOT / "mappings" / "pipedrive.yaml")
                        ).sync(["persons"])
    finally:
        pipedrive.reset()
    assert str(pid) in report.streams["persons"].stored.changed_ids
    assert store.get(EntityType.PERSON, "pipedrive", str(pid)).email == "renamed.person@elsewhere.example"
    assert store.identity_count(EntityType.PERSON) == before
    assert store.canonical_id(EntityType.PERSON, "pipedrive", str(pid)) == store.canonical_id(
        EntityType.PERSON, "hubspot", str(record_id("contacts", world)))
