"""Scoring benchmark: prints figures, asserts nothing.

1. Throughput: persons scored per second, ten activities each, on one core (target >= 20,000/s).
2. Full re-score: N people (default 1,000,000) generated as canonical records a batch of 1,000 at a
   time, scored, fingerprinted and dropped, reporting wall and CPU time, the share spent scoring, and
   peak RSS from getrusage (memory must stay flat: it must not grow with N).

With ``--store sqlite|postgres`` it measures the re-score of a store instead (store → score → store):
N people (ten activities each, one in ten also known to a second CRM) are first written into the
store through its own ``commit_page`` (for PostgreSQL into SQLite, then copied over with COPY), in
a separate process so that neither the time nor the memory of the generation counts; then
``Rescorer.run()`` scores everyone three times: the first score (every score written), the next
day's decay re-score (only changed scores written), and the same day again (nothing written).
Each prints persons/s (wall and CPU) and the process's peak RSS (``VmHWM``).
On PostgreSQL the CPU time is this process's only (the server's is not counted), and the score tables
are vacuumed and analysed before each pass, outside the figures, as autovacuum would after a pass that
rewrote them (a server may run without it; its dead rows would then weigh on every later pass).
``--workers N`` shares each re-score among N forked processes (``Rescorer.run(workers=N)``); CPU is
then the workers' and this process's together, and the largest worker's peak RSS is printed too.
``--copy-from sqlite:///file.db`` fills PostgreSQL from a SQLite store generated before (``--reuse``).

CPU time is reported next to wall time because a shared machine's wall clock includes other work.

    python bench/scoring.py [--model examples/scoring/default.yaml] [--people 1000000] [--seed 7]
    python bench/scoring.py --store sqlite --people 100000 [--url sqlite:///scores.db --reuse]
    python bench/scoring.py --store postgres --url postgresql://user@host/db --people 100000 [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import sqlalchemy as sa

from crmbridge.identity import load_policy
from crmbridge.model import Activity, ActivityKind, Company, EntityType, Person
from crmbridge.scoring import Profile, Scorer, ScoringModel

ROOT = Path(__file__).resolve().parent.parent
AS_OF = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

INDUSTRIES = ["software", "it_services", "financial_services", "banking", "insurance", "healthcare", "retail",
              "manufacturing", "education", "marketing", "logistics", "telecom", "government", "nonprofit"]
REGIONS = [("DE", "EMEA"), ("GB", "EMEA"), ("FR", "EMEA"), ("US", "NA"), ("CA", "NA"), ("JP", "APAC"),
           ("BR", "LATAM")]
TECH = ["salesforce", "hubspot", "pipedrive", "slack", "aws", "gcp", "zendesk", "jira"]
TITLES = [("CEO", "executive", "executive"), ("VP Sales", "vp", "sales"), ("Head of Marketing", "director",
          "marketing"), ("Sales Manager", "manager", "sales"), ("IT Manager", "manager", "it"),
          ("Senior Engineer", "senior", "engineering"), ("Account Executive", "entry", "sales"),
          ("Marketing Intern", "intern", "marketing"), ("Student", "student", "education"),
          ("Controller", "senior", "finance")]
MAIL = ["gmail.com", "outlook.com", None, None, None, None]
URLS = ["https://www.example.com/pricing", "https://www.example.com/product/scoring",
        "https://www.example.com/product/sla", "https://www.example.com/blog/mql-vs-sql",
        "https://www.example.com/customers/acme", "https://www.example.com/careers/sdr"]
FORMS = ["Contact us", "Request a demo", "Newsletter signup", "Webinar registration"]
CONTENT = ["guide", "buyers_guide", "ebook", "case_study"]
KINDS = [ActivityKind.PAGE_VIEW] * 4 + [ActivityKind.EMAIL_OPEN] * 2 + [
    ActivityKind.EMAIL_CLICK, ActivityKind.CONTENT_DOWNLOAD, ActivityKind.FORM_SUBMISSION, ActivityKind.CALL]


def company(rng: random.Random, i: int) -> Company:
    country, region = rng.choice(REGIONS)
    return Company(source="bench", source_id=f"c{i}", domain=f"company{i}.example", name=f"Company {i}",
                   industry=rng.choice(INDUSTRIES), employees=int(rng.lognormvariate(4.5, 1.5)),
                   annual_revenue=rng.uniform(1e5, 1e9), country=country, region=region,
                   technologies=rng.sample(TECH, rng.randint(0, 3)),
                   tier=rng.choice([None, None, None, "tier_1", "tier_2", "tier_3"]))


def activity_templates(rng: random.Random, count: int = 500) -> list[Activity]:
    """Validated activities of every kind and shape; records are stamped out of them by ``activity``."""
    templates = []
    for i in range(count):
        kind = rng.choice(KINDS)
        attributes: dict[str, object] = {}
        if kind is ActivityKind.PAGE_VIEW:
            attributes["url"] = rng.choice(URLS)
        elif kind is ActivityKind.CONTENT_DOWNLOAD:
            attributes.update(content_type=rng.choice(CONTENT), form_name="Download")
        elif kind is ActivityKind.FORM_SUBMISSION:
            attributes["form_name"] = rng.choice(FORMS)
            if rng.random() < 0.3:
                attributes["answers"] = {"project_status": rng.choice(["current", "researching", "not_relevant"])}
        elif kind in (ActivityKind.EMAIL_OPEN, ActivityKind.EMAIL_CLICK):
            attributes["campaign"] = "spring"
        templates.append(Activity(source="bench", source_id=f"t{i}", kind=kind, occurred_at=AS_OF,
                                  attributes=attributes))
    return templates


def activity(rng: random.Random, templates: list[Activity], person_id: str, j: int) -> Activity:
    """A new activity record: a template's kind and attributes, its own id, person and moment.

    ``model_copy`` makes a real canonical record without re-validating fields known to be valid, which
    keeps generation from dominating the run.
    """
    age = timedelta(seconds=rng.uniform(0, 200 * 86400))
    return rng.choice(templates).model_copy(update={
        "source_id": f"{person_id}-a{j}", "occurred_at": AS_OF - age, "person_ids": [person_id]})


def person(rng: random.Random, i: int, company_domain: str | None) -> Person:
    title, seniority, department = rng.choice(TITLES)
    mail = rng.choice(MAIL) or company_domain or "example.org"
    custom = {"bant_budget": "approved"} if rng.random() < 0.1 else {}
    return Person(source="bench", source_id=f"p{i}", email=f"person{i}@{mail}", title=title,
                  seniority=seniority, department=department, custom=custom,
                  unsubscribed=rng.random() < 0.05, bounced=rng.random() < 0.02)


def profiles(count: int, seed: int, companies: int = 20_000) -> Iterator[Profile]:
    """Synthetic canonical profiles, one at a time; companies come from a fixed pool, as people share them."""
    rng = random.Random(seed)
    pool = [company(rng, i) for i in range(companies)]
    templates = activity_templates(rng)
    for i in range(count):
        org = pool[rng.randrange(companies)] if rng.random() < 0.9 else None
        who = person(rng, i, org.domain if org else None)
        acts = tuple(activity(rng, templates, who.source_id, j) for j in range(10))
        yield Profile(who, org, acts)


def rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class Clock:
    """Wall and CPU time together: on a shared machine CPU time is the figure for "one core"."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu


