"""SLA benchmark: one tick over 100,000 open hand-offs, and the report over 1,000,000. Prints figures, asserts nothing.

1. tick — N done hand-offs (default 100,000) in a fresh store, with what a store holding them would
   also hold (their people's identities, their deals, three older activities each); the engine's own
   ``start`` opens their clocks (timed apart), then every ladder step due before the previous tick is
   marked taken, as earlier ticks would have left it. The hand-offs are spread so that about 1.5 % of
   them have a step due in each 30-second tick interval (a reminder or an escalation) and a few dozen
   calls and deal moves arrive before each tick. Three ticks 30 s apart are timed, first with no
   notifier (steps recorded), then on a second copy of the world with a Slack webhook notifier posting
   to a recording receiver on loopback (real HTTP deliveries). The ticks run in a child process, so
   its peak RSS is the engine's, not the generator's.
2. report — first-touch clocks (settled, open, closed, reassigned) and their ladder steps inserted in
   bulk; ``sla_report`` overall and by owner, and ``crmbridge sla report --format json`` as its own
   process, at 100,000 and again at 1,000,000 hand-offs, each in a fresh process with its peak RSS,
   to show whether memory grows with N.

CPU time is printed beside wall time because the machine may be shared; on PostgreSQL the CPU time is
this process's only (the server works on another core).

    .venv/bin/python bench/sla.py [--store sqlite|postgres] [--open 100000] [--report 1000000]
    .venv/bin/python bench/sla.py --store postgres --skip-tick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from backfill import HighWater  # a child's own peak RSS, as every benchmark here reads it

ROOT = Path(__file__).resolve().parents[1]
CRMBRIDGE = Path(sys.executable).with_name("crmbridge")
TICK_AT = datetime(2026, 3, 11, 14, 0, tzinfo=UTC)  # a Wednesday afternoon, inside office hours
INTERVAL_MS = 30_000  # the daemon's default CRMBRIDGE_SLA_TICK_SECONDS
TICKS = 3
DUE_SHARE = 0.015  # hand-offs with a step due in each tick interval
OWNERS = 50
CHUNK = 20_000


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def fresh_store(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir}/sla-{uuid.uuid4().hex[:8]}.db"
    base = os.environ.get("CRMBRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    from crmbridge.store.engine import create_engine_for

    engine = create_engine_for(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def drop_store(url: str) -> None:
    if url.startswith("sqlite"):
        Path(sa.make_url(url).database or "").unlink(missing_ok=True)
        return
    from crmbridge.store.engine import create_engine_for

    schema = url.rsplit("%3D", 1)[1]
    engine = create_engine_for(url.split("?options=")[0].split("&options=")[0])
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


# -- bulk rows -----------------------------------------------------------------------------------------

_PG_TYPES = {"BIGINT": "bigint", "INTEGER": "integer", "FLOAT": "float8", "BOOLEAN": "boolean"}


def bulk_insert(store: Any, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Rows in chunks: executemany on SQLite, INSERT ... SELECT FROM unnest(arrays) on PostgreSQL."""
    if not rows:
        return
    cols = list(rows[0])
    with store.engine.begin() as conn:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            if store.dialect == "postgresql":
                types = [_PG_TYPES.get(str(table.c[c].type.compile(store.engine.dialect)).split("(")[0], "text")
                         for c in cols]
                arrays = ", ".join(f"%s::{t}[]" for t in types)
                sql = f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT * FROM unnest({arrays})"
                conn.exec_driver_sql(sql, tuple([r[c] for r in chunk] for c in cols))
            else:
                sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                conn.exec_driver_sql(sql, [tuple(r[c] for c in cols) for r in chunk])


def entity_row(source: str, stream: str, source_id: str, data: str, stored: int, **extra: Any) -> dict[str, Any]:
    return {"source": source, "stream": stream, "source_id": source_id, "data": data,
            "content_hash": uuid.uuid4().hex, "source_updated_ms": None, "archived": False, "archived_ms": None,
            "merged_into": None, "stored_ms": stored, **extra}


