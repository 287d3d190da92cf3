"""Scoring facts: each live activity, as the scoring model reads it, filed under each person it is linked to.

A re-score of a million people must not parse ten million activity records. The model reads only a
few fields of an activity (kind, when, who acted, subject, owner, source, attributes), so each live
activity keeps those in ``activity_facts`` as one short JSON array per linked person record, in a
table clustered by person: a re-score reads a person's facts as one concatenated text.

The table mirrors the activity rows and their person links and is kept in the same transaction as
every write that changes them (``Records.commit_page``: upserts, archives, merges), so it never says
something the records do not. ``rebuild`` derives it from the records from scratch (the migration
that introduced it, and the tests that compare the two).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.model import Activity, ActivityKind, ActorKind, EntityType, SourceRecord
from crmbridge.store.engine import chunked

# The fields of an activity the scoring engine and the model's conditions can read, in their order
# inside a fact; a new readable field means a new migration that rebuilds the table.
FACT_FIELDS = ("occurred_at", "kind", "actor", "subject", "owner_id", "source", "source_id", "attributes")


def fact(activity: Activity) -> str:
    """One activity's fact: a JSON array of ``FACT_FIELDS``, each value as the stored record's JSON has
    it (a time inside the attributes is the text the record reads back, not the ``datetime`` it held)."""
    values = activity.model_dump(mode="json", include=_FACT_SET)
    return orjson.dumps([values[name] for name in FACT_FIELDS]).decode()


_FACT_SET = frozenset(FACT_FIELDS)


class ScoringActivity:
    """What scoring reads of an activity, decoded from a fact: plain attributes, as the engine reads
    an ``Activity``'s (it looks into ``__dict__``), and nothing else."""

    kind: ActivityKind
    occurred_at: datetime
    actor: ActorKind | None
    subject: str | None
    owner_id: str | None
    source: str
    source_id: str
    attributes: dict[str, Any]

    def __repr__(self) -> str:
        return f"ScoringActivity({self.__dict__!r})"


_KINDS = {k.value: k for k in ActivityKind}
_ACTORS: dict[str | None, ActorKind | None] = {a.value: a for a in ActorKind}
_ACTORS[None] = None
_fromiso = datetime.fromisoformat
_new = object.__new__
_set = object.__setattr__


def decode_facts(text: str | None) -> list[ScoringActivity]:
    """The activities of one person record from their facts joined by commas (as the SQL reads them)."""
    if not text:
        return []
    out = []
    kinds, actors = _KINDS, _ACTORS
    for at, kind, actor, subject, owner, source, sid, attributes in orjson.loads(f"[{text}]"):
        a = _new(ScoringActivity)
        _set(a, "__dict__", {"kind": kinds[kind], "occurred_at": _fromiso(at), "actor": actors[actor],
                             "subject": subject, "owner_id": owner, "source": source, "source_id": sid,
                             "attributes": attributes})
        out.append(a)
    return out


# -- keeping the table in step with the records ----------------------------------------------------

def _live(record: SourceRecord) -> bool:
    return not record.archived and not record.merged_into


