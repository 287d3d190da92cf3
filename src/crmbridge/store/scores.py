"""What a full re-score reads and writes in bulk: the people of one canonical id range with their
activities and stored fingerprints, and the scores that changed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.model import Company, EntityType, Person
from crmbridge.store import schema
from crmbridge.store.decode import DECODERS
from crmbridge.store.engine import IN_LIMIT, chunked
from crmbridge.store.features import ScoringActivity, decode_facts

# Canonical people per chunk: a chunk's records (ten activities a person or more) are decoded at once,
# so this bounds the memory of a re-score whatever the store holds.
CHUNK_PEOPLE = 2_000


@dataclass
class ScoringChunk:
    """The canonical people of one chunk, as a re-score reads them."""

    people: list[tuple[int, list[Person]]] = field(default_factory=list)  # live members, by id then source
    activities: dict[tuple[str, str], list[ScoringActivity]] = field(default_factory=dict)  # live, by person record
    fingerprints: dict[int, str] = field(default_factory=dict)  # of the stored scores


# The score table's columns, written by ``upsert_scores`` (the PostgreSQL types are kept for reference).
SCORE_COLUMNS = (("person_id", "bigint"), ("email", "text"), ("total", "float8"), ("fit", "float8"),
                 ("engagement", "float8"), ("stage", "text"), ("proposed", "text"), ("disqualified", "text"),
                 ("hand_raise", "boolean"), ("company_id", "bigint"), ("fingerprint", "text"),
                 ("as_of_ms", "bigint"), ("scored_ms", "bigint"), ("data", "text"), ("persona", "text"),
                 ("responded", "boolean"))


def _people_sql(dialect: str, ids: int) -> str:
    """Live member records of a chunk's people, each with the facts of its activities in one text: in
    the driver's own placeholder style, with ``ids`` placeholders for the canonical ids (else a range)."""
    mark = "%s" if dialect == "postgresql" else "?"
    concat = "string_agg" if dialect == "postgresql" else "group_concat"
    within = (f"i.canonical_id IN ({', '.join([mark] * ids)})" if ids else
              f"i.canonical_id > {mark} AND i.canonical_id <= {mark}")
    return ("SELECT i.canonical_id, i.source, i.source_id, p.data, p.merged_into, "
            f"(SELECT {concat}(f.fact, ',') FROM activity_facts f "
            "WHERE f.source = i.source AND f.person_id = i.source_id) "
            f"FROM identities i {_each_member('persons', 'p', dialect)} "
            f"WHERE i.entity = 'person' AND p.archived = {mark} AND {within} ORDER BY i.canonical_id, i.source")


def _each_member(table: str, alias: str, dialect: str = "postgresql") -> str:
    """Join each identity of the chunk to its record by the record's key. PostgreSQL is told to do
    so row by row (LATERAL, kept apart by LIMIT; the key is unique): left to itself it hashes the whole
    table for every chunk, so a re-score
    would read every record once per chunk. SQLite seeks the key on its own."""
    if dialect == "postgresql":
        return (f"CROSS JOIN LATERAL (SELECT * FROM {table} r WHERE r.source = i.source "
                f"AND r.source_id = i.source_id LIMIT 1) {alias}")  # LIMIT: not flattened into a join
    return f"JOIN {table} {alias} ON {alias}.source = i.source AND {alias}.source_id = i.source_id"


def _scores_sql(dialect: str, ids: int) -> str:
    mark = "%s" if dialect == "postgresql" else "?"
    return ("SELECT person_id, fingerprint FROM scores WHERE "
            + (f"person_id IN ({', '.join([mark] * ids)})" if ids else f"person_id > {mark} AND person_id <= {mark}"))


