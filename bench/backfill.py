"""Backfill benchmark on the sandboxes: speed, API economy, rate-limit use and memory.

    .venv/bin/python bench/backfill.py                    # HubSpot at 10k and 100k contacts, rate run at
                                                          # 10k, then Pipedrive at 100k
    .venv/bin/python bench/backfill.py --source hubspot --sizes 10000 --skip-rate

For each size, a real ``crmbridge backfill`` process pulls the sandbox (its limits sped up so they
never bind) into a fresh SQLite store; the figures are its records/s, its list calls against the
page-size floor (every object type's records divided by its page size, rounded up), and its peak
RSS. The rate run then slows the sandbox to HubSpot's real pace, where the limit binds, and reports
the share of the allowed request rate the backfill sustained and how many requests got a 429.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from crmbridge.connectors import SandboxOptions
from crmbridge.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parents[1]
CRMBRIDGE = Path(sys.executable).with_name("crmbridge")
CRM_TYPES = ("contacts", "companies", "deals", "calls", "emails", "meetings", "notes", "tasks")
ANCHOR = "2026-11-01T00:00:00Z"


def _floor(sandbox: Any) -> int:
    """The fewest list calls that can return every record: each type's count over its page size."""
    pages = sum(math.ceil(sandbox.count(t) / 100) for t in CRM_TYPES)
    pages += math.ceil(len(sandbox.world.behaviours) / 100)  # web analytics events
    pages += 2 + 1 + 1  # owners (active and inactive lists), deal pipelines, forms
    return pages


class HighWater:
    """The child's own peak RSS (``VmHWM``), read while it runs.

    ``ru_maxrss`` from ``wait4`` is no use here: Linux carries the high-water mark of the forking
    process over ``exec``, so the child would report the benchmark's own size, sandbox included.
    """

    def __init__(self, pid: int) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.peak_kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(0.1):
            try:
                text = self.path.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def stop(self) -> int:
        self._done.set()
        self._thread.join(timeout=5)
        return self.peak_kb


def _backfill(server: SandboxServer, time_scale: float, workdir: Path) -> tuple[dict[str, Any], float, Any]:
    database = workdir / f"bench-{time.monotonic_ns()}.db"
    env = {**os.environ, "CRMBRIDGE_SOURCES": "hubspot", "CRMBRIDGE_DATABASE_URL": f"sqlite:///{database}",
           "CRMBRIDGE_HUBSPOT_BASE_URL": server.base_url("hubspot"), "CRMBRIDGE_HUBSPOT_ACCESS_TOKEN": "sandbox",
           "CRMBRIDGE_HUBSPOT_SEARCH_PER_SECOND": str(5 * time_scale), "CRMBRIDGE_LOG_LEVEL": "WARNING"}
    out = workdir / "report.json"
    started = time.perf_counter()
    with out.open("w") as sink:
        child = subprocess.Popen([str(CRMBRIDGE), "backfill", "--format", "json"], env=env, stdout=sink,
                                 stderr=subprocess.DEVNULL, cwd=ROOT)
        watcher = HighWater(child.pid)
        _, status, usage = os.wait4(child.pid, 0)
        usage = (usage, watcher.stop())
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"backfill failed with status {status}")
    return json.loads(out.read_text()), elapsed, usage


def speed_and_memory(contacts: int, workdir: Path) -> dict[str, Any]:
    scale = 1000.0
    options = SandboxOptions(seed=42, contacts=contacts, time_scale=scale, extra={"anchor": ANCHOR})
    with SandboxServer(options, ["hubspot"]) as server:
        sandbox = server.vendor("hubspot")
        report, elapsed, usage = _backfill(server, scale, workdir)
        floor = _floor(sandbox)
    records = sum(s["records"] for s in report["streams"].values())
    pulling = report["seconds"]  # the backfill proper; the command then scores everyone it pulled
    return {
        "contacts": contacts,
        "records": records,
        "seconds": round(pulling, 1),
        "records_per_s": round(records / pulling),
        "scoring_seconds": round(report["scoring"].get("seconds", 0.0), 1),
        "command_seconds": round(elapsed, 1),
        "api_calls": report["api_calls"],
        "floor": floor,
        "calls_vs_floor": round(report["api_calls"] / floor, 3),
        "calls_per_1000_records": round(1000 * report["api_calls"] / records, 2),
        "peak_rss_mb": round(usage[1] / 1024, 1),
        "cpu_s": round(usage[0].ru_utime + usage[0].ru_stime, 1),
    }