def refresh(conn: sa.Connection, source: str, activities: Sequence[SourceRecord]) -> None:
    """After ``activities`` were written and relinked: their facts replace whatever they had."""
    last = {a.source_id: a for a in activities}  # a page may repeat an id: the last version is stored
    drop(conn, source, last)
    live = {sid: a for sid, a in last.items() if isinstance(a, Activity) and _live(a)}
    if not live:
        return
    rows = []
    for chunk in chunked(sorted(live)):
        for from_id, to_id in conn.execute(sa.text(
                "SELECT from_id, to_id FROM links WHERE source = :source AND from_entity = 'activity' "
                "AND to_entity = 'person' AND from_id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                {"source": source, "ids": list(chunk)}):
            rows.append((source, to_id, from_id, fact(live[from_id])))
    _insert(conn, rows)
    _changed(conn, source, {person for _, person, _, _ in rows})


def drop(conn: sa.Connection, source: str, activity_ids: Iterable[str]) -> None:
    """Archived or merged-away activities count for nobody."""
    people: set[str] = set()
    for chunk in chunked(sorted(set(activity_ids))):
        people.update(conn.execute(sa.text(
            "DELETE FROM activity_facts WHERE source = :source AND activity_id IN :ids RETURNING person_id")
            .bindparams(sa.bindparam("ids", expanding=True)), {"source": source, "ids": list(chunk)}).scalars())
    _changed(conn, source, people)


def _changed(conn: sa.Connection, source: str, person_ids: Iterable[str]) -> None:
    """Count a change of the facts filed under these person records (``fact_versions``): a scoring
    digest made before it no longer matches, so the next re-score reads their activities again."""
    ids = sorted(set(person_ids))
    if not ids:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(  # in key order, so that two writers never wait on each other's rows crosswise
        f"INSERT INTO fact_versions (source, person_id, version) VALUES ({mark}, {mark}, 1) "
        "ON CONFLICT (source, person_id) DO UPDATE SET version = fact_versions.version + 1",
        [(source, person) for person in ids])


def merged(conn: sa.Connection, source: str, entity: EntityType, merges: Mapping[str, str]) -> None:
    """Follow merges as the links do: a merged-away activity counts no more, and a merged-away
    person's activities become the survivor's."""
    if entity is EntityType.ACTIVITY:
        drop(conn, source, merges)
    elif entity is EntityType.PERSON:
        for loser, winner in merges.items():
            params = {"source": source, "loser": loser, "winner": winner}
            conn.execute(sa.text(
                "INSERT INTO activity_facts (source, person_id, activity_id, fact) "
                "SELECT source, :winner, activity_id, fact FROM activity_facts "
                "WHERE source = :source AND person_id = :loser ON CONFLICT DO NOTHING"), params)
            conn.execute(sa.text("DELETE FROM activity_facts WHERE source = :source AND person_id = :loser"), params)
        _changed(conn, source, [*merges, *merges.values()])


def archived(conn: sa.Connection, source: str, entity: EntityType, ids: Sequence[str]) -> None:
    if entity is EntityType.ACTIVITY and ids:
        drop(conn, source, ids)


def _insert(conn: sa.Connection, rows: list[tuple[str, str, str, str]]) -> None:
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    # A page may link one activity to a person twice (ids repeated): the fact is the same.
    conn.exec_driver_sql("INSERT INTO activity_facts (source, person_id, activity_id, fact) "
                         f"VALUES ({mark}, {mark}, {mark}, {mark}) ON CONFLICT DO NOTHING", rows)


# -- from scratch ----------------------------------------------------------------------------------

def derive(conn: sa.Connection, batch: int = 5_000) -> Iterator[tuple[str, str, str, str]]:
    """Every fact the records imply: each live activity once per person link, in key order."""
    from crmbridge.store.decode import DECODERS

    decode = DECODERS[Activity]
    q = sa.text("SELECT l.source, l.to_id, l.from_id, a.data FROM links l JOIN activities a "
                "ON a.source = l.source AND a.source_id = l.from_id "
                "WHERE l.from_entity = 'activity' AND l.to_entity = 'person' AND a.archived = :no "
                "ORDER BY l.source, l.to_id, l.from_id").execution_options(stream_results=True, yield_per=batch)
    result = conn.execute(q, {"no": False})
    for source, person_id, activity_id, data in result:
        yield source, person_id, activity_id, fact(decode(data))  # type: ignore[arg-type]


def rebuild(conn: sa.Connection, batch: int = 5_000) -> None:
    """Replace the table with what the records imply, a batch of facts at a time; every scoring digest
    is made again from them."""
    conn.execute(sa.text("DELETE FROM activity_facts"))
    if sa.inspect(conn).has_table("score_inputs"):
        conn.execute(sa.text("DELETE FROM score_inputs"))
    rows: list[tuple[str, str, str, str]] = []
    for row in derive(conn, batch):
        rows.append(row)
        if len(rows) >= batch:
            _insert(conn, rows)
            rows = []
    _insert(conn, rows)
