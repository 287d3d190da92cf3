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


ORDERS = (("hubspot", "pipedrive"), ("pipedrive", "hubspot"))


def _strip_and_collide(server: SandboxServer) -> tuple[set[str], set[str]]:
    """Take the website off every 7th organization both CRMs hold, so only their names can match them,
    and give a few of those names to a second Pipedrive organization (with a website of its own), so
    the name is no longer unique there. Returns (organizations without a website, those made ambiguous)."""
    state = server.vendor("pipedrive").state
    website = state.catalogs.key("organization", "Website")
    overlap = sorted(state.overlap()["organizations"])
    bare = overlap[::7]
    for oid in bare:
        state.update("organizations", oid, {"custom_fields": {website: None}})
    donors = [oid for oid in overlap if oid not in bare][: max(3, len(bare) // 5)]
    ambiguous = bare[: len(donors)]
    for oid, donor in zip(ambiguous, donors, strict=True):
        state.update("organizations", donor, {"name": state.get("organizations", oid)["name"]})
    return {str(o) for o in bare}, {str(o) for o in ambiguous}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory):
    """One sandbox world, backfilled into one store per order of the two CRMs."""
    folder = tmp_path_factory.mktemp("identity")
    with SandboxServer(sandbox_options(contacts=3000, seed=5), ["hubspot", "pipedrive"]) as server:
        bare, ambiguous = _strip_and_collide(server)
        opened = {}
        try:
            for order in ORDERS:
                store = opened[order] = Store(f"sqlite:///{folder / ('-'.join(order) + '.db')}")
                for source in order:
                    connector = plugin(source).sandbox_connector(server.base_url(source), time_scale=TIME_SCALE)
                    mapping = load_mapping(store, connector, ROOT / "mappings" / f"{source}.yaml")
                    Syncer(store, connector, mapping).backfill()
            yield server, opened, bare, ambiguous
        finally:
            for store in opened.values():
                store.close()


@pytest.fixture(scope="module")
def both(stores):
    server, opened, _, _ = stores
    return server, opened[ORDERS[0]]


def test_the_seeded_overlap_of_people_yields_exactly_that_many_merged_persons(both) -> None:
    server, store = both
    overlap = server.vendor("pipedrive").state.overlap()["persons"]
    merged = [ids for ids in _pairs(store, EntityType.PERSON) if len(ids) == 2]

    assert len(overlap) > 50
    assert len(merged) == len(overlap)
    assert all(set(ids) == {"pipedrive", "hubspot"} for ids in merged)
    assert {ids["pipedrive"]: ids["hubspot"] for ids in merged} == {
        str(pid): str(record_id("contacts", world)) for pid, world in overlap.items()}


def _pairs(store: Store, entity: EntityType) -> list[dict[str, str]]:
    return [{m.source: m.source_id for m in members} for _, members in store.identities.groups(entity)]


def _groups(store: Store, entity: EntityType) -> set[frozenset[tuple[str, str]]]:
    return {frozenset((m.source, m.source_id) for m in members) for _, members in store.identities.groups(entity)}


def test_companies_are_the_sandboxs_truth_whichever_crm_is_backfilled_first(stores) -> None:
    server, opened, bare, ambiguous = stores
    truth = {str(oid): str(record_id("companies", world))
             for oid, world in server.vendor("pipedrive").state.overlap()["organizations"].items()}
    # Every organization of the world both CRMs hold is paired with its HubSpot company, except those
    # whose name, their only key, another Pipedrive organization now bears: those stay apart.
    paired = {("pipedrive", oid): ("hubspot", hid) for oid, hid in truth.items() if oid not in ambiguous}
    found = {order: _groups(store, EntityType.COMPANY) for order, store in opened.items()}

    assert found[ORDERS[0]] == found[ORDERS[1]]
    for store in opened.values():
        companies = {("hubspot", c.source_id) for c in store.records.iter(EntityType.COMPANY, "hubspot")} | {
            ("pipedrive", c.source_id) for c in store.records.iter(EntityType.COMPANY, "pipedrive")}
        partnered = set(paired) | set(paired.values())
        expected = {frozenset(pair) for pair in paired.items()} | {
            frozenset({ref}) for ref in companies - partnered}
        assert _groups(store, EntityType.COMPANY) == expected
        assert len(bare - ambiguous) > 10 and len(ambiguous) >= 3  # the name fallback had work, both ways
        conflicts = store.identities.name_conflicts()
        held_apart = {k.source_id for c in conflicts for k in c.records if k.source == "pipedrive"}
        assert ambiguous <= held_apart


def test_people_are_the_same_whichever_crm_is_backfilled_first(stores) -> None:
    _, opened, _, _ = stores
    first, second = (_groups(opened[order], EntityType.PERSON) for order in ORDERS)
    assert first == second


def test_every_record_keeps_its_own_source_id(both) -> None:
    _, store = both
    people = store.records.counts()
    hubspot_people = people["hubspot"]["contacts"]["live"]
    pipedrive_people = people["pipedrive"]["persons"]["live"]
    pairs = _pairs(store, EntityType.PERSON)
    assert sum(1 for ids in pairs if "hubspot" in ids) == hubspot_people
    assert sum(1 for ids in pairs if "pipedrive" in ids) == pipedrive_people


def test_an_email_change_in_one_crm_does_not_create_a_second_person(both, tmp_path: Path) -> None:
    server, store = both
    pipedrive = server.vendor("pipedrive")
    pid, world = next(iter(pipedrive.state.overlap()["persons"].items()))
    before = store.identities.count(EntityType.PERSON)
    pipedrive.state.update("persons", int(pid), {"emails": [{"value": "renamed.person@elsewhere.example",
                                                             "primary": True, "label": "work"}]})
    try:
        connector = plugin("pipedrive").sandbox_connector(server.base_url("pipedrive"), time_scale=TIME_SCALE)
        report = Syncer(store, connector, load_mapping(store, connector, ROOT / "mappings" / "pipedrive.yaml")
                        ).sync(["persons"])
    finally:
        pipedrive.reset()
    assert str(pid) in report.streams["persons"].stored.changed_ids
    assert store.records.get(EntityType.PERSON, "pipedrive", str(pid)).email == "renamed.person@elsewhere.example"
    assert store.identities.count(EntityType.PERSON) == before
    assert store.identities.canonical_id(EntityType.PERSON, "pipedrive", str(pid)) == store.identities.canonical_id(
        EntityType.PERSON, "hubspot", str(record_id("contacts", world)))