def read_chunk(conn: sa.Connection, *, after: int = 0, last: int = 0, ids: Sequence[int] = ()) -> ScoringChunk:
    """The people of canonical ids ``after < id <= last`` (or ``ids``) in two queries: their live
    member records with their activities' facts, and their stored fingerprints.

    Both run on the driver's cursor: SQLAlchemy's result rows cost more per row than the rest of the
    reading, and these are plain text and numbers.
    """
    dialect = conn.dialect.name
    within: list[Any] = list(ids) if ids else [after, last]
    person = DECODERS[Person]
    chunk = ScoringChunk()
    people, activities = chunk.people, chunk.activities
    group: list[Person] = []
    current = None
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_people_sql(dialect, len(ids)), [False, *within])
        for cid, source, sid, data, merged_into, facts in cursor.fetchall():
            if cid != current:
                group = []
                people.append((int(cid), group))
                current = cid
            record = person(data)
            # As the store reads a live record: the row's columns, not its JSON, say whether it was merged.
            fields = record.__dict__
            fields["archived"] = False
            fields["merged_into"] = merged_into
            record.__pydantic_fields_set__.update(("archived", "merged_into"))
            group.append(record)  # type: ignore[arg-type]
            if facts:
                activities[(source, sid)] = decode_facts(facts)
        cursor.execute(_scores_sql(dialect, len(ids)), within)
        chunk.fingerprints = {int(pid): fp for pid, fp in cursor.fetchall()}
    finally:
        cursor.close()
    return chunk


@dataclass
class Stamps:
    """What says whether the stored digests of one chunk's people still hold: each person's member
    records as they are now, and what each stored digest was made from."""

    members: dict[int, str] = field(default_factory=dict)  # canonical id -> stamp of its live member records
    inputs: dict[int, tuple[str, str, str, str]] = field(default_factory=dict)  # model, members, context, digest
    fingerprints: dict[int, str] = field(default_factory=dict)  # of the stored scores


def read_stamps(conn: sa.Connection, *, after: int = 0, last: int = 0, ids: Sequence[int] = ()) -> Stamps:
    """The stamps of canonical people ``after < id <= last`` (or ``ids``): three index reads, no record
    decoded. A member's stamp is its key, content hash and fact version. Read before the records a
    digest is then made from, so a digest is never older than the stamp kept with it."""
    dialect = conn.dialect.name
    mark = "%s" if dialect == "postgresql" else "?"
    within: list[Any] = list(ids) if ids else [after, last]

    def where(column: str) -> str:
        return (f"{column} IN ({', '.join([mark] * len(ids))})" if ids else
                f"{column} > {mark} AND {column} <= {mark}")

    stamps = Stamps()
    members: dict[int, list[str]] = {}
    for cid, source, sid, content, version in _fetch(conn, (
            # The fact version as a subquery, looked up row by row: as a join, PostgreSQL hashed the
            # whole table for every chunk.
            "SELECT i.canonical_id, i.source, i.source_id, p.content_hash, (SELECT v.version FROM fact_versions v "
            "WHERE v.source = i.source AND v.person_id = i.source_id) "
            f"FROM identities i {_each_member('persons', 'p', dialect)} "
            f"WHERE i.entity = 'person' AND p.archived = {mark} AND {where('i.canonical_id')} "
            "ORDER BY i.canonical_id, i.source"), [False, *within]):
        members.setdefault(int(cid), []).append(f"{source}\x1f{sid}\x1f{content}\x1f{version or 0}")
    stamps.members = {cid: "\x1e".join(parts) for cid, parts in members.items()}
    stamps.inputs = {int(pid): (model, m, context, digest) for pid, model, m, context, digest in _fetch(
        conn, f"SELECT person_id, model, members, context, digest FROM score_inputs WHERE {where('person_id')}",
        within)}
    stamps.fingerprints = {int(pid): fp for pid, fp in _fetch(conn, _scores_sql(dialect, len(ids)), within)}
    return stamps


def upsert_inputs(conn: sa.Connection, rows: Sequence[tuple[int, str, str, str, str]]) -> None:
    """Keep the digests of people just scored from their records: (person_id, model, members, context,
    digest)."""
    if not rows:
        return
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f"INSERT INTO score_inputs (person_id, model, members, context, digest) VALUES ({mark}, {mark}, "
            f"{mark}, {mark}, {mark}) ON CONFLICT (person_id) DO UPDATE SET model = excluded.model, "
            "members = excluded.members, context = excluded.context, digest = excluded.digest", rows)
    finally:
        cursor.close()


