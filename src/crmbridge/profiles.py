"""Scoring profiles read from the store: one merged person, their merged company, every activity.

A person known to several CRMs is scored once, on the golden record their identity merges to, with
the activities of all their source records together. Profiles are built in batches so a full
re-score of a million people streams through memory instead of loading it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from crmbridge.identity import MergePolicy, merge
from crmbridge.model import Activity, Company, EntityType, Person, SourceRecord
from crmbridge.scoring import Profile
from crmbridge.store import Store


@dataclass(frozen=True, slots=True)
class PersonProfile:
    person_id: int  # the canonical identity
    company_id: int | None
    profile: Profile


class ProfileReader:
    def __init__(self, store: Store, policy: MergePolicy | None = None) -> None:
        self.store = store
        self.policy = policy or MergePolicy()

    def all(self, batch: int = 1000) -> Iterator[list[PersonProfile]]:
        """Every canonical person with at least one live record, in batches."""
        group: list[tuple[int, list[SourceRecord]]] = []
        for cid, members in self.store.identities(EntityType.PERSON):
            group.append((cid, members))
            if len(group) >= batch:
                yield self._build(group)
                group = []
        if group:
            yield self._build(group)

    def some(self, person_ids: Collection[int], batch: int = 1000) -> Iterator[list[PersonProfile]]:
        ids = sorted(set(person_ids))
        for start in range(0, len(ids), batch):
            members = self.store.members(EntityType.PERSON, ids[start:start + batch])
            if members:
                yield self._build(sorted(members.items()))

    def by_email(self, email: str) -> list[PersonProfile]:
        return [p for group in self.some(self.store.people_by_email(email)) for p in group]

    def _build(self, group: Sequence[tuple[int, list[SourceRecord]]]) -> list[PersonProfile]:
        store = self.store
        first_company = {(m.source, m.source_id): (m.source, m.company_ids[0])
                         for _, members in group for m in members if isinstance(m, Person) and m.company_ids}
        company_cids = store.canonical_ids(EntityType.COMPANY, set(first_company.values()))
        companies = {cid: merge(cid, ms, self.policy)
                     for cid, ms in store.members(EntityType.COMPANY, set(company_cids.values())).items()}
        by_source: dict[str, list[str]] = {}
        for _, members in group:
            for m in members:
                by_source.setdefault(m.source, []).append(m.source_id)
        linked = {source: store.links_to(source, EntityType.PERSON, ids, EntityType.ACTIVITY)
                  for source, ids in by_source.items()}
        keys = {(source, aid) for source, links in linked.items() for aids in links.values() for aid in aids}
        activities = store.records(EntityType.ACTIVITY, keys)
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
