"""docker-compose.yml run outside Docker: the sandbox, the init service (``crmbridge setup && crmbridge
backfill``) and several ``crmbridge run`` replicas on one PostgreSQL database, with the compose file's own
commands and environment (hostnames swapped for loopback addresses, the database for a fresh schema).

The sandbox's subscriptions name one URL, as Docker's service name does; a small round-robin proxy in
the test plays the service name and spreads the deliveries over the replicas. It is also
``CRMBRIDGE_PUBLIC_URL``: HubSpot signs the URI it called, so every accepted delivery shows that the
receiver verifies against the public URL and not its own socket address.

Each replica runs in a session of its own, as a container does: kill -9 takes the daemon and the inbox
worker processes it started. What the tests show: replicas share the inbox and process each event once,
one of them leads the scheduler and another takes over when it dies, hand-offs are never doubled, and a
replica killed while webhooks arrive, once restarted, ends where a fresh backfill ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson
import psutil
import pytest
import sqlalchemy as sa
import yaml
import yarl
from aiohttp import web

from crmbridge.runtime.metrics import parse_samples
from crmbridge.store import Store, schema
from crmbridge.store.engine import create_engine_for
from crmbridge_pipedrive.sandbox.webhooks import POLICY as PIPEDRIVE_DELIVERIES

from .test_realtime import live_records

pytestmark = [pytest.mark.xdist_group("replicas-e2e"), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
BIN = Path(sys.executable).parent
CRMBRIDGE = BIN / "crmbridge"
POSTGRES_URL = os.environ.get("CRMBRIDGE_TEST_POSTGRES_URL")
COMPOSE_HOSTS = ("sandbox", "postgres", "crmbridge")
# The sandbox's rate-limit windows run this much faster; the connectors are told the same pace.
TIME_SCALE = 20.0
# The vendors' webhook retry delays (HubSpot: 1 min, 5 min, …; Pipedrive: 3, 30, 150 s) are divided by this.
RETRY_SCALE = 100.0
SECRET_KEYS = ("TOKEN", "SECRET", "PASSWORD", "API_KEY")


# -- the compose file ------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_secrets() -> set[str]:
    """The credentials the compose file hands the services."""
    env = compose()["x-crmbridge"]["environment"]
    return {str(v) for k, v in env.items() if any(s in k for s in SECRET_KEYS) and v}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _swap_host(value: str, addresses: dict[str, str]) -> str:
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.hostname in addresses:
        return urlunsplit(parts._replace(netloc=addresses[parts.hostname]))
    return value


def compose_environment(*, sandbox: str, public: str, database_url: str) -> dict[str, str]:
    """The ``x-crmbridge`` environment with ``sandbox:8765`` → ``sandbox`` and ``crmbridge:8080`` →
    ``public`` (host:port), and the database URL → ``database_url``."""
    raw = {k: str(v) for k, v in compose()["x-crmbridge"]["environment"].items()}
    assert urlsplit(raw["CRMBRIDGE_DATABASE_URL"]).hostname == "postgres"
    addresses = {"sandbox": sandbox, "crmbridge": public}
    env = {k: _swap_host(v, addresses) for k, v in raw.items()}
    env["CRMBRIDGE_DATABASE_URL"] = database_url
    for key, value in env.items():
        assert urlsplit(value).hostname not in COMPOSE_HOSTS, f"{key}={value} still names a compose host"
    return env


def process_environment(compose_env: dict[str, str], **extra: str) -> dict[str, str]:
    """What a service's process sees: no CRMBRIDGE_* from the test runner, the compose environment, what
    the image's Dockerfile sets (JSON logs, the mappings and model it copies), the pacing that matches
    the sandbox's time scale, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMBRIDGE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # `sh -c "crmbridge setup && …"` finds ours
    env.update(compose_env)
    env.update({
        "CRMBRIDGE_LOG_FORMAT": "json",
        "CRMBRIDGE_MAPPINGS_DIR": str(ROOT / "mappings"),
        "CRMBRIDGE_SCORING_MODEL": str(ROOT / "examples" / "scoring" / "default.yaml"),
        "CRMBRIDGE_HTTP_HOST": "127.0.0.1",
        # What plugin.sandbox_connector sets for a sandbox running TIME_SCALE times faster.
        "CRMBRIDGE_HUBSPOT_SEARCH_PER_SECOND": str(5.0 * TIME_SCALE),
        "CRMBRIDGE_PIPEDRIVE_BURST_INTERVAL_SECONDS": str(2.0 / TIME_SCALE),
        "CRMBRIDGE_PIPEDRIVE_CDN_BLOCK_SECONDS": str(30.0 / TIME_SCALE),
    })
    env.update(extra)
    return env


