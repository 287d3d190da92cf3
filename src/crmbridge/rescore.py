"""Re-scoring what the store holds: people (after merging identities) and then their accounts.

Runs after every backfill (everyone) and every sync (the people a change touches), and daily from
the daemon because decay moves scores with time alone. A score is written only when its
fingerprint changes, so a re-score that changes nothing writes nothing; the stage stored is the one
the lifecycle policy allows (customers are never downgraded by scoring).
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from crmbridge import __version__
from crmbridge.identity import MergePolicy, merge
from crmbridge.model import Activity, Company, Deal, DealStatus, EntityType, LifecycleStage, Person
from crmbridge.profiles import ProfileReader
from crmbridge.scoring import (
    AccountScorer,
    Outcome,
    PersonScore,
    Sample,
    Scorer,
    ScoreSnapshot,
    ScoringModel,
    apply_lifecycle_policy,
)
from crmbridge.store import Store
from crmbridge.store.engine import IN_LIMIT
from crmbridge.store.scores import (
    account_fingerprints,
    chunk_bounds,
    company_members,
    company_people,
    read_stamps,
)
from crmbridge.store.store import now_ms
from crmbridge.sync import RunReport

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RescoreReport:
    scored: int = 0
    written: int = 0
    stages: Counter[str] = field(default_factory=Counter)
    accounts: int = 0
    accounts_written: int = 0
    surges: list[int] = field(default_factory=list)
    seconds: float = 0.0
    from_digests: int = 0  # of ``scored``, the people scored from their stored digest


    def as_dict(self) -> dict[str, Any]:
        return {"scored": self.scored, "written": self.written, "stages": dict(self.stages),
                "accounts": self.accounts, "accounts_written": self.accounts_written, "surges": self.surges,
                "from_digests": self.from_digests,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True, slots=True)
class _StoredPerson:
    """What an account roll-up reads of a person's stored score."""

    email: str | None
    engagement: float
    disqualified: str | None
    persona: str | None
    responded: bool
    stage: LifecycleStage


