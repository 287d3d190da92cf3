"""Identity across both CRMs against the sandboxes' own truth, in both orders of backfill.

    .venv/bin/python bench/identity.py                          # 20,000 contacts, 7 % of organizations bare
    .venv/bin/python bench/identity.py --contacts 2000 --bare-every 0

Both sandboxes render one seeded world; Pipedrive's knows which of its organizations and persons
are which world company and person (its overlap), and HubSpot's ids follow from the world's index.
``--bare-every k`` takes the website off every k-th organization both CRMs hold, so that only its
name can match it. Each order (HubSpot first, Pipedrive first) is backfilled into its own SQLite
store; the figures are the precision and recall of the cross-CRM pairs, how many company pairs have
no common domain behind them (matched by name), how many names were left apart for review, and
whether both orders produced the same identities.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from crmbridge.connectors import SandboxOptions, plugin
from crmbridge.model import EntityType
from crmbridge.sandbox import SandboxServer
from crmbridge.store import Store
from crmbridge.sync import Syncer, load_mapping

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = "2026-11-01T00:00:00Z"
ORDERS = (("hubspot", "pipedrive"), ("pipedrive", "hubspot"))
SCALE = 1000.0  # the sandboxes' limits sped up so that they never bind


def _strip_websites(server: SandboxServer, every: int) -> int:
    if every <= 0:
        return 0
    state = server.vendor("pipedrive").state
    website = state.catalogs.key("organization", "Website")
    bare = sorted(state.overlap()["organizations"])[::every]
    for oid in bare:
        state.update("organizations", oid, {"custom_fields": {website: None}})
    return len(bare)


def _truth(server: SandboxServer) -> dict[str, set[tuple[str, str]]]:
    from crmbridge_hubspot.sandbox.render import record_id

    overlap = server.vendor("pipedrive").state.overlap()
    return {entity: {(str(pid), str(record_id(kind, world))) for pid, world in overlap[key].items()}
            for entity, key, kind in (("person", "persons", "contacts"), ("company", "organizations", "companies"))}


def _groups(store: Store, entity: EntityType) -> set[frozenset[tuple[str, str]]]:
    return {frozenset((m.source, m.source_id) for m in members) for _, members in store.identities.groups(entity)}


def _pairs(groups: set[frozenset[tuple[str, str]]]) -> set[tuple[str, str]]:
    out = set()
    for group in groups:
        ids = dict(group)
        if "pipedrive" in ids and "hubspot" in ids:
            out.add((ids["pipedrive"], ids["hubspot"]))
    return out


def _by_name(store: Store) -> int:
    """Company pairs without a common domain: the name fallback made them."""
    n = 0
    for _, members in store.identities.groups(EntityType.COMPANY):
        domains = {getattr(m, "domain", None) for m in members}
        if len(members) > 1 and (None in domains or len(domains) > 1):
            n += 1
    return n


def run(contacts: int, bare_every: int, workdir: Path) -> dict[str, Any]:
    options = SandboxOptions(seed=42, contacts=contacts, time_scale=SCALE, extra={"anchor": ANCHOR})
    out: dict[str, Any] = {"contacts": contacts}
    with SandboxServer(options, ["hubspot", "pipedrive"]) as server:
        out["bare_organizations"] = _strip_websites(server, bare_every)
        truth = _truth(server)
        found = {}
        for order in ORDERS:
            started = time.perf_counter()
            with Store(f"sqlite:///{workdir / ('-'.join(order) + '.db')}") as store:
                for source in order:
                    connector = plugin(source).sandbox_connector(server.base_url(source), time_scale=SCALE)
                    mapping = load_mapping(store, connector, ROOT / "mappings" / f"{source}.yaml")
                    Syncer(store, connector, mapping).backfill()
                groups = {e: _groups(store, e) for e in (EntityType.PERSON, EntityType.COMPANY)}
                found[order] = groups
                figures: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 1),
                                           "by_name": _by_name(store), "review": len(store.identities.name_conflicts())}
            for entity in (EntityType.PERSON, EntityType.COMPANY):
                pairs, real = _pairs(groups[entity]), truth[entity.value]
                right = len(pairs & real)
                figures[entity.value] = {"truth": len(real), "paired": len(pairs), "wrong": len(pairs - real),
                                         "precision": round(right / len(pairs), 4) if pairs else 1.0,
                                         "recall": round(right / len(real), 4) if real else 1.0}
            out["-".join(order) + "_first"] = figures
        out["same_identities_both_orders"] = found[ORDERS[0]] == found[ORDERS[1]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--bare-every", type=int, default=14, help="strip the website of every k-th shared "
                        "organization (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(args.contacts, args.bare_every, Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
