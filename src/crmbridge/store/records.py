"""Records: what each CRM said, by (source, source_id). A page is committed in one transaction with
its upserts, links, soft deletes, merges and the checkpoint after it; the readers stream records back."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from crmbridge.identity import company_name_key
from crmbridge.model import ENTITY_CLASSES, Activity, Company, EntityType, Person, SourceRecord
from crmbridge.store import features, schema
from crmbridge.store.cursors import Cursors, now_ms
from crmbridge.store.engine import chunked
from crmbridge.store.identities import resolve, with_state


def _ms(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _older(incoming: int | None, stored: int | None) -> bool:
    return incoming is not None and stored is not None and incoming < stored


# Which id lists of a record become links, and to what.
_LINK_FIELDS: dict[EntityType, tuple[tuple[str, EntityType], ...]] = {
    EntityType.PERSON: (("company_ids", EntityType.COMPANY), ("owner_id", EntityType.OWNER)),
    EntityType.COMPANY: (("owner_id", EntityType.OWNER),),
    EntityType.ACTIVITY: (
        ("person_ids", EntityType.PERSON),
        ("company_ids", EntityType.COMPANY),
        ("deal_ids", EntityType.DEAL),
        ("owner_id", EntityType.OWNER),
    ),
    EntityType.DEAL: (
        ("person_ids", EntityType.PERSON),
        ("company_ids", EntityType.COMPANY),
        ("owner_id", EntityType.OWNER),
    ),
    EntityType.OWNER: (),
    EntityType.PIPELINE: (),
}


_MATCH_KEYS = (EntityType.PERSON, EntityType.COMPANY)


@dataclass
class PageResult:
    """What committing one page did; ``unchanged`` records cost no write."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0
    archived: int = 0
    merged: int = 0
    changed_ids: list[str] = field(default_factory=list)

    def add(self, other: PageResult) -> None:
        self.new += other.new
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.archived += other.archived
        self.merged += other.merged
        self.changed_ids.extend(other.changed_ids)

    def as_dict(self) -> dict[str, int]:
        return {"new": self.new, "changed": self.changed, "unchanged": self.unchanged,
                "stale": self.stale, "archived": self.archived, "merged": self.merged}


def _content_hash(record: SourceRecord) -> str:
    """What a record says, without when the CRM last touched it: a version that only moved
    ``updated_at`` (our own write-back of score fields, which map to nothing we read) is no change.
    Were it one, it would make that CRM the most recent for every field of the golden record, and two
    CRMs that disagree on a field would flip the score at each of our writes, forever."""
    data = record.model_dump_json(exclude={"updated_at"}).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _row(source: str, stream: str, record: SourceRecord, stored: int) -> dict[str, Any]:
    data = record.model_dump_json().encode()
    row: dict[str, Any] = {
        "source": source,
        "stream": stream,
        "source_id": record.source_id,
        "data": data.decode(),
        "content_hash": _content_hash(record),
        "source_updated_ms": _ms(record.updated_at),
        "archived": record.archived or record.merged_into is not None,
        "archived_ms": stored if record.archived else None,
        "merged_into": record.merged_into,
        "stored_ms": stored,
    }
    if isinstance(record, Person):
        row["email_norm"] = record.email
    elif isinstance(record, Company):
        row["domain_norm"] = record.domain
        row["name_key"] = company_name_key(record.name)
    elif isinstance(record, Activity):
        row["kind"] = record.kind.value
        row["occurred_ms"] = _ms(record.occurred_at)
    return row


