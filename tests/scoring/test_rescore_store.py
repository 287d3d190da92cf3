"""A re-score of the store writes exactly what scoring each profile on its own would write.

The oracle is the plain path: ``ProfileReader`` builds each profile, ``Scorer`` scores it, and the
row is made as the score table defines it; the account roll-up is recomputed from the stored
scores. The data set is both sandboxes (HubSpot and Pipedrive, so identities span two CRMs),
backfilled into each backend, plus archives and merges made on top.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from crmbridge.connectors import SandboxOptions, plugin
from crmbridge.identity import FieldRule, MergePolicy, load_policy, merge
from crmbridge.model import Activity, ActivityKind, Company, EntityType
from crmbridge.profiles import ProfileReader
from crmbridge.rescore import Rescorer, RescoreReport
from crmbridge.sandbox import SandboxServer
from crmbridge.scoring import AccountScorer, Scorer, ScoreSnapshot, ScoringModel, apply_lifecycle_policy
from crmbridge.store import Store, schema
from crmbridge.sync import Syncer, load_mapping

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "scoring" / "default.yaml"
TIME_SCALE = 100.0
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WINDOW = timedelta(days=90)

pytestmark = pytest.mark.xdist_group("rescore-store")


@pytest.fixture(scope="module")
def world() -> Iterator[SandboxServer]:
    options = SandboxOptions(seed=11, contacts=400, time_scale=TIME_SCALE, extra={"anchor": "2026-11-01T00:00:00Z"})
    with SandboxServer(options, ["hubspot", "pipedrive"]) as server:
        yield server


def _backfill(server: SandboxServer, store: Store) -> None:
    for source in ("hubspot", "pipedrive"):
        connector = plugin(source).sandbox_connector(server.base_url(source), time_scale=TIME_SCALE)
        Syncer(store, connector, load_mapping(store, connector, ROOT / "mappings" / f"{source}.yaml")).backfill()


def _disturb(store: Store) -> None:
    """Archives and merges on top of the backfill: what a re-score must leave out or follow."""
    merged = [(cid, ms) for cid, ms in store.identities.groups(EntityType.PERSON) if len(ms) > 1]
    assert len(merged) > 20, "the sandboxes share people"
    # What a person does as seen by the second CRM counts too (the sandbox's are sellers' activities).
    seen_there = []
    for i, (_, members) in enumerate(merged[1:21]):
        there = members[-1]
        for j, (kind, attributes) in enumerate([
                (ActivityKind.FORM_SUBMISSION, {"form_name": "Contact us", "answers": {"project_status": "current"}}),
                (ActivityKind.PAGE_VIEW, {"url": "https://www.example.com/pricing"}),
                (ActivityKind.CONTENT_DOWNLOAD, {"content_type": "buyers_guide"})][: 1 + i % 3]):
            seen_there.append(Activity(source=there.source, source_id=f"x{i}-{j}", kind=kind, attributes=attributes,
                                       occurred_at=NOW - timedelta(days=3 * i + j), person_ids=[there.source_id]))
    store.records.commit_page(merged[1][1][-1].source, "activities", EntityType.ACTIVITY, seen_there)
    _, members = merged[0]
    gone = members[-1]
    store.records.commit_page(gone.source, "archived", EntityType.PERSON, [], archived_ids=[gone.source_id])
    t = schema.activities.c
    with store.engine.connect() as conn:
        some = conn.execute(sa.select(t.source, t.source_id).where(t.archived.is_(False))
                            .order_by(t.source, t.source_id).limit(40)).all()
    for source, sid in some[::4]:
        store.records.commit_page(source, "archived", EntityType.ACTIVITY, [], archived_ids=[sid])
    hubspot = [m for _, ms in store.identities.groups(EntityType.PERSON) for m in ms if m.source == "hubspot"]
    loser, winner = hubspot[3], hubspot[4]
    store.records.commit_page("hubspot", "contacts", EntityType.PERSON, [], merged={loser.source_id: winner.source_id})


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, world: SandboxServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('rescore') / 'store.db'}"
        with Store(url) as store:
            _backfill(world, store)
            _disturb(store)
            yield store
        return
    yield from _postgres_store(world)


def _postgres_store(world: SandboxServer) -> Iterator[Store]:
    import os
    import uuid

    base = os.environ.get("CRMBRIDGE_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("CRMBRIDGE_TEST_POSTGRES_URL is not set")
    from crmbridge.store.engine import create_engine_for

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine_for(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    try:
        with Store(f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{name}") as store:
            _backfill(world, store)
            _disturb(store)
            yield store
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


@pytest.fixture(scope="module")
def model() -> ScoringModel:
    return ScoringModel.load(MODEL)


@pytest.fixture(scope="module")
def policy() -> MergePolicy:
    return load_policy(ROOT / "mappings" / "merge.yaml")


# -- the oracle -----------------------------------------------------------------------------------

def expected_people(store: Store, model: ScoringModel, policy: MergePolicy, as_of: datetime
                    ) -> dict[int, dict[str, Any]]:
    """Every live person's score row, profile by profile (``scored_ms`` left out: it is a clock reading)."""
    scorer = Scorer(model)
    out = {}
    for batch in ProfileReader(store, policy).all():
        for p in batch:
            score = scorer.score(p.profile, as_of)
            stage = apply_lifecycle_policy(p.profile.person.lifecycle_stage, score.stage, model.lifecycle_policy,
                                           disqualified=score.disqualified is not None,
                                           last_engaged_at=score.last_engaged_at)
            out[p.person_id] = {
                "person_id": p.person_id, "email": p.profile.person.email, "total": round(score.total, 4),
                "fit": round(score.fit, 4), "engagement": round(score.engagement, 4), "stage": stage.value,
                "proposed": score.stage.value, "disqualified": score.disqualified, "hand_raise": score.hand_raise,
                "company_id": p.company_id, "fingerprint": f"{score.fingerprint}:{stage.value}",
                "as_of_ms": int(as_of.timestamp() * 1000), "persona": score.persona, "responded": score.responded,
                "data": orjson.dumps({**score.to_dict(), "persona": score.persona, "responded": score.responded,
                                      "source_ids": p.profile.person.source_ids}, default=str).decode(),
            }
    return out