# -- 1. the tick ---------------------------------------------------------------------------------------


def handoff_instants(n: int, rng: random.Random) -> list[int]:
    """When each hand-off was done: DUE_SHARE of them per tick interval so that a reminder (45 business
    minutes in) or an escalation (60) falls due in it, the rest over the previous month."""
    tick = ms(TICK_AT)
    out: list[int] = []
    for k in range(TICKS):
        window_end = tick + k * INTERVAL_MS
        for i in range(int(n * DUE_SHARE)):
            minutes = 45 if i % 3 else 60
            out.append(window_end - minutes * 60_000 - rng.randrange(INTERVAL_MS))
    month = 30 * 86_400_000
    out += [tick - 86_400_000 - rng.randrange(month) for _ in range(n - len(out))]
    rng.shuffle(out)
    return out


def build_tick_world(url: str, n: int, seed: int) -> dict[str, float]:
    from crmbridge.sla.config import SlaConfig
    from crmbridge.sla.engine import SlaEngine
    from crmbridge.store import Store, schema
    from crmbridge.store.cursors import Watermark

    rng = random.Random(seed)
    stored_long_ago = int(time.time() * 1000) - 86_400_000
    store = Store(url)
    started = time.perf_counter()
    done = handoff_instants(n, rng)
    identities, handoffs, deals, activities = [], [], [], []
    for i, at in enumerate(done):
        owner = i % OWNERS
        identities.append({"entity": "person", "source": "hubspot", "source_id": f"c{i}", "canonical_id": i + 1,
                           "linked_ms": at - 86_400_000})
        identities.append({"entity": "person", "source": "pipedrive", "source_id": f"p{i}", "canonical_id": i + 1,
                           "linked_ms": at})
        summary = {"person": f"Lead {i}", "email": f"lead{i}@acme.example",
                   "owner_email": f"seller{owner}@lumen.example", "owner_label": f"Seller {owner}", "score": 60,
                   "reasons": ["Contact request form (+50)"]}
        handoffs.append({"key": f"cb-bench-{i}", "person_id": i + 1, "company_id": None, "target": "pipedrive",
                         "status": "done", "deal_id": f"d{i}", "reused": False, "owner_id": f"u{owner}",
                         "mode": "assigned", "rule": "bench", "reason": "bench", "title": f"Lead {i} deal",
                         "summary": orjson.dumps(summary).decode(), "created_ms": at - 5_000, "done_ms": at,
                         "generation": 1})
        deals.append(entity_row("pipedrive", "deals", f"d{i}", orjson.dumps(
            {"source": "pipedrive", "source_id": f"d{i}", "stage_id": "7", "status": "open"}).decode(),
            stored_long_ago))
        for j in range(3):  # what marketing and sales did before the hand-off: long observed
            activities.append(entity_row("pipedrive", "activities", f"a{i}-{j}", "{}", stored_long_ago,
                                         kind=("email_sent", "note", "call")[j], occurred_ms=at - (j + 1) * 3_600_000))
    for table, rows in ((schema.identities, identities), (schema.handoffs, handoffs), (schema.deals, deals),
                        (schema.activities, activities)):
        bulk_insert(store, table, rows)
    store.provisioned.put("pipedrive", {"pipeline_id": "1", "stage_id": "7", "field_keys": {}})
    generated = time.perf_counter() - started
    engine = SlaEngine(store, SlaConfig.default())
    t0, c0 = time.perf_counter(), time.process_time()
    clocks = engine.start(ms(TICK_AT) - INTERVAL_MS)
    start_s, start_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    taken = fast_forward(store, engine, ms(TICK_AT) - INTERVAL_MS)
    engine.ledger.mark_breached(ms(TICK_AT) - INTERVAL_MS, ms(TICK_AT) - INTERVAL_MS)
    store.cursors.advance("_sla", "observe", "stored", Watermark(int(time.time() * 1000)))
    forward_s = time.perf_counter() - t0
    store.close()
    return {"generated_s": generated, "clocks": clocks, "start_s": start_s, "start_cpu_s": start_cpu,
            "steps_before": taken, "forward_s": forward_s}