def chunk_bounds(conn: sa.Connection, batch: int = CHUNK_PEOPLE) -> list[tuple[int, int]]:
    """The canonical id ranges ``(after, last]`` of a full re-score's chunks, ``batch`` people each,
    found by keyset (each step reads one index range)."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    sql = (f"SELECT max(canonical_id) FROM (SELECT canonical_id FROM identities WHERE entity = 'person' "
           f"AND canonical_id > {mark} ORDER BY canonical_id LIMIT {int(batch)}) ahead")
    out: list[tuple[int, int]] = []
    after = 0
    while True:
        ((last,),) = _fetch(conn, sql, [after])
        if last is None:
            return out
        out.append((after, int(last)))
        after = int(last)


def upsert_scores(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write person scores (insert, or replace the stored one) with one prepared statement for all
    rows: on PostgreSQL, psycopg sends them pipelined, which measured ten times faster than one
    INSERT over arrays of the same rows (adapting 2,000-element text arrays is slow).

    A stored score with the same fingerprint is left as it is: two replicas that re-score a person
    at once (one per CRM's webhook) both see the old fingerprint, and the second write would only
    move ``scored_ms``, which write-back then sends to every CRM, whose webhooks start it again."""
    cols = [name for name, _ in SCORE_COLUMNS]
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    differs = "IS DISTINCT FROM" if postgres else "IS NOT"
    sql = (f"INSERT INTO scores ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))}) "
           f"ON CONFLICT (person_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in cols[1:])} "
           f"WHERE scores.fingerprint {differs} excluded.fingerprint")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, [tuple(r.get(c) for c in cols) for r in rows])
    finally:
        cursor.close()


# -- what an account roll-up reads ------------------------------------------------------------------

def _marks(dialect: str, n: int) -> str:
    return ", ".join(["%s" if dialect == "postgresql" else "?"] * n)


