"""Write-back on the sandboxes: what hand-offs and person updates cost in write calls, and how fast.

Backfills both sandbox CRMs into a fresh SQLite store, scores everyone, runs ``setup``, then prices
three passes from the sandboxes' own call counters:

1. the first pass: every SQL handed off (deals created or reused) and every person's fields written;
   HubSpot batch-update calls against the floor ceil(people / 100);
2. a pass right after it, with nothing changed: write calls (target 0);
3. a pass after ``--changed`` people's engagement moved: HubSpot batch-update calls against
   ceil(changed / 100).

    .venv/bin/python bench/writeback.py --contacts 10000 --changed 1000
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from crmbridge.connectors import SandboxOptions, plugin
from crmbridge.identity import load_policy
from crmbridge.logs import configure
from crmbridge.notify import Notifier
from crmbridge.rescore import Rescorer
from crmbridge.sandbox import SandboxServer
from crmbridge.scoring import ScoringModel
from crmbridge.settings import load_settings
from crmbridge.store import Store
from crmbridge.store.store import now_ms
from crmbridge.sync import Syncer, load_mapping
from crmbridge.writeback.build import build_writeback

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("hubspot", "pipedrive")
HUBSPOT_BATCH = "POST /crm/v3/objects/contacts/batch/update"


def writes(calls: Counter[str]) -> Counter[str]:
    return Counter({e: n for e, n in calls.items() if not e.startswith("GET") and "/search" not in e
                    and "batch/read" not in e and n})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--time-scale", type=float, default=100.0, help="speeds up the vendors' rate windows")
    args = parser.parse_args()

    configure("WARNING", "console")
    settings = load_settings()
    options = SandboxOptions(seed=args.seed, contacts=args.contacts, time_scale=args.time_scale)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(options, list(SOURCES)) as server, \
            Store(f"sqlite:///{Path(tmp) / 'store.db'}") as store:
        connectors = {s: plugin(s).sandbox_connector(server.base_url(s), time_scale=args.time_scale) for s in SOURCES}
        for source, c in connectors.items():
            Syncer(store, c, load_mapping(store, c, ROOT / "mappings" / f"{source}.yaml")).backfill()
        Rescorer(store, ScoringModel.load(settings.scoring_model_path), load_policy(settings.merge_policy_file)).run()
        wb = build_writeback(settings, store, connectors, notifier=Notifier())
        wb.overlap_ms = 0  # the passes follow each other within seconds
        wb.setup()

        def counted() -> dict[str, Counter[str]]:
            return {s: Counter(server.vendor(s).stats()["calls"]) for s in SOURCES}

        print(f"sandbox: {args.contacts:,} contacts, both CRMs, time scale {args.time_scale:g}")
        before, started = counted(), time.perf_counter()
        first = wb.run()
        seconds = time.perf_counter() - started
        spent = {s: writes(counted()[s] - before[s]) for s in SOURCES}
        outcomes = first.handoffs.outcomes
        actions = Counter(o.action for o in outcomes)
        people = first.applied.written if first.applied else {}
        print(f"first pass: {len(outcomes):,} hand-offs ({dict(actions)}) and {sum(people.values()):,} people "
              f"written in {seconds:.1f} s")
        hub = people.get("hubspot", 0)
        print(f"  hubspot: {spent['hubspot'][HUBSPOT_BATCH]} batch-update calls for {hub:,} contacts "
              f"(floor {math.ceil(hub / 100)}), {spent['hubspot']['POST /crm/v3/objects/deals']} deals created")
        print(f"  pipedrive: {spent['pipedrive']['PATCH /api/v2/persons/{id}']} person updates for "
              f"{people.get('pipedrive', 0):,} people (no batch endpoint), "
              f"{spent['pipedrive']['POST /api/v2/deals']} deals created")

        before, started = counted(), time.perf_counter()
        again = wb.run(full=True)
        seconds = time.perf_counter() - started
        idle = sum(sum(writes(counted()[s] - before[s]).values()) for s in SOURCES)
        print(f"pass with nothing changed: {len(again.handoffs.outcomes)} hand-offs, {idle} write calls (target 0), "
              f"{again.plan.considered:,} people planned in {seconds:.1f} s (full pass)")
        started = time.perf_counter()
        quick = wb.run()
        print(f"incremental pass with nothing changed: {quick.plan.considered:,} people planned, "
              f"{len(quick.plan.changes)} writes, {time.perf_counter() - started:.2f} s")

        held = sa.text("SELECT person_id FROM writeback_state WHERE source = 'hubspot' ORDER BY source_id LIMIT :n")
        with store.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(held, {"n": args.changed})]
            moved = "UPDATE scores SET engagement = engagement + 7, scored_ms = :now WHERE person_id = :p"
            conn.execute(sa.text(moved), [{"p": p, "now": now_ms()} for p in ids])
        before = counted()
        changed = wb.run()
        hub_changed = sum(1 for c in changed.plan.changes if c.source == "hubspot")
        calls = (counted()["hubspot"] - before["hubspot"])[HUBSPOT_BATCH]
        print(f"pass after {len(ids):,} people changed: {hub_changed:,} HubSpot contacts in {calls} batch-update "
              f"calls (floor {math.ceil(hub_changed / 100)}, {calls / max(1, math.ceil(hub_changed / 100)):.2f}x)")


if __name__ == "__main__":
    main()
