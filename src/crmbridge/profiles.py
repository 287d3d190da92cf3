"""Scoring profiles read from the store: one merged person, their merged company, every activity.

A person known to several CRMs is scored once, on the golden record their identity merges to, with
the activities of all their source records together. Profiles are built in batches so a full
re-score of a million people streams through memory instead of loading it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from crmbridge.identity import MergePolicy, _resets, merge
from crmbridge.model import Activity, Company, EntityType, Person, SourceRecord
from crmbridge.scoring import Profile
from crmbridge.scoring.memo import MEMO_LIMIT
from crmbridge.store import Store
from crmbridge.store.features import ScoringActivity
from crmbridge.store.scores import ScoringChunk, company_members, company_stamps, read_chunk

_IN_ORDER = attrgetter("occurred_at", "source", "source_id")


@dataclass(frozen=True, slots=True)
class PersonProfile:
    person_id: int  # the canonical identity
    company_id: int | None
    profile: Profile
    # The company keys of the members (the first company of each, in member order) and the stamp of the
    # company they led to: what says, later, that the person would still get this company.
    company_keys: tuple[tuple[str, str], ...] = ()
    company_stamp: str = ""


class ProfileReader:
    def __init__(self, store: Store, policy: MergePolicy | None = None) -> None:
        self.store = store
        self.policy = policy or MergePolicy()
        self._companies: _Companies | None = None

    def all(self, batch: int = 1000) -> Iterator[list[PersonProfile]]:
        """Every canonical person with at least one live record, in batches."""
        group: list[tuple[int, list[SourceRecord]]] = []
        for cid, members in self.store.identities.groups(EntityType.PERSON):
            group.append((cid, members))
            if len(group) >= batch:
                yield self._build(group)
                group = []
        if group:
            yield self._build(group)

    def some(self, person_ids: Collection[int], batch: int = 1000) -> Iterator[list[PersonProfile]]:
        ids = sorted(set(person_ids))
        for start in range(0, len(ids), batch):
            members = self.store.identities.members(EntityType.PERSON, ids[start:start + batch])
            if members:
                yield self._build(sorted(members.items()))

    def chunks(self, person_ids: Collection[int] | None = None
               ) -> Iterator[tuple[list[PersonProfile], dict[int, str]]]:
        """The profiles of everyone (``person_ids`` None) or of the given people, a chunk at a time,
        with the fingerprints of their stored scores: the same profiles as ``all`` and ``some``, read
        in a few set-based queries per chunk. Companies are remembered from chunk to chunk (colleagues
        share them), within a bound."""
        companies = _Companies(self.store, self.policy)
        for chunk in self.store.scores.scoring_chunks(person_ids):
            yield self._from_chunk(chunk, companies), chunk.fingerprints

    def of(self, person_ids: Sequence[int]) -> list[PersonProfile]:
        """The profiles of these canonical people (one chunk's worth), with companies remembered across
        calls on this reader, as ``chunks`` remembers them."""
        if self._companies is None:
            self._companies = _Companies(self.store, self.policy)
        with self.store.engine.connect() as conn:
            chunk = read_chunk(conn, ids=person_ids)
        return self._from_chunk(chunk, self._companies)

    def company_holds(self, keys: Sequence[Sequence[str]], company_id: int | None, stamp: str) -> bool:
        """Whether members with these company keys would still get company ``company_id`` with this
        stamp (after ``expect`` loaded what the keys and ids need)."""
        companies = self._companies
        assert companies is not None
        ids = companies.ids
        now = next((c for k in keys if (c := ids[(k[0], k[1])]) is not None), None)
        return now == company_id and (now is None or companies.versions.get(now) == stamp)

    def expect(self, keys: set[tuple[str, str]], company_ids: set[int]) -> None:
        """Load in bulk the canonical ids of these company keys and the stamps of these companies."""
        if self._companies is None:
            self._companies = _Companies(self.store, self.policy)
        self._companies.expect(keys, company_ids)

    def _from_chunk(self, chunk: ScoringChunk, companies: _Companies) -> list[PersonProfile]:
        first_company = {(m.source, m.source_id): (m.source, m.company_ids[0])
                         for _, members in chunk.people for m in members if m.company_ids}
        companies.load(set(first_company.values()))
        out = []
        for cid, members in chunk.people:
            person = _golden(cid, members[0]) if len(members) == 1 else merge(cid, members, self.policy)
            keys = tuple(key for m in members if (key := first_company.get((m.source, m.source_id))))
            company_cid = next((c for key in keys if (c := companies.ids[key]) is not None), None)
            company, stamp = companies.golden[company_cid] if company_cid is not None else (None, "")
            acts: list[ScoringActivity] = []  # what scoring reads of each activity, not the records
            for m in members:
                acts += chunk.activities.get((m.source, m.source_id), ())
            acts.sort(key=_IN_ORDER)
            out.append(PersonProfile(cid, company_cid, Profile(person, company, tuple(acts)),  # type: ignore[arg-type]
                                     keys, stamp))
        return out

    def by_email(self, email: str) -> list[PersonProfile]:
        return [p for group in self.some(self.store.identities.people_by_email(email)) for p in group]

    def _build(self, group: Sequence[tuple[int, list[SourceRecord]]]) -> list[PersonProfile]:
        store = self.store
        first_company = {(m.source, m.source_id): (m.source, m.company_ids[0])
                         for _, members in group for m in members if isinstance(m, Person) and m.company_ids}
        company_cids = store.identities.canonical_ids(EntityType.COMPANY, set(first_company.values()))
        companies = {cid: merge(cid, ms, self.policy)
                     for cid, ms in store.identities.members(EntityType.COMPANY, set(company_cids.values())).items()}
        by_source: dict[str, list[str]] = {}
        for _, members in group:
            for m in members:
                by_source.setdefault(m.source, []).append(m.source_id)
        linked = {source: store.records.links_to(source, EntityType.PERSON, ids, EntityType.ACTIVITY)
                  for source, ids in by_source.items()}
        keys = {(source, aid) for source, links in linked.items() for aids in links.values() for aid in aids}
        activities = store.records.by_keys(EntityType.ACTIVITY, keys)
        out = []
        for cid, members in group:
            person = merge(cid, members, self.policy)
            assert isinstance(person, Person)
            company_cid = next((company_cids[first_company[(m.source, m.source_id)]] for m in members
                                if (m.source, m.source_id) in first_company
                                and first_company[(m.source, m.source_id)] in company_cids), None)
            company = companies.get(company_cid) if company_cid is not None else None
            acts: list[Activity] = []
            for m in members:
                for aid in linked.get(m.source, {}).get(m.source_id, ()):
                    activity = activities.get((m.source, aid))
                    if isinstance(activity, Activity) and not activity.archived:
                        acts.append(activity)
            acts.sort(key=lambda a: (a.occurred_at, a.source, a.source_id))
            assert company is None or isinstance(company, Company)
            out.append(PersonProfile(cid, company_cid, Profile(person, company, tuple(acts))))
        return out


_new = object.__new__
_set = object.__setattr__


def _golden(canonical_id: int, only: Person) -> Person:
    """``merge`` of an identity with one live record, which a chunk holds for itself: the same golden
    record, copied without pydantic's general-purpose copy (a third of building a profile)."""
    fields = dict(only.__dict__)
    for name, factory in _resets(Person):
        fields[name] = factory()
    fields["source"], fields["source_id"] = "canonical", str(canonical_id)
    fields["source_ids"] = {only.source: only.source_id}
    golden = _new(Person)
    _set(golden, "__dict__", fields)
    _set(golden, "__pydantic_fields_set__", only.__pydantic_fields_set__ | _SET_BY_MERGE)
    _set(golden, "__pydantic_extra__", None)
    _set(golden, "__pydantic_private__", None)
    return golden


_SET_BY_MERGE = frozenset({"source", "source_id", "source_ids", *(name for name, _ in _resets(Person))})


class _Companies:
    """Companies' canonical ids, golden records and stamps, read for the keys not seen yet; bounded.

    A golden record is kept with the stamp read in the same query, so a digest made with it names the
    company as it was; ``versions`` holds the latest stamp read of each company, golden or not, which is
    what a stored digest is checked against.
    """

    def __init__(self, store: Store, policy: MergePolicy) -> None:
        self.store, self.policy = store, policy
        self.ids: dict[tuple[str, str], int | None] = {}
        self.golden: dict[int, tuple[Any, str]] = {}
        self.versions: dict[int, str] = {}

    def _bound(self) -> None:
        if len(self.ids) > MEMO_LIMIT or len(self.golden) > MEMO_LIMIT or len(self.versions) > MEMO_LIMIT:
            self.ids.clear()
            self.golden.clear()
            self.versions.clear()

    def _ids(self, keys: Iterable[tuple[str, str]]) -> None:
        new = [k for k in keys if k not in self.ids]
        if new:
            found = self.store.identities.canonical_ids(EntityType.COMPANY, new)
            self.ids.update((k, found.get(k)) for k in new)

    def expect(self, keys: set[tuple[str, str]], company_ids: set[int]) -> None:
        self._bound()
        self._ids(keys)
        wanted = sorted({*company_ids, *(c for k in keys if (c := self.ids[k]) is not None)} - self.versions.keys())
        if wanted:
            with self.store.engine.connect() as conn:
                self.versions.update(company_stamps(conn, wanted))
            self.versions.update((c, "") for c in wanted if c not in self.versions)  # no live member

    def load(self, keys: set[tuple[str, str]]) -> None:
        self._bound()
        self._ids(keys)
        wanted = {c for k in keys if (c := self.ids[k]) is not None and c not in self.golden}
        if wanted:
            stamps: dict[int, str] = {}
            with self.store.engine.connect() as conn:
                members = company_members(conn, sorted(wanted), stamps)
            for c in wanted:
                stamp = stamps.get(c, "")
                self.golden[c] = (merge(c, members[c], self.policy) if c in members else None, stamp)
                self.versions[c] = stamp
