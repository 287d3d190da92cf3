"""Records and identity: the store's side of matching, and identities read back.

On a stored page, ``resolve`` gathers the keys around its records, hands them to
``crmbridge.identity.match`` (a pure decision) and writes the answer back; ``Identities`` answers
which records are one person or company.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

import sqlalchemy as sa

from crmbridge.identity import Matching, MatchKeys, Member, NameConflict, company_domain_key, match, name_conflicts
from crmbridge.model import ENTITY_CLASSES, EntityType, SourceRecord
from crmbridge.store import schema
from crmbridge.store.engine import chunked


def _key_column(entity: EntityType) -> sa.Column:
    table = schema.ENTITY_TABLES[entity]
    return table.c.email_norm if entity is EntityType.PERSON else table.c.domain_norm


def _keys(entity: EntityType, source: str, source_id: str, key: str | None, name: str | None) -> MatchKeys:
    if entity is EntityType.PERSON:
        return MatchKeys(source, source_id, email=key)
    return MatchKeys(source, source_id, domain=company_domain_key(key), name=name)


def _members(conn: sa.Connection, entity: EntityType, keys: Sequence[str], names: Sequence[str]) -> list[Member]:
    """Every live member of the identities holding a live record with one of these keys or names."""
    ident, table = schema.identities, schema.ENTITY_TABLES[entity]
    joined = sa.and_(ident.c.entity == entity.value, ident.c.source == table.c.source,
                     ident.c.source_id == table.c.source_id)
    # Records first (by the key's index), then their identities (by primary key): as one join, a
    # planner without statistics walks every identity of the entity instead, on every page.
    refs: dict[str, set[str]] = {}
    for column, values in ((_key_column(entity), keys), (getattr(table.c, "name_key", None), names)):
        if column is None:
            continue
        for chunk in chunked(list(values)):
            q = sa.select(table.c.source, table.c.source_id).where(column.in_(chunk), table.c.archived.is_(False))
            for source, sid in conn.execute(q):
                refs.setdefault(source, set()).add(sid)
    cids: set[int] = set()
    for source, ids in refs.items():
        for chunk in chunked(sorted(ids)):
            cids.update(int(c) for c in conn.execute(sa.select(ident.c.canonical_id).where(
                ident.c.entity == entity.value, ident.c.source == source, ident.c.source_id.in_(chunk))).scalars())
    name_col = table.c.name_key if entity is EntityType.COMPANY else sa.null()
    out = []
    for chunk in chunked(sorted(cids)):
        q = sa.select(ident.c.canonical_id, table.c.source, table.c.source_id, _key_column(entity), name_col
                      ).join(ident, joined).where(ident.c.canonical_id.in_(chunk), table.c.archived.is_(False))
        out += [Member(int(cid), _keys(entity, source, sid, key, name))
                for cid, source, sid, key, name in conn.execute(q)]
    return out


def _name_counts(conn: sa.Connection, names: Sequence[str]) -> dict[tuple[str, str], int]:
    t = schema.companies.c
    out: dict[tuple[str, str], int] = {}
    for chunk in chunked(list(names)):
        q = sa.select(t.source, t.name_key, sa.func.count()).where(
            t.name_key.in_(chunk), t.archived.is_(False)).group_by(t.source, t.name_key)
        out.update({(source, name): int(n) for source, name, n in conn.execute(q)})
    return out


def resolve(conn: sa.Connection, entity: EntityType, source: str, records: Sequence[SourceRecord], now: int
            ) -> Matching:
    """Give every new record of a stored page its identity, and undo name links the page made ambiguous.

    A record already linked keeps its identity (a changed e-mail follows the source id).
    """
    ident = schema.identities
    linked: set[str] = set()
    for chunk in chunked([r.source_id for r in records]):
        linked.update(conn.execute(sa.select(ident.c.source_id).where(
            ident.c.entity == entity.value, ident.c.source == source, ident.c.source_id.in_(chunk))).scalars())
    inherited = _inherited(conn, entity, source, [r for r in records if r.merged_ids and r.source_id not in linked])
    written = [MatchKeys.of(r) for r in records if not r.merged_into]
    pending = [k for k in written if k.source_id not in linked and k.source_id not in inherited]
    names = sorted({k.name for k in written if k.name})
    if not pending and not names and not inherited:
        return Matching()
    keys = sorted({k.key for k in pending if k.key})
    decision = match(pending, _members(conn, entity, keys, names), _name_counts(conn, names) if names else {})
    decision.joins.update(inherited)
    decision.rules.update(dict.fromkeys(inherited, "merge"))
    _apply(conn, entity, source, decision, now)
    return decision


def _inherited(conn: sa.Connection, entity: EntityType, source: str, records: Sequence[SourceRecord]
               ) -> dict[str, int]:
    """New records that a merge made out of records we know (a CRM may give the survivor a new id):
    each keeps the identity of the first merged record that has one, so scores and hand-offs follow."""
    if not records:
        return {}
    ident = schema.identities.c
    wanted = sorted({m for r in records for m in r.merged_ids})
    known: dict[str, int] = {}
    for chunk in chunked(wanted):
        known.update((sid, int(cid)) for sid, cid in conn.execute(sa.select(ident.source_id, ident.canonical_id).where(
            ident.entity == entity.value, ident.source == source, ident.source_id.in_(chunk))))
    out: dict[str, int] = {}
    for record in records:
        cid = next((known[m] for m in record.merged_ids if m in known and m != record.source_id), None)
        if cid is not None:
            out[record.source_id] = cid
    return out


def _new_identities(conn: sa.Connection, entity: EntityType, n: int, now: int) -> list[int]:
    if not n:
        return []
    stmt = sa.insert(schema.canonical).returning(schema.canonical.c.id, sort_by_parameter_order=True)
    rows = [{"entity": entity.value, "created_ms": now} for _ in range(n)]
    return [int(i) for i in conn.execute(stmt, rows).scalars()]


def _apply(conn: sa.Connection, entity: EntityType, source: str, decision: Matching, now: int) -> None:
    ident = schema.identities
    apart = _new_identities(conn, entity, len(decision.detach), now)
    for (src, sid), cid in zip(decision.detach, apart, strict=True):
        conn.execute(sa.update(ident).where(ident.c.entity == entity.value, ident.c.source == src,
                                            ident.c.source_id == sid).values(canonical_id=cid, linked_ms=now))
    # A join to -n is a join to the identity the n-th detached member just received.
    joins = {sid: apart[-cid - 1] if cid is not None and cid < 0 else cid for sid, cid in decision.joins.items()}
    fresh = [sid for sid, cid in joins.items() if cid is None]
    joins.update(zip(fresh, _new_identities(conn, entity, len(fresh), now), strict=True))
    if joins:
        conn.execute(sa.insert(ident), [{"entity": entity.value, "source": source, "source_id": sid,
                                         "canonical_id": cid, "linked_ms": now} for sid, cid in joins.items()])


def company_name_conflicts(conn: sa.Connection) -> list[NameConflict]:
    """Companies kept apart because their name is not unique on some side: for a person to review."""
    t, ident = schema.companies.c, schema.identities.c
    live = sa.and_(t.archived.is_(False), t.name_key.is_not(None))
    shared = (sa.select(t.name_key).where(live).group_by(t.name_key)
              .having(sa.func.count(sa.distinct(t.source)) > 1).subquery())
    sizes = (sa.select(ident.canonical_id, sa.func.count().label("n")).select_from(schema.identities)
             .join(schema.companies, sa.and_(t.source == ident.source, t.source_id == ident.source_id))
             .where(ident.entity == EntityType.COMPANY.value, t.archived.is_(False))
             .group_by(ident.canonical_id).subquery())
    q = (sa.select(t.source, t.source_id, t.domain_norm, t.name_key, sizes.c.n)
         .join(shared, shared.c.name_key == t.name_key)
         .join(schema.identities, sa.and_(ident.entity == EntityType.COMPANY.value, ident.source == t.source,
                                          ident.source_id == t.source_id))
         .join(sizes, sizes.c.canonical_id == ident.canonical_id).where(live))
    rows = [(_keys(EntityType.COMPANY, s, sid, domain, name), int(n)) for s, sid, domain, name, n in conn.execute(q)]
    return name_conflicts(rows)


def with_state(record: SourceRecord, archived: bool, merged_into: str | None) -> SourceRecord:
    """Archives and merges update the row's columns, not its stored JSON: the columns are the truth."""
    record.archived = bool(archived)
    record.merged_into = merged_into
    return record