def sandbox_command(port: int, contacts: int) -> list[str]:
    """The sandbox service's command on a loopback port, smaller, faster and with faster retries."""
    command = [str(c) for c in compose()["services"]["sandbox"]["command"]]
    assert command[0] == "sandbox"
    replace = {"--host": "127.0.0.1", "--port": str(port), "--contacts": str(contacts)}
    for i, arg in enumerate(command[:-1]):
        if arg in replace:
            command[i + 1] = replace[arg]
    assert "hubspot.client_secret=compose-sandbox-secret" in command
    return [str(CRMBRIDGE), *command, "--time-scale", str(TIME_SCALE), "--webhook-retry-scale", str(RETRY_SCALE)]


def init_command() -> list[str]:
    init = compose()["services"]["init"]
    return [*init["entrypoint"], *init["command"]]


def replica_command() -> list[str]:
    service = compose()["services"]["crmbridge"]
    assert "entrypoint" not in service  # the image's: crmbridge
    return [str(CRMBRIDGE), *service["command"]]


# -- processes and HTTP ----------------------------------------------------------------------------------


def eventually(check: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll until ``check`` answers something truthy, at most ``timeout`` seconds; return its answer."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(interval)


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> tuple[int, Any]:
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return status, raw.decode(errors="replace")


@dataclass
class Process:
    """A service's process; its output goes to files (a pipe nobody reads would block it)."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    port: int | None = None
    port_by_env: bool = True  # CRMBRIDGE_HTTP_PORT (the daemon) rather than a flag in the command
    popen: subprocess.Popen[bytes] | None = None
    runs: int = 0
    known_pids: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Process:
        self.runs += 1
        out = open(self.cwd / f"{self.name}.{self.runs}.stdout", "wb")  # noqa: SIM115 - the child holds it
        err = open(self.cwd / f"{self.name}.{self.runs}.stderr", "wb")  # noqa: SIM115
        env = {**self.env, **({"CRMBRIDGE_HTTP_PORT": str(self.port)} if self.port and self.port_by_env else {})}
        # A session of its own, like a container: kill -9 takes the daemon and its worker processes.
        self.popen = subprocess.Popen(self.command, env=env, cwd=self.cwd, stdout=out, stderr=err,
                                      start_new_session=True)
        out.close()
        err.close()
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def pids(self) -> set[int]:
        """The process and its children (``crmbridge run`` starts its inbox workers as processes)."""
        assert self.popen is not None
        try:
            parent = psutil.Process(self.popen.pid)
            return {parent.pid, *(c.pid for c in parent.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def kill9(self) -> None:
        """SIGKILL to every process of the session at once, as when a container is killed."""
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        eventually(lambda: not _session_alive(self.popen.pid), 10)  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # whatever is left of the session
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.cwd.glob(f"{self.name}.*.std*")))

    def tail(self, n: int = 3000) -> str:
        return f"--- {self.name} ---\n{self.output()[-n:]}"

    def wait_healthy(self, timeout: float = 60) -> None:
        def healthy() -> bool:
            assert self.alive(), self.tail()
            try:
                return http("GET", f"{self.url}/healthz", timeout=2)[0] == 200
            except OSError:
                return False

        assert eventually(healthy, timeout, 0.2), self.tail()
        self.known_pids |= self.pids()

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, text = http("GET", f"{self.url}/metrics", timeout=5)
        assert status == 200, text
        return parse_samples(text)


def _session_alive(sid: int) -> bool:
    for p in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                return True
    return False


def leading(replica: Process) -> float | None:
    """The replica's ``crmbridge_scheduler_leader``; None when it does not answer."""
    try:
        return replica.metrics()[("crmbridge_scheduler_leader", frozenset())]
    except OSError:
        return None


def ok_passes(replica: Process, source: str) -> float:
    key = ("crmbridge_sync_runs_total", frozenset({("source", source), ("outcome", "ok")}))
    return replica.metrics().get(key, 0.0)


class RoundRobin:
    """The compose service name: forwards each request (method, path and query, headers, body) to the
    next live replica and answers what it answered; a replica that refuses the connection is skipped,
    one that fails mid-request is a 502 (the sender cannot know what was stored, so it retries)."""

    HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"})

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.answered: Counter[str] = Counter()
        self._next = 0
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="round-robin", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self.HOP}
        targets = list(self.targets)
        for _ in range(len(targets)):
            target = targets[self._next % len(targets)]
            self._next += 1
            try:
                url = yarl.URL(f"{target}{request.raw_path}", encoded=True)  # the path exactly as it came
                async with self._session.request(request.method, url, headers=headers, data=body,
                                                 allow_redirects=False) as answer:
                    payload = await answer.read()
            except aiohttp.ClientConnectorError:
                continue  # not listening (killed, or not started yet): the next one
            except (aiohttp.ClientError, TimeoutError):
                return web.json_response({"error": f"{target} failed mid-request"}, status=502)
            self.answered[target] += 1
            return web.Response(status=answer.status, body=payload, headers={
                k: v for k, v in answer.headers.items() if k.lower() not in self.HOP})
        return web.json_response({"error": "no replica is listening"}, status=502)

    def start(self) -> RoundRobin:
        self._thread.start()

        async def _start() -> None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
            app = web.Application(client_max_size=8 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._forward)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=512).start()

        asyncio.run_coroutine_threadsafe(_start(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        async def _stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            if self._session is not None:
                await self._session.close()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


# -- a deployment ------------------------------------------------------------------------------------------


def webhook_backlog(stats: dict[str, Any]) -> dict[str, int]:
    """Per vendor, events emitted but neither delivered nor given up (dropped, lost to a ban)."""
    out = {}
    for vendor, s in stats.items():
        w = s["webhooks"]
        out[vendor] = w["emitted"] - w["delivered"] - w["dropped"] - w["banned"]
    return out


@dataclass
class Deployment:
    workdir: Path
    database_url: str
    proxy: RoundRobin
    sandbox: Process
    env: dict[str, str]
    store: Store
    replicas: list[Process] = field(default_factory=list)
    init_output: str = ""
    init_done: float = 0.0  # time.monotonic() when init ended

    @property
    def sandbox_url(self) -> str:
        return self.sandbox.url

    def add_replica(self) -> Process:
        replica = Process(f"replica{len(self.replicas) + 1}", replica_command(), self.env, self.workdir,
                          port=free_port())
        self.replicas.append(replica)
        self.proxy.targets.append(replica.url)
        return replica.start()

    def stats(self) -> dict[str, Any]:
        status, body = http("GET", f"{self.sandbox_url}/_sandbox/stats")
        assert status == 200, body
        return body

    def inbox_rows(self) -> list[Any]:
        c = schema.inbox.c
        with self.store.engine.connect() as conn:
            return list(conn.execute(sa.select(c.source, c.event_id, c.status, c.attempts, c.claimed_by)))

    def inbox_counts(self) -> Counter[str]:
        c = schema.inbox.c
        with self.store.engine.connect() as conn:
            return Counter(dict(conn.execute(sa.select(c.status, sa.func.count()).group_by(c.status)).all()))

    def settled(self, quiet: float = 1.5, timeout: float = 90) -> dict[str, Any]:
        """Wait until every webhook was delivered or given up and the inbox holds nothing to do, and it
        stays so for ``quiet`` seconds (a write-back after a batch makes new webhooks); the stats then."""
        last: list[Any] = []

        def calm() -> dict[str, Any] | None:
            stats = self.stats()
            counts = self.inbox_counts()
            busy = any(webhook_backlog(stats).values()) or any(counts[s] for s in ("pending", "claimed", "retry"))
            now = ({v: s["webhooks"]["emitted"] for v, s in stats.items()}, counts)
            if busy:
                last.clear()
                return None
            if not quiet:
                return stats
            if not last or last[0][1] != now:
                last[:] = [(time.monotonic(), now)]
                return None
            return stats if time.monotonic() - last[0][0] >= quiet else None

        found = eventually(calm, timeout, 0.25)
        assert found, (f"not settled: webhooks {webhook_backlog(self.stats())}, inbox {dict(self.inbox_counts())}\n"
                       + "\n".join(r.tail() for r in self.replicas))
        return found

    def touch_contacts(self, count: int, properties: dict[str, str]) -> int:
        status, body = http("POST", f"{self.sandbox_url}/hubspot/_sandbox/touch",
                            {"objectType": "contacts", "count": count, "properties": properties})
        assert status == 200, body
        return int(body["touched"])

    def pipedrive(self, path: str) -> list[dict[str, Any]]:
        """Every item of a Pipedrive API v2 list, through its cursor."""
        items, cursor = [], None
        while True:
            query = "limit=500" + (f"&cursor={cursor}" if cursor else "")
            status, body = http("GET", f"{self.sandbox_url}/pipedrive/api/v2/{path}?{query}",
                                headers={"x-api-token": self.env["CRMBRIDGE_PIPEDRIVE_API_TOKEN"]})
            assert status == 200, body
            items.extend(body["data"] or [])
            cursor = (body.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return items

    def handoffs(self) -> list[dict[str, Any]]:
        t = schema.handoffs.c
        with self.store.engine.connect() as conn:
            rows = [r._asdict() for r in conn.execute(sa.select(t.key, t.person_id, t.target, t.status, t.deal_id,
                                                                t.reused, t.title, t.summary))]
        for row in rows:
            row["summary"] = orjson.loads(row["summary"]) if row["summary"] else {}
        return rows

    def assert_no_secret_in_output(self) -> None:
        secrets = compose_secrets()
        assert secrets
        for process in self.replicas:
            text = process.output()
            leaked = sorted(s for s in secrets if s in text)
            assert not leaked, f"{process.name} printed {leaked}"
        leaked = sorted(s for s in secrets if s in self.init_output)
        assert not leaked, f"init printed {leaked}"

    def stop(self) -> None:
        for process in self.replicas:  # SIGTERM to all first: each may take seconds to finish what it holds
            if process.alive():
                process.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        for process in [*self.replicas, self.sandbox]:
            process.stop()
        self.proxy.stop()
        self.store.close()


def schema_url(base: str, name: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{name}"


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    """Another PostgreSQL schema, like the ``postgres_url`` fixture's, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("CRMBRIDGE_TEST_POSTGRES_URL is not set")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine_for(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    try:
        yield schema_url(POSTGRES_URL, name)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


@contextlib.contextmanager
def deployment(workdir: Path, database_url: str, *, contacts: int, replicas: int, **settings: str
               ) -> Iterator[Deployment]:
    """The compose services on loopback: the sandbox, init (run to completion), then the replicas."""
    proxy = RoundRobin().start()
    sandbox_port = free_port()
    env = process_environment(compose_environment(sandbox=f"127.0.0.1:{sandbox_port}",
                                                  public=f"127.0.0.1:{proxy.port}", database_url=database_url),
                              **settings)
    sandbox = Process("sandbox", sandbox_command(sandbox_port, contacts), env, workdir, port=sandbox_port,
                      port_by_env=False).start()
    store: Store | None = None
    running: Deployment | None = None
    try:
        def sandbox_up() -> bool:
            assert sandbox.alive(), sandbox.tail()
            try:
                return http("GET", f"{sandbox.url}/_sandbox/health", timeout=2)[0] == 200
            except OSError:
                return False

        assert eventually(sandbox_up, 60, 0.2), sandbox.tail()
        init = subprocess.run(init_command(), env=env, cwd=workdir, capture_output=True, timeout=240)
        init_output = init.stdout.decode(errors="replace") + init.stderr.decode(errors="replace")
        assert init.returncode == 0, f"init ({' '.join(init_command())}) failed:\n{init_output[-4000:]}"
        store = Store(database_url)
        running = Deployment(workdir, database_url, proxy, sandbox, env, store, init_output=init_output,
                             init_done=time.monotonic())
        for _ in range(replicas):
            running.add_replica()
        for replica in running.replicas:
            replica.wait_healthy()
        yield running
    finally:
        if running is not None:
            running.stop()
        else:
            sandbox.stop()
            proxy.stop()
            if store is not None:
                store.close()


# -- what the tests check ----------------------------------------------------------------------------------


def handoff_stage_ids(d: Deployment) -> set[int]:
    stage = "Sales-ready leads"  # HandoffConfig's default, which compose does not change
    return {int(s["id"]) for s in d.pipedrive("stages") if s.get("name") == stage}


def assert_no_duplicate_deal(d: Deployment) -> list[dict[str, Any]]:
    """One hand-off per person in the ledger, each done; in Pipedrive, each hand-off deal once (by title)
    and no person with two open hand-off deals. Returns the ledger's rows."""
    rows = d.handoffs()
    assert rows, "no hand-off was made at all"
    assert {r["target"] for r in rows} == {"pipedrive"}, Counter(r["target"] for r in rows)
    assert Counter(r["status"] for r in rows) == Counter(done=len(rows)), Counter(r["status"] for r in rows)
    per_person = Counter(r["person_id"] for r in rows)
    assert max(per_person.values()) == 1, {p: n for p, n in per_person.items() if n > 1}
    made = [r for r in rows if not r["reused"]]
    assert len({r["deal_id"] for r in made}) == len(made), Counter(r["deal_id"] for r in made)

    deals = {int(x["id"]): x for x in d.pipedrive("deals")}
    ledger = {int(r["deal_id"]) for r in rows}
    assert ledger <= set(deals), f"deals in the ledger but not in Pipedrive: {ledger - set(deals)}"
    stages = handoff_stage_ids(d)
    assert stages, "setup made no hand-off stage"
    in_stage = {i for i, x in deals.items() if x.get("stage_id") in stages}
    # A deal made twice (two replicas handing one person off) is one the ledger does not know.
    assert in_stage <= ledger, f"hand-off deals the ledger does not know: {[deals[i] for i in in_stage - ledger]}"
    handed = [deals[i] for i in in_stage | {int(r["deal_id"]) for r in made}]
    titles = Counter(x["title"] for x in handed)
    assert max(titles.values()) == 1, {t: n for t, n in titles.items() if n > 1}
    open_per_person = Counter(x["person_id"] for x in handed if x.get("status") == "open" and x.get("person_id"))
    assert max(open_per_person.values(), default=0) <= 1, {p: n for p, n in open_per_person.items() if n > 1}
    return rows


def differences(entity: str, got: dict[Any, Any], expected: dict[Any, Any], show: int = 3) -> str:
    """What differs between two stores' records of an entity, briefly (the whole dicts are thousands)."""
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    changed = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
    lines = [f"{entity}: {len(missing)} missing, {len(extra)} not in the reference, {len(changed)} differ"]
    lines += [f"  missing {k}" for k in missing[:show]] + [f"  extra {k}" for k in extra[:show]]
    for k in changed[:show]:
        fields = sorted(f for f in set(got[k]) | set(expected[k]) if got[k].get(f) != expected[k].get(f))
        lines.append(f"  {k}: " + ", ".join(f"{f}: {got[k].get(f)!r} != {expected[k].get(f)!r}" for f in fields))
    return "\n".join(lines)


def claimers(d: Deployment, rows: list[Any]) -> Counter[str]:
    """Inbox rows by the replica whose (worker) process claimed them."""
    by_pid = {pid: r.name for r in d.replicas for pid in r.known_pids}
    out: Counter[str] = Counter()
    for row in rows:
        pid = int(str(row.claimed_by).split(":")[1])
        out[by_pid.get(pid, f"unknown process {pid}")] += 1
    return out


def leaders(d: Deployment, live: list[Process] | None = None) -> dict[str, float | None]:
    return {r.name: leading(r) for r in (live if live is not None else d.replicas)}


def one_leader(d: Deployment, live: list[Process] | None = None) -> dict[str, float | None] | None:
    """The replicas' leader gauges when exactly one reports 1 and every other 0, else None."""
    found = leaders(d, live)
    values = list(found.values())
    return found if values.count(1.0) == 1 and values.count(0.0) == len(values) - 1 else None


# -- the tests ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Three replicas behind the service name, scheduler passes every 2 s (failover is visible quickly)."""
    with fresh_schema() as url, deployment(tmp_path_factory.mktemp("replicas"), url, contacts=300, replicas=3,
                                           CRMBRIDGE_SYNC_INTERVAL_SECONDS="2") as running:
        running.settled()  # what init's write-back sent before anyone listened, retried by the CRMs
        yield running


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_three_replicas_on_postgres_process_every_event_once_with_one_scheduler_leader(replicas: Deployment
                                                                                       ) -> None:
    d = replicas
    assert eventually(lambda: one_leader(d), 20, 0.5), leaders(d)
    # Bursts of changes in both CRMs, each left to settle: whoever claims a burst first processes it.
    for i in range(4):
        assert d.touch_contacts(60, {"jobtitle": f"Head of Replication {i}"}) == 60
        d.settled(quiet=0)
    # Init's write-back made Pipedrive deliver while no replica listened yet: ten failures in a row ban the
    # subscription (30 minutes, scaled) and Pipedrive drops its events meanwhile. Wait that out.
    time.sleep(max(0.0, d.init_done + PIPEDRIVE_DELIVERIES.ban_seconds / RETRY_SCALE - time.monotonic()))
    status, touched = http("POST", f"{d.sandbox_url}/pipedrive/_sandbox/touch", {"kind": "persons", "count": 40})
    assert status == 200 and len(touched["touched"]) == 40, touched
    d.settled(quiet=0)
    status, made = http("POST", f"{d.sandbox_url}/_sandbox/simulate?source=hubspot", {"sales_ready": 3, "seed": 11})
    assert status == 200, made
    wanted = {p["email"].lower() for p in made["hubspot"]["sales_ready"]}
    assert len(wanted) == 3

    def handed_off() -> bool:
        done = {str(r["summary"].get("email") or "").lower() for r in d.handoffs() if r["status"] == "done"}
        return wanted <= done

    assert eventually(handed_off, 60, 0.5), "the sales-ready people were not handed off"
    stats = d.settled()

    hubspot = stats["hubspot"]["webhooks"]
    assert hubspot["delivered"] == hubspot["emitted"] > 0, hubspot
    pipedrive = stats["pipedrive"]["webhooks"]
    assert pipedrive["delivered"] > 0, pipedrive  # Basic auth through the proxy
    rows = d.inbox_rows()
    assert Counter(r.status for r in rows) == Counter(done=len(rows)), Counter(r.status for r in rows)
    attempts = Counter(r.attempts for r in rows)
    assert attempts == Counter({1: len(rows)}), f"events processed more than once: {attempts}"
    assert Counter(r.source for r in rows) == Counter(hubspot=hubspot["delivered"], pipedrive=pipedrive["delivered"])
    shared = claimers(d, rows)
    assert len(shared) > 1, f"one replica processed everything: {shared}"
    assert not [name for name in shared if name.startswith("unknown")], shared
    assert one_leader(d), leaders(d)
    assert_no_duplicate_deal(d)
    d.assert_no_secret_in_output()


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_when_the_leader_is_killed_another_replica_takes_over_the_scheduler(replicas: Deployment) -> None:
    d = replicas
    found = eventually(lambda: one_leader(d), 20, 0.5)
    assert found, leaders(d)
    d.settled()  # nothing in hand: the killed replica leaves no claim behind
    leader = next(r for r in d.replicas if found[r.name] == 1.0)
    others = [r for r in d.replicas if r is not leader]
    sources = d.env["CRMBRIDGE_SOURCES"].split(",")
    before = {(r.name, s): ok_passes(r, s) for r in others for s in sources}

    leader.kill9()
    deadline = time.monotonic() + 20  # LEADER_POLL is 2 s: a few polls, and one pass of each source

    def took_over() -> Process | None:
        now = one_leader(d, others)
        if now is None:
            return None
        new = next(r for r in others if now[r.name] == 1.0)
        return new if all(ok_passes(new, s) > before[(new.name, s)] for s in sources) else None

    new = eventually(took_over, deadline - time.monotonic(), 0.25)
    assert new is not None, f"no replica took over: {leaders(d, others)}\n" + "\n".join(r.tail() for r in others)

    leader.start()  # the killed replica comes back (a restarted container) and stays a follower
    leader.wait_healthy()
    time.sleep(3)  # more than one LEADER_POLL: it would have taken the lead by now if it could
    assert one_leader(d) == {**{r.name: 0.0 for r in d.replicas}, new.name: 1.0}, leaders(d)
    d.assert_no_secret_in_output()


# Ten touches of 1,000 contacts, each with another city: 10,000 webhook events.
TOUCHES = [f"Kill Nine City {i}" for i in range(10)]


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_kill_9_while_webhooks_are_delivered_then_restart_equals_a_reference_run(postgres_url: str,
                                                                                 tmp_path: Path) -> None:
    with deployment(tmp_path, postgres_url, contacts=1100, replicas=1) as d:
        replica = d.replicas[0]
        stored_before = len(d.inbox_rows())
        for city in TOUCHES[:3]:
            assert d.touch_contacts(1000, {"city": city}) == 1000

        # Mid-delivery, and mid-processing: some of the events are stored, a worker holds a claim.
        def in_hand() -> Counter[str] | None:
            counts = d.inbox_counts()
            return counts if counts["claimed"] and sum(counts.values()) > stored_before else None

        at_kill = eventually(in_hand, 30, 0.01)
        assert at_kill, d.inbox_counts()
        dead = replica.pids()
        assert d.touch_contacts(1000, {"city": TOUCHES[3]}) == 1000  # on their way as the replica dies
        replica.kill9()
        assert sum(d.inbox_counts().values()) - stored_before < 1000 * len(TOUCHES)
        for city in TOUCHES[4:]:  # delivered to nobody, retried by HubSpot
            assert d.touch_contacts(1000, {"city": city}) == 1000
        replica.start()
        replica.wait_healthy()

        def claimed_by_the_dead() -> int:
            return sum(1 for r in d.inbox_rows() if r.status == "claimed" and int(r.claimed_by.split(":")[1]) in dead)

        taken_over = eventually(lambda: claimed_by_the_dead() == 0, 30, 0.5)
        assert taken_over, (f"{claimed_by_the_dead()} events claimed by the killed replica's worker (inbox at the "
                            f"kill: {dict(at_kill)}) are not taken over by the restarted one: they wait for the "
                            "claim's lease")
        stats = d.settled(timeout=120)

        hubspot = stats["hubspot"]["webhooks"]
        assert hubspot["dropped"] == hubspot["banned"] == 0, hubspot
        rows = d.inbox_rows()
        by_source = Counter(r.source for r in rows)
        assert by_source["hubspot"] == hubspot["emitted"], (by_source, hubspot)  # every event stored, once
        assert Counter(r.status for r in rows) == Counter(done=len(rows)), Counter(r.status for r in rows)

        with fresh_schema() as reference_url:
            env = {**d.env, "CRMBRIDGE_DATABASE_URL": reference_url}
            fresh = subprocess.run([str(CRMBRIDGE), "backfill", "--no-writeback"], env=env, cwd=tmp_path,
                                   capture_output=True, timeout=240)
            assert fresh.returncode == 0, fresh.stderr.decode(errors="replace")[-3000:]
            with Store(reference_url) as reference:
                expected = live_records(reference)
        got = live_records(d.store)
        for entity in ("person", "company", "deal"):
            assert got[entity] == expected[entity], differences(entity, got[entity], expected[entity])
        cities = Counter(r["city"] for (source, _), r in got["person"].items() if source == "hubspot")
        assert sum(n for city, n in cities.items() if city in TOUCHES) >= 1000, cities
        assert_no_duplicate_deal(d)
        d.assert_no_secret_in_output()