def stored_people(store: Store) -> dict[int, dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.scores)).mappings().all()
    return {int(r["person_id"]): {k: v for k, v in r.items() if k != "scored_ms"} for r in rows}


def expected_accounts(store: Store, model: ScoringModel, policy: MergePolicy, as_of: datetime,
                      scored: dict[int, dict[str, Any]], stored: dict[int, dict[str, Any]]
                      ) -> dict[int, dict[str, Any]]:
    """The roll-up of the companies of the people just scored and of every stored score, read before
    the run: ``stored`` is what the score table will hold once the people are written."""
    from crmbridge.rescore import _account_dict, _view

    accounts = AccountScorer(model)
    ids = sorted({r["company_id"] for r in (*scored.values(), *stored.values()) if r["company_id"] is not None})
    golden = {cid: merge(cid, ms, policy) for cid, ms in store.identities.members(EntityType.COMPANY, ids).items()}
    history = store.scores.account_history(ids, since_ms=int((as_of - WINDOW).timestamp() * 1000))
    views: dict[int, list[Any]] = {}
    for pid in sorted(stored):
        row = stored[pid]
        if row["company_id"] is not None:
            views.setdefault(row["company_id"], []).append(_view({**row, "data": orjson.loads(row["data"])}))
    out = {}
    for cid in ids:
        company = golden.get(cid)
        account = accounts.score(company if isinstance(company, Company) else None, views.get(cid, []), as_of,
                                 [ScoreSnapshot(datetime.fromtimestamp(at / 1000, UTC), s)
                                  for at, s in history.get(cid, ())])
        out[cid] = {"company_id": cid, "score": round(account.score, 4), "stage": account.stage.value,
                    "surge": account.surge.detected, "fingerprint": account.fingerprint,
                    "data": orjson.dumps(_account_dict(account), default=str).decode()}
    return out


def stored_accounts(store: Store) -> dict[int, dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.account_scores)).mappings().all()
    return {int(r["company_id"]): {k: v for k, v in r.items() if k != "scored_ms"} for r in rows}