def throughput(scorer: Scorer, seed: int, distinct: int = 5_000, rounds: int = 20) -> tuple[float, float]:
    """Best persons/s (wall, CPU) over ``rounds`` passes of ``distinct`` prebuilt profiles."""
    sample = list(profiles(distinct, seed))
    score = scorer.score
    for p in sample[:2000]:  # warm up
        score(p, AS_OF)
    best_wall = best_cpu = 0.0
    for _ in range(rounds):
        with Clock() as clock:
            for p in sample:
                score(p, AS_OF)
        best_wall = max(best_wall, distinct / clock.wall)
        best_cpu = max(best_cpu, distinct / clock.cpu)
    return best_wall, best_cpu


def full_rescore(scorer: Scorer, people: int, seed: int, batch: int = 1_000) -> dict[str, object]:
    """Generate, score and drop ``people`` profiles a batch at a time, as a re-score of the store would.

    Only one batch of records lives at a time, so memory must not grow with ``people``; scoring is
    timed per batch (a clock read per person would cost more than some of the scoring).
    """
    stages: Counter[str] = Counter()
    scoring, total = Clock(), Clock()
    score = scorer.score
    stream = profiles(people, seed)
    done = 0
    with total:
        while done < people:
            records = list(islice(stream, batch))
            with scoring:
                for p in records:
                    result = score(p, AS_OF)
                    result.fingerprint  # noqa: B018 - a re-score compares it to decide whether to write
                    stages[result.stage.value] += 1
            done += len(records)
            if done % max(people // 10, batch) == 0:
                print(f"  ... {done:,} people, peak RSS {rss_mb():.0f} MB", flush=True)
    return {"total": total, "scoring": scoring, "stages": dict(stages)}


# -- the store's re-score ---------------------------------------------------------------------

TWIN_EVERY = 10  # one person in ten is also known to a second CRM, with two of their ten activities there


def seed_store(url: str, people: int, seed: int, companies: int = 20_000, batch: int = 1_000) -> None:
    """Write ``people`` persons (and their companies and activities) through ``store.records.commit_page``."""
    from crmbridge.store import Store

    rng = random.Random(seed)
    pool = [company(rng, i) for i in range(companies)]
    templates = activity_templates(rng)
    started = time.perf_counter()
    with Store(url) as store:
        for start in range(0, companies, batch):
            store.records.commit_page("bench", "companies", EntityType.COMPANY, pool[start:start + batch])
        for start in range(0, people, batch):
            persons, twins, acts, twin_acts = [], [], [], []
            for i in range(start, min(start + batch, people)):
                org = pool[rng.randrange(companies)] if rng.random() < 0.9 else None
                who = person(rng, i, org.domain if org else None).model_copy(update={
                    "company_ids": [org.source_id] if org else [], "updated_at": AS_OF - timedelta(days=30)})
                persons.append(who)
                mine = [activity(rng, templates, who.source_id, j) for j in range(10)]
                if i % TWIN_EVERY == 0:
                    twin = who.model_copy(update={"source": "crm2", "source_id": f"q{i}", "company_ids": [],
                                                  "title": "Head of Sales", "updated_at": AS_OF})
                    twins.append(twin)
                    twin_acts += [a.model_copy(update={"source": "crm2", "person_ids": [twin.source_id]})
                                  for a in mine[8:]]
                    mine = mine[:8]
                acts += mine
            store.records.commit_page("bench", "contacts", EntityType.PERSON, persons)
            store.records.commit_page("bench", "events", EntityType.ACTIVITY, acts)
            if twins:
                store.records.commit_page("crm2", "persons", EntityType.PERSON, twins)
                store.records.commit_page("crm2", "activities", EntityType.ACTIVITY, twin_acts)
            done = start + len(persons)
            if done % max(people // 10, batch) == 0:
                print(f"  ... generated {done:,} people in {time.perf_counter() - started:.0f} s", flush=True)


_COPIED = ("canonical", "companies", "persons", "activities", "links", "identities", "activity_facts",
           "fact_versions")


def seed_postgres(url: str, people: int, seed: int) -> None:
    """The same store generated into SQLite (``commit_page`` there runs at thousands of people a
    second), then copied table by table into PostgreSQL with COPY."""
    with tempfile.TemporaryDirectory(prefix="crmbridge-bench-") as folder:
        seed_store(f"sqlite:///{folder}/store.db", people, seed)
        copy_into_postgres(url, f"sqlite:///{folder}/store.db")


def copy_into_postgres(url: str, sqlite_url: str) -> None:
    """Copy a generated SQLite store's records, links, identities and facts into PostgreSQL with COPY."""
    import sqlite3

    from crmbridge.store import Store
    from crmbridge.store.engine import create_engine_for

    Store(url).close()  # the schema, by the store's own migrations
    source = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    engine = create_engine_for(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        for table in _COPIED:
            cols = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
            with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in source.execute(f"SELECT {', '.join(cols)} FROM {table}"):
                    copy.write_row(row)
            if "id" in cols:
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))")
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f"ANALYZE {', '.join(_COPIED)}")
    engine.dispose()
    print(f"  ... copied into PostgreSQL in {time.perf_counter() - started:.0f} s", flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``), as the backfill benchmark reads it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return rss_mb()