def _by_source(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for source, sid in keys:
        out.setdefault(source, []).append(sid)
    return out


class Identities:
    """Which records are one person or company across CRMs, read back: ids, members, counts, review."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def canonical_id(self, entity: EntityType, source: str, source_id: str) -> int | None:
        ident = schema.identities.c
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(ident.canonical_id).where(
                ident.entity == entity.value, ident.source == source, ident.source_id == source_id)).scalar()
        return None if value is None else int(value)

    def canonical_ids(self, entity: EntityType, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        ident = schema.identities.c
        out: dict[tuple[str, str], int] = {}
        with self.engine.connect() as conn:
            for source, ids in _by_source(keys).items():
                for chunk in chunked(sorted(set(ids))):
                    q = sa.select(ident.source_id, ident.canonical_id).where(
                        ident.entity == entity.value, ident.source == source, ident.source_id.in_(chunk))
                    out.update({(source, sid): int(cid) for sid, cid in conn.execute(q).all()})
        return out

    def groups(self, entity: EntityType, *, live_only: bool = True, batch: int = 2000
               ) -> Iterator[tuple[int, list[SourceRecord]]]:
        """Each canonical identity with its member source records, in canonical id order."""
        ident, table = schema.identities, schema.ENTITY_TABLES[entity]
        cls = ENTITY_CLASSES[entity]
        with self.engine.connect() as conn:
            top = conn.execute(sa.select(sa.func.max(ident.c.canonical_id)).where(
                ident.c.entity == entity.value)).scalar() or 0
        for low in range(0, int(top), batch):
            q = (sa.select(ident.c.canonical_id, table.c.data, table.c.archived, table.c.merged_into)
                 .join(table, sa.and_(table.c.source == ident.c.source, table.c.source_id == ident.c.source_id))
                 .where(ident.c.entity == entity.value, ident.c.canonical_id > low,
                        ident.c.canonical_id <= low + batch)
                 .order_by(ident.c.canonical_id, ident.c.source))
            if live_only:
                q = q.where(table.c.archived.is_(False))
            with self.engine.connect() as conn:
                rows = conn.execute(q).all()
            found: dict[int, list[SourceRecord]] = {}
            for cid, data, archived, merged_into in rows:
                found.setdefault(int(cid), []).append(with_state(cls.model_validate_json(data), archived, merged_into))
            yield from found.items()

    def members(self, entity: EntityType, canonical_ids: Iterable[int]) -> dict[int, list[SourceRecord]]:
        """The live member records of the given canonical identities."""
        ident, table, cls = schema.identities, schema.ENTITY_TABLES[entity], ENTITY_CLASSES[entity]
        out: dict[int, list[SourceRecord]] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(sorted(set(canonical_ids))):
                q = (sa.select(ident.c.canonical_id, table.c.data, table.c.merged_into)
                     .join(table, sa.and_(table.c.source == ident.c.source, table.c.source_id == ident.c.source_id))
                     .where(ident.c.entity == entity.value, ident.c.canonical_id.in_(chunk),
                            table.c.archived.is_(False))
                     .order_by(ident.c.canonical_id, ident.c.source))
                for cid, data, merged_into in conn.execute(q).all():
                    out.setdefault(int(cid), []).append(with_state(cls.model_validate_json(data), False, merged_into))
        return out

    def people_by_email(self, email: str) -> list[int]:
        """Canonical ids of live people with this (normalised) e-mail."""
        ident, table = schema.identities, schema.persons
        q = (sa.select(ident.c.canonical_id).distinct()
             .join(table, sa.and_(table.c.source == ident.c.source, table.c.source_id == ident.c.source_id))
             .where(ident.c.entity == "person", table.c.email_norm == email, table.c.archived.is_(False)))
        with self.engine.connect() as conn:
            return sorted(int(c) for c in conn.execute(q).scalars())

    def count(self, entity: EntityType) -> int:
        """Canonical identities with at least one live member record."""
        ident, table = schema.identities, schema.ENTITY_TABLES[entity]
        q = sa.select(sa.func.count(sa.distinct(ident.c.canonical_id))).join(table, sa.and_(
            table.c.source == ident.c.source, table.c.source_id == ident.c.source_id)).where(
            ident.c.entity == entity.value, table.c.archived.is_(False))
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def name_conflicts(self) -> list[NameConflict]:
        """Companies the name fallback kept apart (their name is not unique on some side), for review."""
        with self.engine.connect() as conn:
            return company_name_conflicts(conn)

    def snapshot_into(self, conn: sa.Connection, digest: hashlib.blake2b) -> int:
        """Feed every identity, by its members, to ``digest``; how many there are. By membership, not by
        id: ids depend on the order pages were stored in."""
        ident = schema.identities.c
        groups: dict[tuple[str, int], list[tuple[str, str]]] = {}
        for entity, source, sid, cid in conn.execute(sa.select(ident.entity, ident.source, ident.source_id,
                                                                ident.canonical_id)):
            groups.setdefault((entity, cid), []).append((source, sid))
        for members in sorted(tuple(sorted(m)) for m in groups.values()):
            digest.update(repr(members).encode())
        return len(groups)