class Rescorer:
    def __init__(self, store: Store, model: ScoringModel, policy: MergePolicy | None = None,
                 clock: Clock = utc_now) -> None:
        self.store, self.model = store, model
        self.scorer = Scorer(model)
        self.accounts = AccountScorer(model)
        self.reader = ProfileReader(store, policy)
        self.policy = policy or MergePolicy()
        self.clock = clock
        # What a stored digest must have been made with to be scored instead of the records.
        self.inputs_key = inputs_key(model, self.policy)

    def run(self, person_ids: Collection[int] | None = None, on_batch: Callable[[int], None] | None = None,
            workers: int = 1) -> RescoreReport:
        """Score everyone (``person_ids`` None) or the given canonical people, then their accounts.

        People are read a chunk at a time with their stored fingerprints, and only the scores whose
        fingerprint changed are turned into rows and written, so a daily re-score that moves few
        scores costs little more than scoring. With ``workers`` > 1 a full re-score shares its chunks,
        then its accounts, among that many forked processes (``crmbridge.rescore_workers``).
        """
        if workers > 1 and person_ids is None:
            from crmbridge.rescore_workers import run_forked

            return run_forked(self, workers, on_batch)
        with _fewer_collections():
            return self._run(person_ids, on_batch)

    def _run(self, person_ids: Collection[int] | None, on_batch: Callable[[int], None] | None) -> RescoreReport:
        started = time.monotonic()
        as_of = self.clock()
        report = RescoreReport()
        companies: set[int] = set()
        if person_ids is None:
            with self.store.engine.connect() as conn:
                ranges = [{"after": after, "last": last} for after, last in chunk_bounds(conn)]
        else:
            ids = sorted(set(person_ids))
            ranges = [{"ids": ids[i:i + IN_LIMIT]} for i in range(0, len(ids), IN_LIMIT)]
        for within in ranges:
            scored = report.scored
            report.written += self.store.scores.write_scores(*self.score_chunk(as_of, report, companies, **within))
            between_chunks()
            if on_batch:
                on_batch(report.scored - scored)
        if person_ids is None:
            companies.update(self.store.scores.scored_companies())
        self._roll_up(sorted(companies), as_of, report)
        report.seconds = time.monotonic() - started
        return report

    def score_chunk(self, as_of: datetime, report: RescoreReport, companies: set[int], *, after: int = 0,
                    last: int = 0, ids: Sequence[int] = ()
                    ) -> tuple[list[dict[str, Any]], list[tuple[int, str, str, str, str]]]:
        """Score the people of canonical ids ``after < id <= last`` (or ``ids``) and note their
        companies; returns the rows of the scores whose fingerprint changed and the digests made from
        records, for ``Scores.write_scores`` (the caller writes: with workers, one process writes all).

        Each person's stored digest is scored when its stamps still hold (same model and merge policy,
        member records and their facts unchanged, same company unchanged): then only time moved, and
        the digest gives the score the records would, without reading them. The others are read and
        scored from their records, and their digests kept for next time.
        """
        with self.store.engine.connect() as conn:
            stamps = read_stamps(conn, after=after, last=last, ids=ids)
        key, reader = self.inputs_key, self.reader
        candidates = {pid: context for pid, members in stamps.members.items()
                      if (kept := stamps.inputs.get(pid)) is not None and kept[0] == key and kept[1] == members
                      and (context := orjson.loads(kept[2]))}
        reader.expect({(k[0], k[1]) for c in candidates.values() for k in c[0]},
                      {c[1] for c in candidates.values() if c[1] is not None})
        fast = [pid for pid, c in candidates.items() if reader.company_holds(c[0], c[1], c[2])]
        slow = sorted(stamps.members.keys() - set(fast))
        fingerprints = stamps.fingerprints
        score, policy, lifecycle = self.scorer.evaluate, apply_lifecycle_policy, self.model.lifecycle_policy
        rows = []
        stages = report.stages

        def settle(pid: int, email: str | None, company_id: int | None, source_ids: dict[str, str],
                   held: LifecycleStage | None, result: PersonScore) -> None:
            """The stage the lifecycle policy allows; a row when the fingerprint changed."""
            stage = policy(held, result.stage, lifecycle, disqualified=result.disqualified is not None,
                           last_engaged_at=result.last_engaged_at)
            fingerprint = f"{result.fingerprint}:{stage.value}"
            stages[stage.value] += 1
            if fingerprints.get(pid) != fingerprint:
                rows.append(self._row(pid, email, company_id, source_ids, result, stage, fingerprint, as_of))
            if company_id is not None:
                companies.add(company_id)

        load = self.scorer.load
        for pid in fast:
            _, company_id, _, held, source_ids = candidates[pid]
            digest = load(stamps.inputs[pid][3])
            settle(pid, digest.email, company_id, source_ids, LifecycleStage(held) if held else None,
                   score(digest, as_of))
        kept_inputs = []
        if slow:
            digest_of, dump = self.scorer.digest, self.scorer.dump
            for p in reader.of(slow):
                digest = digest_of(p.profile)
                person = p.profile.person
                settle(p.person_id, person.email, p.company_id, person.source_ids, person.lifecycle_stage,
                       score(digest, as_of))
                held = person.lifecycle_stage.value if person.lifecycle_stage else None
                context = orjson.dumps([p.company_keys, p.company_id, p.company_stamp, held, person.source_ids])
                kept_inputs.append((p.person_id, key, stamps.members[p.person_id], context.decode(), dump(digest)))
        report.scored += len(fast) + len(kept_inputs)
        report.from_digests += len(fast)
        return rows, kept_inputs

    def _row(self, person_id: int, email: str | None, company_id: int | None, source_ids: dict[str, str],
             score: PersonScore, stage: LifecycleStage, fingerprint: str, as_of: datetime) -> dict[str, Any]:
        return {
            "person_id": person_id, "email": email, "total": round(score.total, 4),
            "fit": round(score.fit, 4), "engagement": round(score.engagement, 4), "stage": stage.value,
            "proposed": score.stage.value, "disqualified": score.disqualified, "hand_raise": score.hand_raise,
            "company_id": company_id, "fingerprint": fingerprint,
            "as_of_ms": int(as_of.timestamp() * 1000), "scored_ms": now_ms(), "persona": score.persona,
            "responded": score.responded,
            "data": orjson.dumps({**score.to_dict(), "persona": score.persona, "responded": score.responded,
                                  "source_ids": source_ids}, default=str).decode(),
        }

    def _roll_up(self, company_ids: list[int], as_of: datetime, report: RescoreReport, batch: int = 500) -> None:
        at_ms = int(as_of.timestamp() * 1000)
        for start in range(0, len(company_ids), batch):
            rows = self.roll_up_batch(company_ids[start:start + batch], as_of, report)
            report.accounts_written += self.store.scores.save_account_scores(rows, at_ms=at_ms) if rows else 0
            between_chunks()

    def roll_up_batch(self, chunk: list[int], as_of: datetime, report: RescoreReport) -> list[dict[str, Any]]:
        """Score the accounts of ``chunk`` from their people's stored scores; returns the rows of the
        accounts whose fingerprint changed, for ``Scores.save_account_scores`` (the caller writes)."""
        window = timedelta(days=90)
        with self.store.engine.connect() as conn:
            golden = {cid: merge(cid, ms, self.policy) for cid, ms in company_members(conn, chunk).items()}
            people = company_people(conn, chunk)
            known = account_fingerprints(conn, chunk)
        history = self.store.scores.account_history(chunk, since_ms=int((as_of - window).timestamp() * 1000))
        rows = []
        for cid in chunk:
            company = golden.get(cid)
            views = [_StoredPerson(email, float(engagement), disqualified, persona, bool(responded),
                                   LifecycleStage(stage))
                     for email, engagement, disqualified, stage, persona, responded in people.get(cid, ())]
            snapshots = [ScoreSnapshot(datetime.fromtimestamp(at / 1000, UTC), s) for at, s in history.get(cid, ())]
            account = self.accounts.score(company if isinstance(company, Company) else None, views,  # type: ignore[arg-type]
                                          as_of, snapshots)
            if account.surge.detected:
                report.surges.append(cid)
            if known.get(cid) == account.fingerprint:
                continue
            rows.append({"company_id": cid, "score": round(account.score, 4), "stage": account.stage.value,
                         "surge": account.surge.detected, "fingerprint": account.fingerprint,
                         "scored_ms": now_ms(), "data": orjson.dumps(_account_dict(account), default=str).decode()})
        report.accounts += len(chunk)
        return rows