def _fetch(conn: sa.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()  # type: ignore[no-any-return]
    finally:
        cursor.close()


def _live_companies(conn: sa.Connection, canonical_ids: Sequence[int], more: str = "") -> Iterator[Any]:
    """The live member records of these canonical companies, a row each: canonical id, source, source
    id, content hash, then the ``more`` columns (of ``c``)."""
    dialect = conn.dialect.name
    for ids in chunked(canonical_ids):
        yield from _fetch(conn, (
            f"SELECT i.canonical_id, c.source, c.source_id, c.content_hash{more} "
            f"FROM identities i {_each_member('companies', 'c', dialect)} WHERE i.entity = 'company' "
            f"AND c.archived = {_marks(dialect, 1)} AND i.canonical_id IN ({_marks(dialect, len(ids))}) "
            "ORDER BY i.canonical_id, i.source"), [False, *ids])


def _stamp(stamps: dict[int, str], cid: int, source: str, sid: str, content: str) -> None:
    """Add a member record to its company's stamp: the members' keys and content hashes, in order."""
    part = f"{source}\x1f{sid}\x1f{content}"
    stamps[cid] = f"{stamps[cid]}\x1e{part}" if cid in stamps else part


def company_members(conn: sa.Connection, canonical_ids: Sequence[int],
                    versions: dict[int, str] | None = None) -> dict[int, list[Company]]:
    """The live member records of these canonical companies, as ``Store.members`` reads them, but
    decoded on the fast path; with ``versions``, each company's stamp (read in the same query as the
    records) is put there too."""
    out: dict[int, list[Company]] = {}
    decode = DECODERS[Company]
    for cid, source, sid, content, data, merged_into in _live_companies(conn, canonical_ids,
                                                                         ", c.data, c.merged_into"):
        key = int(cid)
        if versions is not None:
            _stamp(versions, key, source, sid, content)
        record = decode(data)
        fields = record.__dict__
        fields["archived"] = False
        fields["merged_into"] = merged_into
        record.__pydantic_fields_set__.update(("archived", "merged_into"))
        out.setdefault(key, []).append(record)  # type: ignore[arg-type]
    return out


def company_stamps(conn: sa.Connection, canonical_ids: Sequence[int]) -> dict[int, str]:
    """The stamps ``company_members`` puts in its ``versions``, without reading the records."""
    out: dict[int, str] = {}
    for cid, source, sid, content in _live_companies(conn, canonical_ids):
        _stamp(out, int(cid), source, sid, content)
    return out


def company_people(conn: sa.Connection, company_ids: Sequence[int]) -> dict[int, list[tuple[Any, ...]]]:
    """Each company's scored people in person id order: (email, engagement, disqualified, stage,
    persona, responded), all from columns (taking the last two out of each score's JSON cost more
    than rolling the accounts up)."""
    dialect = conn.dialect.name
    out: dict[int, list[tuple[Any, ...]]] = {}
    for start in range(0, len(company_ids), 500):
        ids = list(company_ids[start:start + 500])
        if dialect == "postgresql":
            # Company by company through the index: with statistics a re-score has just outdated, the
            # planner would scan the whole table for every batch.
            sql = ("SELECT c.id, s.email, s.engagement, s.disqualified, s.stage, s.persona, s.responded "
                   "FROM unnest(CAST(%s AS bigint[])) WITH ORDINALITY c(id, n) CROSS JOIN LATERAL "
                   "(SELECT person_id, email, engagement, disqualified, stage, persona, responded FROM scores "
                   "WHERE company_id = c.id ORDER BY person_id LIMIT ALL) s "
                   "ORDER BY c.n, s.person_id")
            params: list[Any] = [sorted(ids)]
            # Outdated statistics also price these look-ups high enough for JIT compilation, which
            # alone took ~80 ms a batch: none for them (for this transaction only).
            conn.exec_driver_sql("SET LOCAL jit = off")
        else:
            sql = ("SELECT company_id, email, engagement, disqualified, stage, persona, responded FROM scores "
                   f"WHERE company_id IN ({_marks(dialect, len(ids))}) ORDER BY company_id, person_id")
            params = ids
        for cid, *rest in _fetch(conn, sql, params):
            out.setdefault(int(cid), []).append(tuple(rest))
    return out


def _any_of(dialect: str, column: str, ids: Sequence[int]) -> tuple[str, list[Any]]:
    """``column`` among ``ids``: one array parameter on PostgreSQL (binding and planning 500
    parameters cost more than the look-ups), a list of them on SQLite."""
    if dialect == "postgresql":
        return f"{column} = ANY(CAST(%s AS bigint[]))", [list(ids)]
    return f"{column} IN ({_marks(dialect, len(ids))})", list(ids)


def account_fingerprints(conn: sa.Connection, company_ids: Sequence[int]) -> dict[int, str]:
    """The fingerprints of these companies' stored account scores."""
    out: dict[int, str] = {}
    dialect = conn.dialect.name
    for ids in chunked(company_ids):
        where, params = _any_of(dialect, "company_id", ids)
        out.update((int(c), fp) for c, fp in _fetch(conn, f"SELECT company_id, fingerprint FROM account_scores "
                                                          f"WHERE {where}", params))
    return out


class Scores:
    """The ``scores``, ``account_scores`` and ``account_history`` tables: what a re-score reads and
    writes, and what commands and the dashboard show of it."""

    def __init__(self, engine: sa.Engine, insert: Callable[[sa.Table], Any]) -> None:
        self.engine = engine
        self._insert = insert

    def scoring_chunks(self, person_ids: Iterable[int] | None = None, batch: int = CHUNK_PEOPLE
                       ) -> Iterator[ScoringChunk]:
        """Everyone (``person_ids`` None) or the given canonical people, a chunk at a time, each chunk
        read in two set-based queries: live member records with their activities' scoring facts, and
        stored fingerprints.

        Everyone is walked by canonical id ranges (keyset, never OFFSET), so each chunk costs the same
        however far into the store it lies, and memory holds one chunk.
        """
        if person_ids is not None:
            ids = sorted(set(person_ids))
            for start in range(0, len(ids), IN_LIMIT):
                chunk = self._scoring_chunk(ids=ids[start:start + IN_LIMIT])
                if chunk.people:
                    yield chunk
            return
        ident = schema.identities.c
        after = 0
        while True:
            ahead = (sa.select(ident.canonical_id).where(ident.entity == EntityType.PERSON.value,
                                                         ident.canonical_id > after)
                     .order_by(ident.canonical_id).limit(batch).subquery())
            with self.engine.connect() as conn:
                last = conn.execute(sa.select(sa.func.max(ahead.c.canonical_id))).scalar()
            if last is None:
                return
            chunk = self._scoring_chunk(after=after, last=int(last))
            if chunk.people:
                yield chunk
            after = int(last)

    def _scoring_chunk(self, *, after: int = 0, last: int = 0, ids: Sequence[int] = ()) -> ScoringChunk:
        with self.engine.connect() as conn:
            return read_chunk(conn, after=after, last=last, ids=ids)

    def write_scores(self, rows: Sequence[Mapping[str, Any]],
                     inputs: Sequence[tuple[int, str, str, str, str]] = ()) -> int:
        """Store person scores already known to have changed (their fingerprints were compared when
        they were read), and the digests made from records (``upsert_inputs``), in one transaction;
        returns how many scores were written."""
        if not rows and not inputs:
            return 0
        with self.engine.begin() as conn:
            if rows:
                upsert_scores(conn, rows)
            upsert_inputs(conn, inputs)
        return len(rows)

    def company_people(self, company_ids: Sequence[int]) -> dict[int, list[tuple[Any, ...]]]:
        """For an account roll-up, each company's scored people in person id order: (email,
        engagement, disqualified, stage, persona, responded); only those two are read from the data."""
        sc = schema.scores.c
        out: dict[int, list[tuple[Any, ...]]] = {}
        loads = orjson.loads
        with self.engine.connect() as conn:
            for chunk in chunked(list(company_ids)):
                q = sa.select(sc.company_id, sc.email, sc.engagement, sc.disqualified, sc.stage, sc.data).where(
                    sc.company_id.in_(chunk)).order_by(sc.company_id, sc.person_id)
                for cid, email, engagement, disqualified, stage, data in conn.execute(q):
                    d = loads(data)
                    out.setdefault(int(cid), []).append(
                        (email, engagement, disqualified, stage, d.get("persona"), d.get("responded")))
        return out

    def scored_companies(self) -> list[int]:
        sc = schema.scores.c
        with self.engine.connect() as conn:
            return sorted(int(c) for c in conn.execute(
                sa.select(sc.company_id).distinct().where(sc.company_id.is_not(None))).scalars())

    def account_history(self, company_ids: Sequence[int], since_ms: int) -> dict[int, list[tuple[int, float]]]:
        out: dict[int, list[tuple[int, float]]] = {}
        with self.engine.connect() as conn:
            dialect = conn.dialect.name
            for ids in chunked(company_ids):
                where, params = _any_of(dialect, "company_id", ids)
                sql = (f"SELECT company_id, at_ms, score FROM account_history WHERE {where} "
                       f"AND at_ms >= {_marks(dialect, 1)} ORDER BY company_id, at_ms")
                for cid, at, score in _fetch(conn, sql, [*params, since_ms]):
                    out.setdefault(int(cid), []).append((int(at), float(score)))
        return out

    def save_account_scores(self, rows: Sequence[Mapping[str, Any]], at_ms: int) -> int:
        """Store account scores whose fingerprint changed, and note each new score in the history.

        On the driver's cursor, one prepared statement for all rows, as ``upsert_scores`` writes."""
        cols = [c.name for c in schema.account_scores.columns]
        with self.engine.begin() as conn:
            known = account_fingerprints(conn, [int(r["company_id"]) for r in rows])
            changed = [r for r in rows if known.get(int(r["company_id"])) != r["fingerprint"]]
            if not changed:
                return 0
            mark = "%s" if conn.dialect.name == "postgresql" else "?"
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(
                    f"INSERT INTO account_scores ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))}) "
                    f"ON CONFLICT (company_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in cols[1:])}",
                    [tuple(r[c] for c in cols) for r in changed])
                cursor.executemany(f"INSERT INTO account_history (company_id, at_ms, score) VALUES ({mark}, {mark}, "
                                   f"{mark}) ON CONFLICT DO NOTHING",
                                   [(r["company_id"], at_ms, r["score"]) for r in changed])
            finally:
                cursor.close()
        return len(changed)

    def score_of(self, person_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.scores).where(schema.scores.c.person_id == person_id)).first()
        return None if row is None else {**row._asdict(), "data": orjson.loads(row.data)}

    def stage_counts(self) -> dict[str, int]:
        sc = schema.scores.c
        with self.engine.connect() as conn:
            return {stage: int(n) for stage, n in conn.execute(
                sa.select(sc.stage, sa.func.count()).group_by(sc.stage))}

    def top_scores(self, stage: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
        sc = schema.scores.c
        q = sa.select(schema.scores).order_by(sc.total.desc(), sc.person_id).limit(limit)
        if stage:
            q = q.where(sc.stage == stage)
        with self.engine.connect() as conn:
            return [{**row._asdict(), "data": orjson.loads(row.data)} for row in conn.execute(q)]