def fast_forward(store: Any, engine: Any, before: int) -> int:
    """Every ladder step due up to ``before`` marked taken (recorded), as the earlier ticks would have."""
    from crmbridge.sla.calendar import SlaClock
    from crmbridge.sla.config import ladder_steps
    from crmbridge.sla.engine import _next_step
    from crmbridge.store import schema

    c = schema.sla_clocks.c
    with store.engine.connect() as conn:
        clocks = [r._asdict() for r in conn.execute(sa.select(
            c.id, c.policy, c.owner_id, c.owner_email, c.team, c.started_ms, c.budget_minutes, c.reassignments,
            c.next_step).where(c.status == "open", c.next_ms <= before))]
    steps, moves = [], []
    for clock in clocks:
        policy = engine._policies[clock["policy"]]
        ladder = ladder_steps(policy)
        sla_clock = SlaClock(engine.calendar_of(clock["owner_id"], clock["owner_email"], clock["team"], policy))
        budget, start, i = float(clock["budget_minutes"]), int(clock["started_ms"]), int(clock["next_step"])
        while i < len(ladder) and (due := ladder[i].due_ms(sla_clock, start, budget)) <= before:
            if ladder[i].kind != "reassign":  # with no reassigner a reassignment step is passed, not taken
                steps.append({"clock_id": clock["id"], "kind": ladder[i].kind, "seq": ladder[i].seq, "due_ms": due,
                              "taken_ms": due, "status": "recorded", "recipient": clock["owner_email"],
                              "reason": "bench", "channels": "[]", "attempts": 0, "next_ms": None})
            i = _next_step(ladder, i + 1, int(clock["reassignments"]), policy)
        next_ms = ladder[i].due_ms(sla_clock, start, budget) if i < len(ladder) else None
        moves.append((i, next_ms, clock["id"]))
    bulk_insert(store, schema.sla_steps, steps)
    mark = "?" if store.dialect == "sqlite" else "%s"
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE sla_clocks SET next_step = {mark}, next_ms = {mark} WHERE id = {mark}", moves)
    return len(steps)


def arrivals(store: Any, n: int, k: int, rng: random.Random) -> None:
    """What the CRMs sent since the last tick: calls, e-mails and notes (one in five not by the owner), deals
    moved out of the hand-off stage or lost."""
    from crmbridge.model import Activity, ActivityKind, ActorKind, Deal, DealStatus, EntityType

    at = datetime.fromtimestamp((ms(TICK_AT) + k * INTERVAL_MS - 60_000) / 1000, UTC)
    leads = rng.sample(range(n), 120)
    acts = [Activity(source="pipedrive", source_id=f"t{k}-{i}", kind=rng.choice(
        [ActivityKind.CALL, ActivityKind.EMAIL_SENT, ActivityKind.NOTE]), occurred_at=at, person_ids=[f"p{i}"],
        owner_id=f"u{i % OWNERS}", actor=ActorKind.PERSON if j % 5 == 0 else None)
        for j, i in enumerate(leads[:100])]
    deals = [Deal(source="pipedrive", source_id=f"d{i}", stage_id="8" if j % 2 else "7",
                  status=DealStatus.LOST if j % 2 == 0 else DealStatus.OPEN, owner_id=f"u{i % OWNERS}",
                  person_ids=[f"p{i}"], updated_at=at, closed_at=at if j % 2 == 0 else None)
             for j, i in enumerate(leads[100:])]
    store.records.commit_page("pipedrive", "activities", EntityType.ACTIVITY, acts)
    store.records.commit_page("pipedrive", "deals", EntityType.DEAL, deals)