class Records:
    """The record tables (one per entity) and the links between records."""

    def __init__(self, engine: sa.Engine, insert: Callable[[sa.Table], Any], cursors: Cursors) -> None:
        self.engine = engine
        self._insert = insert
        self._cursors = cursors  # a page's checkpoint commits in the page's transaction
        self._sql: dict[str, tuple[str, list[str]]] = {}
        self._merged_seen: set[tuple[str, str]] = set()

    # -- writing -------------------------------------------------------------------------------

    def commit_page(
        self,
        source: str,
        stream: str,
        entity: EntityType,
        records: Sequence[SourceRecord],
        *,
        archived_ids: Iterable[str] = (),
        merged: Mapping[str, str] | None = None,
        cursors: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> PageResult:
        """Store one page atomically: upserts, archives, merges and the checkpoint that follows it."""
        table = schema.ENTITY_TABLES[entity]
        stored = now_ms()
        result = PageResult()
        merges = dict(merged or {})
        for record in records:
            merges.update({loser: record.source_id for loser in record.merged_ids if loser != record.source_id})
        with self.engine.begin() as conn:
            writes, replaced = self._classify(conn, table, source, stream, records, stored, result)
            if writes:
                self._upsert(conn, table, writes)
                written = {w["source_id"] for w in writes}
                changed = [r for r in records if r.source_id in written]
                self._relink(conn, source, entity, changed, replaced)
                if entity in _MATCH_KEYS:
                    resolve(conn, entity, source, changed, stored)
                if entity is EntityType.ACTIVITY:
                    features.refresh(conn, source, changed)
            result.merged = self._merge(conn, table, source, entity, merges, stored)
            features.merged(conn, source, entity, merges)
            gone = list(archived_ids)
            result.archived = self._archive(conn, table, source, gone, stored)
            features.archived(conn, source, entity, gone)
            for kind, value in cursors:
                self._cursors.put_in(conn, source, stream, kind, value)
        return result

    def _classify(self, conn: sa.Connection, table: sa.Table, source: str, stream: str,
                  records: Sequence[SourceRecord], stored: int, result: PageResult
                  ) -> tuple[list[dict[str, Any]], list[str]]:
        """Rows to write (new or changed), and the ids among them that were stored before."""
        known: dict[str, tuple[str, int | None, bool]] = {}
        ids = [r.source_id for r in records]
        for chunk in chunked(ids):
            q = sa.select(table.c.source_id, table.c.content_hash, table.c.source_updated_ms, table.c.archived
                          ).where(table.c.source == source, table.c.source_id.in_(chunk))
            for sid, digest, updated, archived in conn.execute(q):
                known[sid] = (digest, updated, archived)
        writes: dict[str, dict[str, Any]] = {}
        for record in records:
            row = _row(source, stream, record, stored)
            before = known.get(record.source_id)
            if before is None:
                result.new += 1
            elif before[0] == row["content_hash"] and before[2] == row["archived"]:
                result.unchanged += 1
                continue
            elif _older(row["source_updated_ms"], before[1]):
                result.stale += 1  # an older version arriving late (reordered webhooks, look-back overlap)
                continue
            else:
                result.changed += 1
            result.changed_ids.append(record.source_id)
            writes[record.source_id] = row  # a page may repeat an id; the last version wins
        return list(writes.values()), [sid for sid in writes if sid in known]

    # The bulk writes bypass SQLAlchemy's per-row parameter handling (most of a page's cost
    # otherwise) with one prepared statement per table, in the dialect's own placeholder style.

    def _placeholders(self, n: int) -> str:
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        return ", ".join([mark] * n)

    def _upsert_sql(self, table: sa.Table) -> tuple[str, list[str]]:
        cached = self._sql.get(table.name)
        if cached:
            return cached
        cols = [c.name for c in table.columns if c.name != "id"]
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in ("source", "source_id"))
        t = table.name
        sql = (f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({self._placeholders(len(cols))}) "
               f"ON CONFLICT (source, source_id) DO UPDATE SET {updates} "
               f"WHERE {t}.source_updated_ms IS NULL OR excluded.source_updated_ms IS NULL "
               f"OR excluded.source_updated_ms >= {t}.source_updated_ms")
        self._sql[table.name] = (sql, cols)
        return sql, cols

    def _upsert(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        sql, cols = self._upsert_sql(table)
        conn.exec_driver_sql(sql, [tuple(row.get(c) for c in cols) for row in rows])

    def _relink(self, conn: sa.Connection, source: str, entity: EntityType, records: Sequence[SourceRecord],
                replaced: Sequence[str]) -> None:
        """Replace the outgoing links of ``records`` (``replaced``: those that had links before)."""
        fields = _LINK_FIELDS[entity]
        for chunk in chunked(list(replaced)):
            conn.execute(sa.delete(schema.links).where(
                schema.links.c.source == source, schema.links.c.from_entity == entity.value,
                schema.links.c.from_id.in_(chunk)))
        if not fields or not records:
            return
        wanted: set[tuple[str, str, str]] = set()
        for record in records:
            for attr, target in fields:
                value = getattr(record, attr)
                for to_id in ([value] if isinstance(value, str) else value or ()):
                    wanted.add((record.source_id, target.value, to_id))
        survivors = self._survivors(conn, source, {(t, i) for _, t, i in wanted})
        rows = [(source, entity.value, f, t, survivors.get((t, i), i)) for f, t, i in sorted(wanted)]
        if rows:
            conn.exec_driver_sql("INSERT INTO links (source, from_entity, from_id, to_entity, to_id) "
                                 f"VALUES ({self._placeholders(5)}) ON CONFLICT DO NOTHING", rows)

    def _has_merges(self, conn: sa.Connection, source: str, target: str) -> bool:
        key = (source, target)
        if key not in self._merged_seen:
            table = schema.ENTITY_TABLES[EntityType(target)]
            found = conn.execute(sa.select(table.c.id).where(
                table.c.source == source, table.c.merged_into.is_not(None)).limit(1)).first()
            if found is None:
                return False  # asked again next time: another process may merge meanwhile
            self._merged_seen.add(key)
        return True

    def _survivors(self, conn: sa.Connection, source: str, refs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Map references to merged-away records onto the record they were merged into."""
        out: dict[tuple[str, str], str] = {}
        by_entity: dict[str, list[str]] = {}
        for target, sid in refs:
            by_entity.setdefault(target, []).append(sid)
        for target, ids in by_entity.items():
            if not self._has_merges(conn, source, target):
                continue
            table = schema.ENTITY_TABLES[EntityType(target)]
            for chunk in chunked(ids):
                q = sa.select(table.c.source_id, table.c.merged_into).where(
                    table.c.source == source, table.c.source_id.in_(chunk), table.c.merged_into.is_not(None))
                for sid, into in conn.execute(q):
                    out[(target, sid)] = into
        return out

    def _merge(self, conn: sa.Connection, table: sa.Table, source: str, entity: EntityType,
               merges: Mapping[str, str], stored: int) -> int:
        done = 0
        links = schema.links
        for loser, winner in merges.items():
            res = conn.execute(sa.update(table).where(
                table.c.source == source, table.c.source_id == loser,
                sa.or_(table.c.merged_into.is_(None), table.c.merged_into != winner),
            ).values(merged_into=winner, archived=True, archived_ms=stored))
            done += res.rowcount or 0
            # Whatever pointed at the merged-away record now points at the survivor.
            moved = sa.select(links.c.source, links.c.from_entity, links.c.from_id, links.c.to_entity,
                              sa.literal(winner)).where(
                links.c.source == source, links.c.to_entity == entity.value, links.c.to_id == loser)
            conn.execute(self._insert(links).from_select(
                ["source", "from_entity", "from_id", "to_entity", "to_id"], moved).on_conflict_do_nothing())
            conn.execute(sa.delete(links).where(links.c.source == source, links.c.to_entity == entity.value,
                                                links.c.to_id == loser))
        return done

    def _archive(self, conn: sa.Connection, table: sa.Table, source: str, ids: list[str], stored: int) -> int:
        done = 0
        for chunk in chunked(ids):
            res = conn.execute(sa.update(table).where(
                table.c.source == source, table.c.source_id.in_(chunk), table.c.archived.is_(False),
            ).values(archived=True, archived_ms=stored))
            done += res.rowcount or 0
        return done

    # -- reading -------------------------------------------------------------------------------

    def live_ids(self, source: str, stream: str, entity: EntityType) -> set[str]:
        t = schema.ENTITY_TABLES[entity]
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(t.c.source_id).where(
                t.c.source == source, t.c.stream == stream, t.c.archived.is_(False))).scalars())

    def live_count(self, source: str, stream: str, entity: EntityType) -> int:
        t = schema.ENTITY_TABLES[entity]
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(
                t.c.source == source, t.c.stream == stream, t.c.archived.is_(False))).scalar() or 0)

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """Live and archived records per source and stream."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        with self.engine.connect() as conn:
            for entity, t in schema.ENTITY_TABLES.items():
                q = sa.select(t.c.source, t.c.stream, t.c.archived, sa.func.count()).group_by(
                    t.c.source, t.c.stream, t.c.archived)
                for source, stream, archived, n in conn.execute(q):
                    slot = out.setdefault(source, {}).setdefault(
                        stream, {"entity": entity.value, "live": 0, "archived": 0})  # type: ignore[dict-item]
                    slot["archived" if archived else "live"] += n
        return out

    def get(self, entity: EntityType, source: str, source_id: str, *, follow_merges: bool = True
            ) -> SourceRecord | None:
        t = schema.ENTITY_TABLES[entity]
        with self.engine.connect() as conn:
            for _ in range(8):  # merge chains are short; the bound guards against a cycle
                row = conn.execute(sa.select(t.c.data, t.c.merged_into, t.c.archived).where(
                    t.c.source == source, t.c.source_id == source_id)).first()
                if row is None:
                    return None
                if row.merged_into and follow_merges:
                    source_id = row.merged_into
                    continue
                return with_state(ENTITY_CLASSES[entity].model_validate_json(row.data), row.archived,
                                   row.merged_into)
        return None

    def iter(self, entity: EntityType, source: str | None = None, *, live_only: bool = True,
             batch: int = 1000) -> Iterator[SourceRecord]:
        """Stream records in id order without holding them all in memory."""
        t = schema.ENTITY_TABLES[entity]
        cls = ENTITY_CLASSES[entity]
        last = 0
        while True:
            q = sa.select(t.c.id, t.c.data, t.c.archived, t.c.merged_into).where(t.c.id > last).order_by(
                t.c.id).limit(batch)
            if source:
                q = q.where(t.c.source == source)
            if live_only:
                q = q.where(t.c.archived.is_(False))
            with self.engine.connect() as conn:
                rows = conn.execute(q).all()
            if not rows:
                return
            for row in rows:
                yield with_state(cls.model_validate_json(row.data), row.archived, row.merged_into)
            last = rows[-1].id

    def links_to(self, source: str, to_entity: EntityType, to_ids: Sequence[str],
                 from_entity: EntityType) -> dict[str, list[str]]:
        """For each target id, the ids of ``from_entity`` records linked to it."""
        lk = schema.links.c
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(list(to_ids)):
                q = sa.select(lk.to_id, lk.from_id).where(
                    lk.source == source, lk.to_entity == to_entity.value, lk.to_id.in_(chunk),
                    lk.from_entity == from_entity.value)
                for to_id, from_id in conn.execute(q).all():
                    out.setdefault(to_id, []).append(from_id)
        return out

    def link_count(self, source: str | None = None) -> int:
        lk = schema.links.c
        q = sa.select(sa.func.count()).select_from(schema.links)
        if source:
            q = q.where(lk.source == source)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def by_keys(self, entity: EntityType, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], SourceRecord]:
        """Records by (source, source_id), as stored (archived ones included)."""
        table, cls = schema.ENTITY_TABLES[entity], ENTITY_CLASSES[entity]
        by_source: dict[str, list[str]] = {}
        for source, sid in keys:
            by_source.setdefault(source, []).append(sid)
        out: dict[tuple[str, str], SourceRecord] = {}
        with self.engine.connect() as conn:
            for source, ids in by_source.items():
                for chunk in chunked(sorted(set(ids))):
                    q = sa.select(table.c.source_id, table.c.data, table.c.archived, table.c.merged_into).where(
                        table.c.source == source, table.c.source_id.in_(chunk))
                    for sid, data, archived, merged_into in conn.execute(q).all():
                        out[(source, sid)] = with_state(cls.model_validate_json(data), archived, merged_into)
        return out

    def snapshot_into(self, conn: sa.Connection, digest: hashlib.blake2b) -> dict[str, int]:
        """Feed every record (key, content, state) and every link to ``digest``; how many of each."""
        sizes: dict[str, int] = {}
        for entity, t in schema.ENTITY_TABLES.items():
            q = sa.select(t.c.source, t.c.stream, t.c.source_id, t.c.content_hash, t.c.archived,
                          t.c.merged_into).order_by(t.c.source, t.c.source_id)
            n = 0
            for row in conn.execute(q):
                digest.update(repr(tuple(row)).encode())
                n += 1
            sizes[entity.value] = n
        lk = schema.links.c
        n = 0
        for row in conn.execute(sa.select(schema.links).order_by(lk.source, lk.from_entity, lk.from_id,
                                                                 lk.to_entity, lk.to_id)):
            digest.update(repr(tuple(row)).encode())
            n += 1
        sizes["links"] = n
        return sizes