def rate_limit_share(contacts: int, tier: str, time_scale: float, workdir: Path) -> dict[str, Any]:
    """Requests per window while the limit binds, against the tier's allowance; 429s counted."""
    stamps: list[tuple[float, int, str]] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        stamps.append((time.monotonic(), response.status, request.path))
        return response

    options = SandboxOptions(seed=42, contacts=contacts, time_scale=time_scale,
                             extra={"anchor": ANCHOR, "hubspot_tier": tier})
    server = SandboxServer(options, ["hubspot"])
    server.app.middlewares.append(record)
    with server:
        limits = server.vendor("hubspot").stats()["limits"]
        _, elapsed, _ = _backfill(server, time_scale, workdir)
    window = limits["interval_ms"] / 1000
    calls = [(t, s) for t, s, path in stamps if "/_sandbox" not in path and not path.endswith("/search")]
    # Over k whole windows from the first request the limit allows k * burst requests (no rolling
    # window may hold more than burst); the share is how much of that the backfill used.
    start = calls[0][0]
    k = int((calls[-1][0] - start) // window)
    steady = [t for t, s in calls if t < start + k * window and s != 429]
    allowed = limits["burst"] * k
    return {
        "tier": tier,
        "time_scale": time_scale,
        "limit": f"{limits['burst']} per {window:g} s",
        "seconds": round(elapsed, 1),
        "requests": len(calls),
        "share_of_limit_used": round(len(steady) / allowed, 3) if allowed > 0 else None,
        "answered_429": sum(1 for _, s in calls if s == 429),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="contact counts, comma-separated")
    parser.add_argument("--rate-contacts", type=int, default=10000)
    parser.add_argument("--rate-tier", default="professional")
    parser.add_argument("--rate-scale", type=float, default=1.0, help="1 = HubSpot's real windows")
    parser.add_argument("--skip-rate", action="store_true")
    parser.add_argument("--source", choices=["hubspot", "pipedrive", "all"], default="all")
    parser.add_argument("--pipedrive-contacts", type=int, default=100_000)
    args = parser.parse_args()
    if args.source in ("hubspot", "all"):
        hubspot(args)
    if args.source in ("pipedrive", "all"):
        # Pipedrive's economy is in tokens (a list page costs 10 whatever its size); its own script
        # prints records/s and tokens per 1,000 records against that floor.
        print("pipedrive:", flush=True)
        subprocess.run([sys.executable, str(Path(__file__).with_name("backfill_pipedrive.py")), "--contacts",
                        str(args.pipedrive_contacts), "--reconcile"], check=True, cwd=ROOT)


def hubspot(args: argparse.Namespace) -> None:
    results: dict[str, Any] = {"speed_and_memory": [], "rate_limit": None}
    with tempfile.TemporaryDirectory(prefix="crmbridge-bench-") as tmp:
        for size in (int(s) for s in args.sizes.split(",") if s):
            row = speed_and_memory(size, Path(tmp))
            results["speed_and_memory"].append(row)
            print(f"{size:>7,} contacts: {row['records']:>9,} records in {row['seconds']:>6} s = "
                  f"{row['records_per_s']:>6,} records/s; {row['api_calls']:,} calls vs floor {row['floor']:,} "
                  f"= {row['calls_vs_floor']}x ({row['calls_per_1000_records']} per 1,000 records); then "
                  f"{size:,} people scored in {row['scoring_seconds']} s; peak RSS {row['peak_rss_mb']} MB",
                  flush=True)
        if not args.skip_rate:
            rate = rate_limit_share(args.rate_contacts, args.rate_tier, args.rate_scale, Path(tmp))
            results["rate_limit"] = rate
            print(f"rate limit {rate['limit']} ({rate['tier']}, time scale {rate['time_scale']}): "
                  f"{rate['share_of_limit_used']:.1%} of the allowed rate sustained over {rate['seconds']} s, "
                  f"{rate['answered_429']} requests answered 429", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
