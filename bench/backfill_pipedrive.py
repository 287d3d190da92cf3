"""Backfill the Pipedrive sandbox into a fresh SQLite store and print what it cost.

Prints records per second and tokens per 1,000 records against the floor: a v2 list page costs 10
tokens whatever its size, so reading N records of a list stream cannot cost less than
10 x ceil(N / 500) tokens. With ``--reconcile`` it then prices ``crmbridge sync --reconcile`` (every
live id of persons, organizations, deals and activities, which is how deletions Pipedrive lists
nowhere are found) against a plain incremental pass. Figures come from the sandbox's own counters
(tokens spent, calls per endpoint, 429s sent), not from the client's.

    .venv/bin/python bench/backfill_pipedrive.py --contacts 100000 --reconcile
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from crmbridge.connectors import SandboxOptions, plugin
from crmbridge.sandbox import SandboxServer
from crmbridge.store import Store
from crmbridge.sync import Syncer, load_mapping

MAPPING = Path(__file__).resolve().parents[1] / "mappings" / "pipedrive.yaml"
LIST_STREAMS = {"organizations": "organizations", "persons": "persons", "deals": "deals",
                "activities": "activities"}
PAGE, PAGE_TOKENS = 500, 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000, help="people in the seeded world")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--plan", default="growth", choices=["lite", "growth", "premium", "ultimate"])
    parser.add_argument("--time-scale", type=float, default=1.0, help="1.0 = Pipedrive's real burst window")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--dry-run", action="store_true", help="read and map, store nothing (the connector's pace)")
    parser.add_argument("--reconcile", action="store_true", help="then price a reconciling sync against a plain one")
    args = parser.parse_args()
    if args.dry_run and args.reconcile:
        parser.error("--reconcile needs a stored backfill (drop --dry-run)")

    options = SandboxOptions(seed=args.seed, contacts=args.contacts, time_scale=args.time_scale,
                             extra={"pipedrive_plan": args.plan, "anchor": "2026-06-01"})
    started = time.perf_counter()
    with SandboxServer(options, sources=["pipedrive"]) as server, tempfile.TemporaryDirectory() as tmp:
        print(f"sandbox: {args.contacts:,} world contacts, plan {args.plan}, time scale {args.time_scale} "
              f"(ready in {time.perf_counter() - started:.1f} s)")
        vendor = server.vendor("pipedrive")
        connector = plugin("pipedrive").sandbox_connector(server.base_url("pipedrive"), time_scale=args.time_scale)
        with Store(f"sqlite:///{Path(tmp) / 'bench.db'}") as store:
            vendor.reset_stats()
            began = time.perf_counter()
            # As the CLI does: labels resolved against the account's field catalogs (part of the cost).
            mapping = load_mapping(store, connector, MAPPING)
            report = Syncer(store, connector, mapping, workers=args.workers, dry_run=args.dry_run).backfill()
            seconds = time.perf_counter() - began
            stats = vendor.stats()
            if args.reconcile:
                plain, reconciling = (_sync_tokens(server, store, reconcile=r) for r in (False, True))
    records = sum(s.records for s in report.streams.values())
    counts = stats["counts"]
    floor_pages = sum(math.ceil(counts[kind] / PAGE) for kind in LIST_STREAMS.values())
    floor_tokens = PAGE_TOKENS * floor_pages
    list_calls = sum(stats["calls"].get(f"GET /api/v2/{kind}", 0) for kind in LIST_STREAMS.values())
    tokens = stats["tokens_spent"]
    print(f"records: {records:,} in {seconds:.1f} s = {records / seconds:,.0f} records/s "
          f"({args.workers} workers)")
    for name, stream in report.streams.items():
        print(f"  {name:<14}{stream.records:>9,} records{stream.pages:>6} pages")
    allowed = stats["limits"]["burst_limit"] / 2.0 * args.time_scale
    print(f"request rate: {stats['total_calls'] / seconds:.1f} requests/s; the plan allows {allowed:.0f}/s"
          + (" (dry run: nothing stored)" if args.dry_run else ""))
    print(f"calls: {stats['total_calls']:,} in all; list pages {list_calls} against a floor of {floor_pages} "
          f"({list_calls / floor_pages:.3f} x)")
    for endpoint, n in stats["calls"].items():
        print(f"  {endpoint:<32}{n:>6}")
    print(f"tokens: {tokens:,} spent, floor {floor_tokens:,} ({tokens / floor_tokens:.3f} x); "
          f"{1000 * tokens / records:.2f} tokens per 1,000 records (floor {1000 * floor_tokens / records:.2f})")
    print(f"429s sent: {stats['rate_limited']}, CDN refusals: {stats['cdn_refused']}, retries: {report.retries}; "
          f"daily budget left: {stats['limits']['daily_tokens_left']:,} of {stats['limits']['daily_tokens']:,}")
    if args.reconcile:
        live = sum(counts[kind] for kind in LIST_STREAMS.values())
        extra = reconciling[0] - plain[0]
        print(f"sync with no change: {plain[1]} calls, {plain[0]} tokens; with --reconcile: {reconciling[1]} calls, "
              f"{reconciling[0]} tokens")
        print(f"reconcile: {extra:,} tokens for {live:,} live records = {1000 * extra / live:.2f} tokens per 1,000 "
              f"(floor {1000 * floor_tokens / live:.2f}: one 500-id page, 10 tokens)")


def _sync_tokens(server: SandboxServer, store: Store, *, reconcile: bool) -> tuple[int, int]:
    """(tokens, calls) of one incremental pass in a fresh connector, as a new ``crmbridge sync`` would."""
    vendor = server.vendor("pipedrive")
    connector = plugin("pipedrive").sandbox_connector(server.base_url("pipedrive"),
                                                      time_scale=server.options.time_scale)
    vendor.reset_stats()
    Syncer(store, connector, load_mapping(store, connector, MAPPING)).sync(reconcile=reconcile)
    stats = vendor.stats()
    return int(stats["tokens_spent"]), int(stats["total_calls"])


if __name__ == "__main__":
    main()
