"""What a full re-score reads and writes in bulk: the people of one canonical id range with their
activities and stored fingerprints, and the scores that changed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from crmbridge.model import Company, Person
from crmbridge.store.decode import DECODERS
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


def company_members(conn: sa.Connection, canonical_ids: Sequence[int]) -> dict[int, list[Company]]:
    """The live member records of these canonical companies, as ``Store.members`` reads them, but
    decoded on the fast path."""
    out: dict[int, list[Company]] = {}
    decode = DECODERS[Company]
    dialect = conn.dialect.name
    for start in range(0, len(canonical_ids), 500):
        ids = list(canonical_ids[start:start + 500])
        sql = ("SELECT i.canonical_id, c.data, c.merged_into FROM identities i "
               f"{_each_member('companies', 'c', dialect)} WHERE i.entity = 'company' "
               f"AND c.archived = {_marks(dialect, 1)} AND i.canonical_id IN ({_marks(dialect, len(ids))}) "
               "ORDER BY i.canonical_id, i.source")
        for cid, data, merged_into in _fetch(conn, sql, [False, *ids]):
            record = decode(data)
            fields = record.__dict__
            fields["archived"] = False
            fields["merged_into"] = merged_into
            record.__pydantic_fields_set__.update(("archived", "merged_into"))
            out.setdefault(int(cid), []).append(record)  # type: ignore[arg-type]
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
                   "(SELECT * FROM scores WHERE company_id = c.id ORDER BY person_id LIMIT ALL) s "
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


def account_fingerprints(conn: sa.Connection, company_ids: Sequence[int]) -> dict[int, str]:
    """The fingerprints of these companies' stored account scores."""
    out: dict[int, str] = {}
    dialect = conn.dialect.name
    for start in range(0, len(company_ids), 500):
        ids = list(company_ids[start:start + 500])
        sql = f"SELECT company_id, fingerprint FROM account_scores WHERE company_id IN ({_marks(dialect, len(ids))})"
        out.update((int(c), fp) for c, fp in _fetch(conn, sql, ids))
    return out