def children_cpu() -> float:
    """CPU seconds of this process's finished children (the workers of a shared re-score)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def children_rss_mb() -> float:
    """The largest peak resident set among this process's finished children."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def bench_database(kind: str, url: str | None, people: int, reuse: bool) -> tuple[str, Callable[[], None]]:
    """The database URL to use and how to clean it up afterwards (nothing to clean when reused)."""
    if kind == "sqlite":
        if url:
            return url, lambda: None
        folder = tempfile.mkdtemp(prefix="crmbridge-bench-")
        return f"sqlite:///{folder}/store.db", lambda: shutil.rmtree(folder, ignore_errors=True)
    if not url:
        raise SystemExit("--store postgres needs --url postgresql://user@host/database")
    from crmbridge.store.engine import create_engine_for

    schema = f"bench_scoring_{people}" if reuse else f"bench_scoring_{uuid.uuid4().hex[:8]}"
    admin = create_engine_for(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))

    def drop() -> None:
        if not reuse:
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


def store_rescore(args: argparse.Namespace) -> None:
    from crmbridge.rescore import Rescorer
    from crmbridge.store import Store

    url, cleanup = bench_database(args.store, args.url, args.people, args.reuse)
    try:
        with Store(url) as store:
            held = store.identities.count(EntityType.PERSON)
        if held != args.people:
            if held:
                raise SystemExit(f"the store holds {held:,} people, not {args.people:,}: use another --url")
            started = time.perf_counter()
            seed = seed_postgres if args.store == "postgres" else seed_store
            task = (url, args.people, args.seed + 1)
            if args.copy_from and args.store == "postgres":
                seed, task = copy_into_postgres, (url, args.copy_from)  # type: ignore[assignment]
            child = multiprocessing.get_context("spawn").Process(target=seed, args=task)
            child.start()
            child.join()
            if child.exitcode:
                raise SystemExit(f"generating the store failed (exit code {child.exitcode})")
            print(f"generated {args.people:,} people into {args.store} in {time.perf_counter() - started:.0f} s "
                  f"(not part of the figures)")
        model, policy = ScoringModel.load(args.model), load_policy(ROOT / "mappings" / "merge.yaml")
        print(f"model {args.model}, python {sys.version.split()[0]}, store {args.store}; "
              f"peak RSS before scoring {peak_rss_mb():.0f} MB")
        with Store(url) as store:
            scored = ("scores", "score_inputs", "account_scores", "account_history")
            with store.engine.begin() as conn:  # a reused store starts unscored too
                if args.store == "postgres":  # and without the dead rows of earlier runs to step over
                    conn.execute(sa.text(f"TRUNCATE {', '.join(scored)}"))
                else:
                    for table in scored:
                        conn.execute(sa.text(f"DELETE FROM {table}"))
            runs = [("first score", AS_OF), ("next day", AS_OF + timedelta(days=1)),
                    ("same day again", AS_OF + timedelta(days=1))]
            for label, moment in runs:
                if args.store == "postgres":  # what autovacuum does after a big change, outside the figures
                    with store.engine.connect() as conn:
                        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                            f"VACUUM ANALYZE {', '.join(scored)}")
                rescorer = Rescorer(store, model, policy, clock=lambda moment=moment: moment)
                children = children_cpu()
                with Clock() as clock:
                    report = rescorer.run(workers=args.workers)
                cpu = clock.cpu + children_cpu() - children
                print(f"{label:>15}: {report.scored:,} people in {clock.wall:.1f} s wall, {cpu:.1f} s CPU = "
                      f"{report.scored / clock.wall:,.0f} persons/s wall, {report.scored / cpu:,.0f} per "
                      f"CPU-second; {report.from_digests:,} from digests, {report.written:,} scores written, "
                      f"{report.accounts:,} accounts "
                      f"({report.accounts_written:,} written); peak RSS {peak_rss_mb():.0f} MB"
                      + (f", of a worker {children_rss_mb():.0f} MB" if args.workers > 1 else ""), flush=True)
            print(f"stages: {dict(report.stages)}")
    finally:
        cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "examples" / "scoring" / "default.yaml"))
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", choices=["sqlite", "postgres"],
                        help="re-score a store of this kind instead of profiles in memory")
    parser.add_argument("--url", help="the database (PostgreSQL: a server; a schema is made in it)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the generated store and reuse it when it already holds --people people")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes sharing the re-score (CPU is then theirs and this process's together)")
    parser.add_argument("--copy-from", metavar="SQLITE_URL",
                        help="with --store postgres: copy this generated SQLite store instead of generating one")
    args = parser.parse_args()
    if args.store:
        store_rescore(args)
        return
    scorer = Scorer(ScoringModel.load(args.model))
    print(f"model {args.model}, python {sys.version.split()[0]}")
    start = rss_mb()
    run = full_rescore(scorer, args.people, args.seed + 1)
    total, scoring = run["total"], run["scoring"]
    assert isinstance(total, Clock) and isinstance(scoring, Clock)
    print(f"full re-score of {args.people:,} people: {total.wall:.1f} s wall, {total.cpu:.1f} s CPU, of which "
          f"scoring {scoring.cpu:.1f} s CPU = {args.people / scoring.cpu:,.0f} persons/s "
          f"(the rest builds the synthetic canonical records)")
    print(f"peak RSS: {rss_mb():.0f} MB (at start: {start:.0f} MB)")
    print(f"stages: {run['stages']}")
    wall_rate, cpu_rate = throughput(scorer, args.seed)
    print(f"throughput: {cpu_rate:,.0f} persons/s per CPU-second ({wall_rate:,.0f}/s wall), "
          f"10 activities each, one core; target 20,000")


if __name__ == "__main__":
    main()
