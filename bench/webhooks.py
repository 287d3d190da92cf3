"""Webhook benchmark: ingest rate and acknowledgement latency, coalescing of a burst, event → hand-off.

Everything runs on loopback against the sandboxes, with the daemon's receiver and workers in this
process (as `crmbridge run` would run them):

1. ingest — concurrent senders post HubSpot-signed batches of 100 events and Pipedrive single events
   (basic auth) naming real records, while the workers drain the inbox; prints events/s acknowledged
   and p50/p99 of the acknowledgement, then how long the workers took to drain it;
2. burst — 10,000 property changes over 1,000 HubSpot contacts made in the sandbox, delivered by the
   sandbox's own webhooks; prints the batch reads the workers made per 100 distinct records;
3. hand-off — the simulator makes people sales-ready (a contact form); prints event → deal p50/p95.

    .venv/bin/python bench/webhooks.py [--store sqlite|postgres] [--contacts 2000] [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from hubspot.utils.signature import Signature
from pydantic import SecretStr

from crmbridge.connectors import SandboxOptions, plugin
from crmbridge.logs import configure
from crmbridge.runtime.daemon import Daemon, DaemonThread
from crmbridge.runtime.pipeline import Pipeline
from crmbridge.runtime.workers import WorkerPolicy
from crmbridge.sandbox import SandboxServer
from crmbridge.settings import load_settings
from crmbridge.store import Store
from crmbridge.store.handoffs import WritebackLedger
from crmbridge.store.inbox import Inbox

TIME_SCALE = 10.0
USER, PASSWORD = "bench", "bench-password"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fresh_store(kind: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='crmbridge-bench-')}/bench.db"
    base = os.environ.get("CRMBRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    from crmbridge.store.engine import create_engine_for

    with create_engine_for(base).begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def drain(inbox: Inbox, timeout: float = 300.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        counts = inbox.counts()
        if counts["pending"] == 0 and counts["failed"] == 0:
            return time.monotonic() - started
        time.sleep(0.05)
    raise SystemExit(f"the inbox did not drain within {timeout:.0f} s: {inbox.counts()}")


# -- 1. ingest ---------------------------------------------------------------------------------------


def hubspot_batch(secret: str, url: str, contact_ids: list[str], start: int) -> tuple[bytes, dict[str, str]]:
    now = int(time.time() * 1000)
    events = [{"eventId": start + i, "subscriptionId": 1, "portalId": 1, "appId": 1, "occurredAt": now,
               "subscriptionType": "contact.propertyChange", "attemptNumber": 0,
               "objectId": int(contact_ids[(start + i) % len(contact_ids)]), "propertyName": "jobtitle",
               "propertyValue": "x", "changeSource": "API"} for i in range(100)]
    body = json.dumps(events)
    stamp = str(int(time.time() * 1000))
    signature = Signature.get_signature(secret, body, "v3", http_uri=url, timestamp=stamp)
    return body.encode(), {"Content-Type": "application/json", "X-HubSpot-Signature-v3": signature,
                           "X-HubSpot-Request-Timestamp": stamp}


def pipedrive_event(person_ids: list[str], n: int) -> tuple[bytes, dict[str, str]]:
    pid = person_ids[n % len(person_ids)]
    body = {"meta": {"action": "change", "entity": "person", "entity_id": pid, "id": str(uuid.uuid4()),
                     "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "attempt": 1,
                     "change_source": "app", "version": "2.0", "company_id": "1", "user_id": "1",
                     "is_bulk_edit": False, "type": "general"},
            "data": {"id": int(pid), "name": "someone"}, "previous": {"name": "someone else"}}
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return json.dumps(body).encode(), {"Content-Type": "application/json", "Authorization": f"Basic {auth}"}


async def send_all(base: str, secret: str, contacts: list[str], persons: list[str], events: int,
                   senders: int) -> tuple[list[float], int, float]:
    """Returns acknowledgement latencies (s), events acknowledged, wall seconds."""
    hubspot_url = f"{base}/webhooks/hubspot"
    jobs: asyncio.Queue[tuple[str, bytes, dict[str, str], int]] = asyncio.Queue()
    hubspot_events = events * 9 // 10  # most traffic in batches, as HubSpot sends it
    for start in range(0, hubspot_events, 100):
        body, headers = hubspot_batch(secret, hubspot_url, contacts, start)
        jobs.put_nowait((hubspot_url, body, headers, 100))
    for n in range(events - hubspot_events):
        body, headers = pipedrive_event(persons, n)
        jobs.put_nowait((f"{base}/webhooks/pipedrive", body, headers, 1))
    latencies: list[float] = []
    acked = [0]

    async def sender(session: aiohttp.ClientSession) -> None:
        while not jobs.empty():
            url, body, headers, n = jobs.get_nowait()
            t = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"{url} answered {response.status}")
            latencies.append(time.perf_counter() - t)
            acked[0] += n

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=senders)) as session:
        await asyncio.gather(*(sender(session) for _ in range(senders)))
    return latencies, acked[0], time.perf_counter() - started


# -- set-up ------------------------------------------------------------------------------------------


def build(args: argparse.Namespace, server: SandboxServer, url: str) -> tuple[Store, Pipeline, Daemon]:
    sources = ["hubspot", "pipedrive"]
    settings = load_settings(database_url=url, sources=sources, webhook_user=USER,
                             webhook_password=SecretStr(PASSWORD), sync_interval_seconds=3600)
    store = Store(url)
    connectors = {s: plugin(s).sandbox_connector(server.base_url(s), time_scale=TIME_SCALE) for s in sources}
    pipeline = Pipeline(settings, store, connectors)
    for source in sources:
        pipeline.syncer(source).backfill()
    pipeline.rescorer().run()
    verifiers = {s: plugin(s).webhooks(user=USER, password=PASSWORD, **server.vendor(s).webhook_options())
                 for s in sources}
    daemon = Daemon(settings, store, pipeline, verifiers, policy=WorkerPolicy(), first_pass_delay=3600)
    return store, pipeline, daemon


def batch_reads(stats: dict[str, Any]) -> int:
    return sum(n for endpoint, n in stats["calls"].items()
               if "batch/read" in endpoint and "associations" not in endpoint)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--sales-ready", type=int, default=20)
    args = parser.parse_args()
    configure("ERROR")
    url = fresh_store(args.store)
    options = SandboxOptions(seed=7, contacts=args.contacts, time_scale=TIME_SCALE)
    print(f"webhooks benchmark: {args.store}, {args.contacts:,} contacts, {args.events:,} events", flush=True)
    with SandboxServer(options, ["hubspot", "pipedrive"]) as server:
        store, pipeline, daemon = build(args, server, url)
        hubspot, pipedrive = server.vendor("hubspot"), server.vendor("pipedrive")
        with DaemonThread(daemon) as running:
            daemon.receiver.public_url = running.url
            pipeline.settings = pipeline.settings.model_copy(update={"public_url": running.url})
            pipeline.writeback().setup()
            pipeline.write_back(full=True)
            inbox = daemon.inbox
            # 1. ingest
            secret = hubspot.webhook_options()["secret"]
            contacts, persons = hubspot.ids("contacts"), [str(i) for i in pipedrive.state.live_ids("persons")]
            latencies, acked, seconds = asyncio.run(send_all(running.url, secret, contacts, persons, args.events,
                                                             args.senders))
            drained = drain(inbox)
            print(f"ingest: {acked:,} events in {seconds:.2f} s = {acked / seconds:,.0f} events/s acknowledged; "
                  f"ack p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms "
                  f"({len(latencies):,} requests, {args.senders} senders); workers drained the rest in "
                  f"{drained:.2f} s ({acked / (seconds + drained):,.0f} events/s end to end)", flush=True)
            # 2. burst
            ids = contacts[:1000]
            before = batch_reads(hubspot.stats())
            emitted = hubspot.stats()["webhooks"]["emitted"]
            for round_ in range(10):
                hubspot.touch("contacts", ids=ids, properties={"jobtitle": f"Head of Operations {round_}"})
            hubspot.drain_webhooks(120)
            drained = drain(inbox)
            reads = batch_reads(hubspot.stats()) - before
            changes = hubspot.stats()["webhooks"]["emitted"] - emitted
            print(f"burst: {changes:,} property changes over {len(ids):,} contacts → {reads} batch reads "
                  f"({reads / (len(ids) / 100):.2f} per 100 distinct records), drained {drained:.2f} s after delivery",
                  flush=True)
            # 3. event → hand-off
            ledger = WritebackLedger(store)
            known = {h["key"] for h in ledger.handoffs(status="done")}
            started_ms = int(time.time() * 1000)
            made = hubspot.simulate(sales_ready=args.sales_ready, seed=11)["sales_ready"]
            wanted = {p["email"].lower() for p in made if p.get("email")}
            latencies_ms: dict[str, int] = {}
            deadline = time.monotonic() + 60
            while len(latencies_ms) < len(wanted) and time.monotonic() < deadline:
                for h in ledger.handoffs(status="done"):
                    email = str((h.get("summary") or {}).get("email") or "").lower()
                    if h["key"] not in known and email in wanted:
                        latencies_ms.setdefault(email, int(h["done_ms"]) - started_ms)
                time.sleep(0.05)
            values = [v / 1000 for v in latencies_ms.values()]
            print(f"hand-off: {len(values)} of {len(wanted)} sales-ready people became deals; event → deal "
                  f"p50 {percentile(values, 50):.2f} s, p95 {percentile(values, 95):.2f} s", flush=True)
        pipeline.close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