def _after(before: dict[int, dict[str, Any]], now: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """What the table holds after a re-score that writes a row only when its fingerprint changed."""
    return {k: (v if before.get(k, {}).get("fingerprint") != v["fingerprint"] else before[k])
            for k, v in {**before, **now}.items()}


def _changed(before: dict[int, dict[str, Any]], now: dict[int, dict[str, Any]]) -> int:
    return sum(1 for k, v in now.items() if before.get(k, {}).get("fingerprint") != v["fingerprint"])


def _check_report(report: RescoreReport, people: dict[int, dict[str, Any]], written: int,
                  accounts: dict[int, dict[str, Any]], accounts_written: int) -> None:
    assert report.scored == len(people)
    assert report.written == written
    assert report.stages == Counter(r["stage"] for r in people.values())
    assert report.accounts == len(accounts)
    assert report.accounts_written == accounts_written
    assert sorted(report.surges) == sorted(c for c, r in accounts.items() if r["surge"])


# -- the behaviours -------------------------------------------------------------------------------

def test_a_full_rescore_then_later_ones_write_what_profile_by_profile_scoring_gives(
        seeded: Store, model: ScoringModel, policy: MergePolicy) -> None:
    store = seeded
    with store.engine.begin() as conn:
        for table in ("scores", "account_scores", "account_history"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    written = []
    for days in (0, 40, 40, 75):  # the first score, decay, nothing changed, decay again
        as_of = NOW + timedelta(days=days)
        people_before, accounts_before = stored_people(store), stored_accounts(store)
        people = expected_people(store, model, policy, as_of)
        assert len(people) > 300 and any(len(orjson.loads(r["data"])["source_ids"]) > 1 for r in people.values())
        accounts = expected_accounts(store, model, policy, as_of, people, _after(people_before, people))

        report = Rescorer(store, model, policy, clock=lambda as_of=as_of: as_of).run()

        assert stored_people(store) == _after(people_before, people)
        assert stored_accounts(store) == _after(accounts_before, accounts)
        _check_report(report, people, _changed(people_before, people), accounts,
                      _changed(accounts_before, accounts))
        written.append(report.written)
    assert written[0] > 0 and written[1] > 0 and written[2] == 0 and written[3] > 0


def test_rescoring_some_people_writes_theirs_and_their_accounts_only(
        seeded: Store, model: ScoringModel, policy: MergePolicy) -> None:
    store = seeded
    as_of = NOW + timedelta(days=150)
    before, accounts_before = stored_people(store), stored_accounts(store)
    everyone = expected_people(store, model, policy, as_of)
    some = sorted(everyone)[::7]
    chosen = {k: everyone[k] for k in some}
    accounts = expected_accounts(store, model, policy, as_of, chosen, {})
    accounts = {c: a for c, a in expected_accounts(store, model, policy, as_of, chosen, _after(before, chosen)).items()
                if c in accounts}

    report = Rescorer(store, model, policy, clock=lambda: as_of).run(some)

    assert stored_people(store) == _after(before, chosen)
    assert stored_accounts(store) == _after(accounts_before, accounts)
    assert report.scored == len(some) and report.written == _changed(before, chosen)
    assert report.accounts == len(accounts) and report.accounts_written == _changed(accounts_before, accounts)


# -- the scoring facts a re-score reads instead of the activity records -----------------------------

def _facts(store: Store) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The facts the store kept with its writes, and the facts its records imply (derived afresh)."""
    from crmbridge.store.features import derive

    with store.engine.connect() as conn:
        kept = sorted(tuple(r) for r in conn.execute(sa.text(
            "SELECT source, person_id, activity_id, fact FROM activity_facts")))
        return kept, sorted(derive(conn))


def test_the_scoring_facts_are_what_the_records_imply_after_backfills_archives_and_merges(seeded: Store) -> None:
    kept, derived = _facts(seeded)
    assert len(derived) > 1000
    assert kept == derived


def test_records_changed_after_a_rescore_are_scored_from_their_new_facts(
        seeded: Store, model: ScoringModel, policy: MergePolicy) -> None:
    """A later page (a sync pass or a webhook batch) changes, archives, adds and merges what the facts
    were built from; the next re-score still writes what profile-by-profile scoring gives."""
    store = seeded
    as_of = NOW + timedelta(days=2)
    Rescorer(store, model, policy, clock=lambda: as_of).run()
    t = schema.activities.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.source, t.source_id).where(t.archived.is_(False), t.source == "hubspot")
                            .order_by(t.source_id).limit(12)).all()
    first, second, third = (store.records.get(EntityType.ACTIVITY, s, i) for s, i in rows[:3])
    assert isinstance(first, Activity) and isinstance(second, Activity) and isinstance(third, Activity)
    # An activity now a demo request, another one moved to a different person, a third merged away.
    someone_else = next(p for _, ms in store.identities.groups(EntityType.PERSON) for p in ms
                        if p.source == "hubspot" and p.source_id not in second.person_ids)
    store.records.commit_page("hubspot", "events", EntityType.ACTIVITY, [
        first.model_copy(update={
            "kind": ActivityKind.FORM_SUBMISSION, "occurred_at": as_of - timedelta(hours=1),
            "attributes": {"form_name": "Request a demo", "answers": {"project_status": "current"}}}),
        second.model_copy(update={"person_ids": [someone_else.source_id], "occurred_at": as_of - timedelta(days=1)}),
        Activity(source="hubspot", source_id="late-1", kind=ActivityKind.PAGE_VIEW, occurred_at=as_of,
                 attributes={"url": "https://www.example.com/pricing"}, person_ids=list(third.person_ids))])
    store.records.commit_page("hubspot", "events", EntityType.ACTIVITY, [], merged={third.source_id: "late-1"})
    people = [m for _, ms in store.identities.groups(EntityType.PERSON) for m in ms if m.source == "hubspot"]
    store.records.commit_page("hubspot", "contacts", EntityType.PERSON, [],
                              merged={people[7].source_id: people[8].source_id})

    kept, derived = _facts(store)
    assert kept == derived
    before = stored_people(store)
    expected = expected_people(store, model, policy, as_of)
    report = Rescorer(store, model, policy, clock=lambda: as_of).run()
    assert stored_people(store) == _after(before, expected)
    assert report.written == _changed(before, expected) > 0


def test_a_rescore_shared_among_forked_workers_writes_what_one_process_writes(
        seeded: Store, model: ScoringModel, policy: MergePolicy, monkeypatch: pytest.MonkeyPatch) -> None:
    import crmbridge.rescore_workers as workers

    monkeypatch.setattr(workers, "CHUNK_PEOPLE", 40)  # many chunks and account batches to share out
    monkeypatch.setattr(workers, "ACCOUNT_BATCH", 15)
    store = seeded
    as_of = NOW + timedelta(days=120)
    before, accounts_before = stored_people(store), stored_accounts(store)
    people = expected_people(store, model, policy, as_of)
    accounts = expected_accounts(store, model, policy, as_of, people, _after(before, people))

    report = Rescorer(store, model, policy, clock=lambda: as_of).run(workers=2)

    assert stored_people(store) == _after(before, people)
    assert stored_accounts(store) == _after(accounts_before, accounts)
    _check_report(report, people, _changed(before, people), accounts, _changed(accounts_before, accounts))
    assert report.written > 0


def test_crmbridge_score_run_with_two_workers_leaves_nothing_for_one_process_to_change(
        seeded: Store, model: ScoringModel, policy: MergePolicy, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from crmbridge.cli import app

    env = {"CRMBRIDGE_DATABASE_URL": seeded.url, "CRMBRIDGE_SCORING_MODEL": str(MODEL),
           "CRMBRIDGE_MAPPINGS_DIR": str(ROOT / "mappings")}
    result = CliRunner().invoke(app, ["score", "run", "--workers", "2", "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    people = sum(1 for _ in seeded.identities.groups(EntityType.PERSON))
    assert json.loads(result.stdout)["scored"] == people

    # The same moment in one process: whatever the workers wrote wrong or left out would be written now.
    again = Rescorer(seeded, model, policy).run()
    assert (again.scored, again.written, again.accounts_written) == (people, 0, 0)
    # Nothing changed since: the command says everyone came from the digests kept by the workers.
    result = CliRunner().invoke(app, ["score", "run"], env=env)
    assert result.exit_code == 0, result.output
    assert f"scored {people:,} people (0 changed; 0 read from their records" in " ".join(result.stdout.split())


# -- the digests a re-score keeps, and when it may score them instead of the records --------------

def test_a_rescore_scores_kept_digests_only_where_nothing_they_were_made_from_changed(
        seeded: Store, model: ScoringModel, policy: MergePolicy) -> None:
    """A person is read from their records again exactly when one of their records, the facts filed under
    them, or their company changed; everyone else is scored from the digest kept the last time, and
    the scores are those of profile-by-profile scoring either way."""
    store = seeded
    as_of = NOW + timedelta(days=5)
    Rescorer(store, model, policy, clock=lambda: as_of).run()
    again = Rescorer(store, model, policy, clock=lambda: as_of + timedelta(days=1)).run()
    assert again.from_digests == again.scored > 300

    scores = stored_people(store)
    canonical = store.identities.canonical_ids
    # A company's employees and industry change in one CRM: its people's fit may move.
    company_id = Counter(r["company_id"] for r in scores.values() if r["company_id"] is not None).most_common(1)[0][0]
    member = store.identities.members(EntityType.COMPANY, [company_id])[company_id][0]
    assert isinstance(member, Company)
    store.records.commit_page(member.source, "companies", EntityType.COMPANY, [member.model_copy(update={
        "employees": (member.employees or 0) + 1_000, "industry": "software"})])
    touched = {pid for pid, r in scores.items() if r["company_id"] == company_id}
    # One activity archived: only the facts of its people change.
    t = schema.activities.c
    with store.engine.connect() as conn:
        source, sid = conn.execute(sa.select(t.source, t.source_id).where(t.archived.is_(False))
                                   .order_by(t.source_id.desc()).limit(1)).one()
    activity = store.records.get(EntityType.ACTIVITY, source, sid)
    assert isinstance(activity, Activity) and activity.person_ids
    store.records.commit_page(source, "archived", EntityType.ACTIVITY, [], archived_ids=[sid])
    touched |= set(canonical(EntityType.PERSON, [(source, p) for p in activity.person_ids]).values())
    # One person's title changes.
    someone = next(m for pid, ms in store.identities.groups(EntityType.PERSON) if pid not in touched for m in ms)
    store.records.commit_page(someone.source, "contacts", EntityType.PERSON, [someone.model_copy(update={
        "title": "VP Sales", "seniority": "vp", "department": "sales"})])
    touched |= set(canonical(EntityType.PERSON, [(someone.source, someone.source_id)]).values())

    as_of += timedelta(days=2)
    before = stored_people(store)
    expected = expected_people(store, model, policy, as_of)
    report = Rescorer(store, model, policy, clock=lambda: as_of).run()

    assert stored_people(store) == _after(before, expected)
    assert report.scored == len(expected)
    assert report.scored - report.from_digests == len(touched) >= 3
    # And once more: what was read from the records is now a digest too.
    assert Rescorer(store, model, policy, clock=lambda: as_of).run().from_digests == len(expected)


def test_a_changed_model_or_merge_policy_makes_every_digest_again_from_the_records(
        seeded: Store, model: ScoringModel, policy: MergePolicy) -> None:
    store = seeded
    as_of = NOW + timedelta(days=9)
    Rescorer(store, model, policy, clock=lambda: as_of).run()
    spec = model.spec.model_dump(mode="json")
    spec["thresholds"]["sql"]["total_min"] = spec["thresholds"]["sql"]["total_min"] + 7
    other = ScoringModel.from_dict(spec)
    before = stored_people(store)
    expected = expected_people(store, other, policy, as_of)

    report = Rescorer(store, other, policy, clock=lambda: as_of).run()

    assert report.from_digests == 0 and report.scored == len(expected)
    assert stored_people(store) == _after(before, expected)
    keep_hubspot = MergePolicy(fields={"person": {"title": FieldRule(strategy="priority", order=("hubspot",))}})
    assert Rescorer(store, other, keep_hubspot, clock=lambda: as_of).run().from_digests == 0
    assert Rescorer(store, other, keep_hubspot, clock=lambda: as_of).run().from_digests == len(expected)