def tick_child(url: str, n: int, notify: bool, seed: int) -> None:
    """Runs in its own process: three ticks, 30 s apart, each after a few arrivals."""
    from crmbridge.logs import configure
    from crmbridge.sandbox.recorder import RecordingReceiver
    from crmbridge.sla.config import SlaConfig
    from crmbridge.sla.engine import SlaEngine
    from crmbridge.store import Store

    configure(level="WARNING")
    rng = random.Random(seed + 1)
    store = Store(url)
    receiver = RecordingReceiver().start() if notify else None
    notifier = None
    if receiver is not None:
        from crmbridge.notify.notifier import Notifier, RetryPolicy
        from crmbridge.notify.webhooks import SlackWebhook

        notifier = Notifier([SlackWebhook(receiver.url, timeout=5)], policy=RetryPolicy(attempts=1))
    engine = SlaEngine(store, SlaConfig.default(), notifier=notifier)
    rss_before = status_kb("VmRSS")
    out = []
    for k in range(TICKS):
        arrivals(store, n, k, rng)
        t0, c0 = time.perf_counter(), time.process_time()
        report = engine.tick(ms(TICK_AT) + k * INTERVAL_MS)
        out.append({"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                    "steps": dict(report.steps), "notices": dict(report.notices), "settled": report.settled,
                    "breached": report.breached, "outcomes": report.outcomes, "errors": len(report.errors)})
    with store.engine.connect() as conn:
        open_clocks = conn.execute(sa.text("SELECT count(*) FROM sla_clocks WHERE status = 'open'")).scalar()
    delivered = len(receiver.deliveries) if receiver else 0
    if receiver:
        receiver.stop()
    store.close()
    print(json.dumps({"ticks": out, "open": open_clocks, "delivered": delivered, "rss_before_mb": rss_before / 1024,
                      "peak_rss_mb": status_kb("VmHWM") / 1024}))


def run_child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"child {args[:1]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_tick(kind: str, n: int, workdir: Path, seed: int) -> None:
    print(f"tick over {n:,} open hand-offs ({kind}):", flush=True)
    for notify in (False, True):
        url = fresh_store(kind, workdir)
        try:
            world = build_tick_world(url, n, seed)
            print(f"  world: {n:,} hand-offs generated in {world['generated_s']:.1f} s; engine.start opened "
                  f"{world['clocks']:,} clocks in {world['start_s']:.1f} s (CPU {world['start_cpu_s']:.1f} s); "
                  f"{world['steps_before']:,} earlier steps marked taken in {world['forward_s']:.1f} s", flush=True)
            result = run_child(["--tick-child", url, "--open", str(n), "--seed", str(seed)]
                               + (["--notify"] if notify else []))
        finally:
            drop_store(url)
        label = "Slack webhook notifier on loopback" if notify else "no notifier (steps recorded)"
        print(f"  {label}: {result['open']:,} open clocks after; peak RSS {result['peak_rss_mb']:.0f} MB "
              f"(at start {result['rss_before_mb']:.0f} MB); {result['delivered']:,} messages received", flush=True)
        for k, t in enumerate(result["ticks"], 1):
            steps = sum(t["steps"].values())
            print(f"    tick {k}: {t['seconds']:.3f} s (CPU {t['cpu_s']:.3f} s), {steps:,} steps {t['steps']}, "
                  f"notices {t['notices']}, {t['settled']} settled, {t['outcomes']} outcomes, "
                  f"{t['breached']:,} breached, {t['errors']} errors", flush=True)


# -- 2. the report -------------------------------------------------------------------------------------