def inputs_key(model: ScoringModel, policy: MergePolicy) -> str:
    """Which model, merge policy and engine a digest was made by: any change makes every digest be
    made again from the records (the format's own version is bumped with the engine's meaning)."""
    made_by = f"{DIGEST_FORMAT}|{__version__}|{model.fingerprint}|{policy!r}"
    return hashlib.blake2b(made_by.encode(), digest_size=12).hexdigest()


DIGEST_FORMAT = 1


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """No automatic cycle collection meanwhile: ``between_chunks`` collects once per chunk instead.

    A re-score allocates millions of short-lived objects (records, scores) and hardly any cycles; the
    collector, run every few hundred (or even 50,000) allocations, walked each chunk's objects again
    and again, which measured from a tenth to over half of a re-score's CPU time. Collecting the
    youngest generation once per chunk still frees the few cycles a chunk makes, so memory stays flat.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def between_chunks() -> None:
    """The one cycle collection a chunk gets (of what was allocated since the previous one)."""
    gc.collect(0)


def _view(row: dict[str, Any]) -> _StoredPerson:
    data = row["data"]
    return _StoredPerson(row["email"], float(row["engagement"]), row["disqualified"], data.get("persona"),
                         bool(data.get("responded")), LifecycleStage(row["stage"]))


def _account_dict(account: Any) -> dict[str, Any]:
    return {"score": account.score, "fit": account.fit, "people": account.people,
            "engaged_people": account.engaged_people, "decision_people": account.decision_people,
            "responding_people": account.responding_people, "sql_people": account.sql_people,
            "committee": list(account.committee), "covered_roles": list(account.covered_roles),
            "coverage": account.coverage, "stage": account.stage.value, "surge": account.surge.to_dict(),
            "reasons": [r.to_dict() for r in account.reasons]}


def affected_people(store: Store, source: str, report: RunReport) -> set[int]:
    """Canonical people whose score a sync's changes can move: changed people, and the people of
    changed activities and companies."""
    people: set[tuple[str, str]] = set()
    for stream in report.streams.values():
        ids = list(stream.stored.changed_ids)
        if not ids:
            continue
        if stream.entity == EntityType.PERSON.value:
            people.update((source, i) for i in ids)
        elif stream.entity == EntityType.ACTIVITY.value:
            for activity in store.records.by_keys(EntityType.ACTIVITY, [(source, i) for i in ids]).values():
                if isinstance(activity, Activity):
                    people.update((source, p) for p in activity.person_ids)
        elif stream.entity == EntityType.COMPANY.value:
            for members in store.records.links_to(source, EntityType.COMPANY, ids, EntityType.PERSON).values():
                people.update((source, p) for p in members)
    return set(store.identities.canonical_ids(EntityType.PERSON, people).values())


def funnel(store: Store) -> dict[str, int]:
    counts = store.scores.stage_counts()
    return {stage.value: counts.get(stage.value, 0) for stage in LifecycleStage if counts.get(stage.value)}


def top(store: Store, stage: str = "sql", limit: int = 10) -> Iterable[dict[str, Any]]:
    return store.scores.top_scores(stage, limit)


_REJECTED_LEAD_STATUSES = frozenset({"unqualified", "bad_timing", "rejected", "disqualified"})


def outcome_samples(store: Store) -> list[Sample]:
    """People with a known outcome, scored: deals won or lost, or a sales verdict on the lead.

    A person on a won deal is ``won``, on a lost one ``lost``; otherwise a lead status saying sales
    turned them down is ``rejected``, and an opportunity or customer stage is ``accepted``. What sales
    recorded on crmbridge's own hand-offs (accepted, a meeting, won, lost, rejected) counts too, and a
    verdict further along wins.
    """
    from crmbridge.outcomes import RANK, known_outcomes

    verdicts: dict[tuple[str, str], Outcome] = {}
    for deal in store.records.iter(EntityType.DEAL):
        if isinstance(deal, Deal) and deal.status in (DealStatus.WON, DealStatus.LOST):
            outcome = Outcome.WON if deal.status is DealStatus.WON else Outcome.LOST
            for pid in deal.person_ids:
                if verdicts.get((deal.source, pid)) is not Outcome.WON:
                    verdicts[(deal.source, pid)] = outcome
    for person in store.records.iter(EntityType.PERSON):
        key = (person.source, person.source_id)
        if key in verdicts or not isinstance(person, Person):
            continue
        if (person.lead_status or "") in _REJECTED_LEAD_STATUSES:
            verdicts[key] = Outcome.REJECTED
        elif person.lifecycle_stage in (LifecycleStage.OPPORTUNITY, LifecycleStage.CUSTOMER):
            verdicts[key] = Outcome.ACCEPTED
    canonical = store.identities.canonical_ids(EntityType.PERSON, verdicts)
    by_person: dict[int, Outcome] = {}
    for key, outcome in verdicts.items():
        cid = canonical.get(key)
        if cid is not None and by_person.get(cid) not in (Outcome.WON,):
            by_person[cid] = outcome
    for cid, outcome in known_outcomes(store).items():
        if cid not in by_person or RANK[outcome] > RANK[by_person[cid]]:
            by_person[cid] = outcome
    samples = []
    for cid, outcome in sorted(by_person.items()):
        row = store.scores.score_of(cid)
        if row is not None:
            samples.append(Sample(float(row["total"]), outcome, row["email"] or str(cid)))
    return samples