def report_rows(first: int, count: int, now: int, rng: random.Random) -> Iterator[tuple[list[dict], list[dict]]]:
    """First-touch clocks over the year before ``now``: 75 % touched (met or missed), 8 % open, 5 % closed
    untouched, 4 % reassigned after a breach (their hand-off's next clock among the others); a meeting
    clock beside one in four; reminder, escalation and reassignment steps where they happened."""
    year = 365 * 86_400_000
    for low in range(first, first + count, CHUNK):
        clocks, steps = [], []
        for i in range(low, min(first + count, low + CHUNK)):
            owner = rng.randrange(200)
            started = now - rng.randrange(year)
            due, risk = started + 3_600_000, started + 2_700_000
            draw = rng.random()
            business = wall = settled = by = None
            breached = False
            if draw < 0.75:
                business = round(rng.lognormvariate(3.0, 1.2), 3)
                wall = round(business * rng.uniform(1.0, 6.0), 3)
                settled = started + int(wall * 60_000)
                status, by, breached = ("met" if business <= 60 else "missed"), "call", business > 60
            elif draw < 0.83:
                status = "open"
                breached = now >= due
            elif draw < 0.88:
                status, settled, by = "closed", started + 86_400_000, "lost"
            elif draw < 0.92:
                status, breached, settled, by = "reassigned", True, due + 1_800_000, "reassigned"
            else:
                status = "met"
                business = round(rng.uniform(0, 60), 3)
                wall, settled, by = business, started + int(business * 60_000), "email_sent"
            base = {"handoff_key": f"cb-r-{i}", "generation": 1, "person_id": i + 1, "company_id": None,
                    "target": "pipedrive", "deal_id": f"d{i}", "owner_id": f"u{owner}",
                    "owner_label": f"Seller {owner}", "owner_email": f"seller{owner}@lumen.example",
                    "team": f"team{owner % 8}", "source": "hubspot",
                    "calendar": "default", "started_ms": started, "reassignments": 0, "crm_status": None,
                    "next_step": 3, "next_ms": None, "claimed_by": None, "lease_until_ms": None, "updated_ms": now}
            clocks.append({**base, "policy": "first-touch", "measure": "first_touch", "risk_ms": risk, "due_ms": due,
                           "budget_minutes": 60.0, "status": status, "breached": breached, "settled_ms": settled,
                           "settled_by": by, "business_minutes": business, "wall_minutes": wall})
            if i % 4 == 0:
                clocks.append({**base, "policy": "meeting-booked", "measure": "meeting_booked",
                               "risk_ms": started + 3 * 86_400_000, "due_ms": started + 5 * 86_400_000,
                               "budget_minutes": 1440.0, "status": "open", "breached": True, "settled_ms": None,
                               "settled_by": None, "business_minutes": None, "wall_minutes": None})
            late = status == "reassigned" or (status in ("missed", "open") and breached)
            if late or (business or 0) > 45:
                steps.append((i, "remind", risk))
            if late:
                steps.append((i, "escalate", due))
            if status == "reassigned":
                steps.append((i, "reassign", due + 1_800_000))
        yield clocks, [{"clock_id": 0, "kind": kind, "seq": 1, "due_ms": at, "taken_ms": at,
                        "status": "sent", "recipient": None, "reason": "bench", "channels": '["slack"]',
                        "attempts": 1, "next_ms": None, "error": None, "_key": f"cb-r-{i}"}
                       for i, kind, at in steps]


def grow_report_world(url: str, first: int, count: int, now: int, seed: int) -> float:
    from crmbridge.store import Store, schema

    store = Store(url)
    rng = random.Random(seed + first)
    started = time.perf_counter()
    for clocks, steps in report_rows(first, count, now, rng):
        bulk_insert(store, schema.sla_clocks, clocks)
        keys = sorted({s["_key"] for s in steps})
        ids: dict[str, int] = {}
        c = schema.sla_clocks.c
        with store.engine.connect() as conn:
            for low in range(0, len(keys), 5000):
                ids.update(conn.execute(sa.select(c.handoff_key, c.id).where(
                    c.handoff_key.in_(keys[low:low + 5000]), c.measure == "first_touch")).all())
        bulk_insert(store, schema.sla_steps, [{k: v for k, v in s.items() if k != "_key"} | {"clock_id": ids[s["_key"]]}
                                                for s in steps])
    store.close()
    return time.perf_counter() - started


def report_child(url: str, now: int) -> None:
    """Runs in its own process: the report overall, then by owner; peak RSS over the import baseline."""
    from crmbridge.sla.report import sla_report
    from crmbridge.store import Store

    store = Store(url)
    baseline = status_kb("VmHWM")
    out: dict[str, Any] = {}
    for by in (None, "owner"):
        t0, c0 = time.perf_counter(), time.process_time()
        report = sla_report(store, now_ms=now, by=by)
        out[by or "all"] = {"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                            "handoffs": report["handoffs"], "touched": report["touched"],
                            "p50": report["p50_minutes"], "p95": report["p95_minutes"],
                            "groups": len(report["groups"]), "peak_rss_mb": status_kb("VmHWM") / 1024}
    store.close()
    out["baseline_mb"] = baseline / 1024
    print(json.dumps(out))


def cli_report(url: str) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryFile() as sink:
        child = subprocess.Popen([str(CRMBRIDGE), "sla", "report", "--format", "json", "--database", url],
                                 stdout=sink, stderr=subprocess.PIPE, cwd=ROOT)
        watcher = HighWater(child.pid)
        _, status, usage = os.wait4(child.pid, 0)
        peak = watcher.stop()
        sink.seek(0)
        body = json.loads(sink.read())
    return {"seconds": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime, "status": status,
            "peak_rss_mb": peak / 1024, "handoffs": body["handoffs"]}


def bench_report(kind: str, total: int, workdir: Path, seed: int) -> None:
    print(f"report over up to {total:,} hand-offs ({kind}):", flush=True)
    now = ms(TICK_AT)
    url = fresh_store(kind, workdir)
    try:
        done = 0
        for size in sorted({min(total, 100_000), total}):
            generated = grow_report_world(url, done, size - done, now, seed)
            done = size
            print(f"  {size:,} first-touch clocks (+ a meeting clock beside one in four, and their steps) "
                  f"generated in {generated:.1f} s", flush=True)
            result = run_child(["--report-child", url, "--now", str(now)])
            for by in ("all", "owner"):
                r = result[by]
                print(f"    sla_report(by={None if by == 'all' else by!r}): {r['seconds']:.2f} s "
                      f"(CPU {r['cpu_s']:.2f} s), {r['handoffs']:,} hand-offs, {r['touched']:,} touched, "
                      f"P50 {r['p50']} / P95 {r['p95']} min, {r['groups']} groups; peak RSS {r['peak_rss_mb']:.0f} MB "
                      f"(after imports {result['baseline_mb']:.0f} MB)", flush=True)
            cli = cli_report(url)
            print(f"    crmbridge sla report --format json: {cli['seconds']:.2f} s wall (CPU {cli['cpu_s']:.2f} s), "
                  f"exit {cli['status']}, {cli['handoffs']:,} hand-offs; its peak RSS {cli['peak_rss_mb']:.0f} MB",
                  flush=True)
    finally:
        drop_store(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--open", type=int, default=100_000, help="open hand-offs for the tick")
    parser.add_argument("--report", type=int, default=1_000_000, help="hand-offs for the report")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-tick", action="store_true")
    parser.add_argument("--skip-report", action="store_true")
    parser.add_argument("--tick-child", help=argparse.SUPPRESS)
    parser.add_argument("--notify", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report-child", help=argparse.SUPPRESS)
    parser.add_argument("--now", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tick_child:
        tick_child(args.tick_child, args.open, args.notify, args.seed)
        return
    if args.report_child:
        report_child(args.report_child, args.now)
        return
    from crmbridge.logs import configure

    configure(level="WARNING")
    with tempfile.TemporaryDirectory(prefix="crmbridge-bench-") as tmp:
        if not args.skip_tick:
            bench_tick(args.store, args.open, Path(tmp), args.seed)
        if not args.skip_report:
            bench_report(args.store, args.report, Path(tmp), args.seed)


if __name__ == "__main__":
    main()
