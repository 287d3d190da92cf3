"""Hand-off: every sales-ready person becomes exactly one open deal in the "Sales-ready leads" stage.

Exactly once under retries, crashes and concurrent runs:

1. each hand-off has a deterministic key (target CRM + canonical person) and a row in the store;
2. a run claims pending rows (a lease; a dead process's claim is taken over at once);
3. before creating, the CRM is asked for open deals of the person and the account, and for a deal
   carrying the key (a run killed after creating but before recording left one): those are reused;
4. the deal is created with the key on it (a CRM that enforces unique values refuses a duplicate key
   outright; the others are asked for it in step 3), then recorded.

Owner assignment is delegated to the routing rule chain; notification is queued in an outbox, so a
failing chat or mail server never holds a hand-off back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crmbridge.logs import get_logger
from crmbridge.model import Company, EntityType, Owner, Person
from crmbridge.routing import Lead, OwnerRouter, Seller
from crmbridge.store.handoffs import WritebackLedger, iter_scores
from crmbridge.store.store import Store
from crmbridge.writeback.config import HandoffConfig
from crmbridge.writeback.contract import DealDraft, DealRef, PersonDraft, Provisioned, Writer
from crmbridge.writeback.plan import reasons_text

log = get_logger("crmbridge.handoff")

Clock = Callable[[], datetime]


def handoff_key(target: str, person_id: int, generation: int = 1) -> str:
    """Deterministic: the same person handed to the same CRM always has the same key; a person handed off
    again after being recycled gets a key per generation."""
    digest = hashlib.blake2b(f"crmbridge-handoff|{target}|{person_id}".encode(), digest_size=10).hexdigest()
    return f"cb-{digest}" if generation == 1 else f"cb-{digest}-g{generation}"


@dataclass
class HandoffOutcome:
    key: str
    person_id: int
    email: str | None
    target: str
    deal_id: str | None
    action: str  # created, reused, recovered, would create, would reuse, failed
    owner_id: str | None = None
    owner_label: str | None = None
    mode: str | None = None
    rule: str | None = None
    reason: str | None = None
    title: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class HandoffReport:
    outcomes: list[HandoffOutcome] = field(default_factory=list)
    skipped_claimed: int = 0  # held by another live run

    def count(self, action: str) -> int:
        return sum(1 for o in self.outcomes if o.action == action)


class StoreLedger:
    """Routing's view of past assignments, counted from the hand-offs table (plus this run's, on a dry run)."""

    def __init__(self, ledger: WritebackLedger) -> None:
        self.ledger = ledger
        self.extra: list[tuple[str, datetime]] = []

    def count(self, owner_id: str, since: datetime | None) -> int:
        stored = self.ledger.assignments(owner_id, None if since is None else int(since.timestamp() * 1000))
        return stored + sum(1 for o, at in self.extra if o == owner_id and (since is None or at >= since))

    def record(self, owner_id: str, at: datetime) -> None:
        self.extra.append((owner_id, at))


@dataclass
class _Candidate:
    key: str
    person_id: int
    company_id: int | None
    score: Mapping[str, Any]
    person: Person | None = None
    company: Company | None = None
    person_ref: str | None = None
    company_ref: str | None = None
    company_owner: str | None = None  # the account's owner in the target CRM
    target_reason: str = ""
    company_members: list[Any] = field(default_factory=list)
    generation: int = 1


class HandoffRunner:
    def __init__(self, store: Store, writers: Mapping[str, Writer], provisioned: Mapping[str, Provisioned],
                 config: HandoffConfig, router: OwnerRouter, clock: Clock, sources: Sequence[str],
                 ranks: Mapping[str, int] | None = None) -> None:
        self.store, self.writers, self.provisioned = store, writers, provisioned
        self.config, self.router, self.clock, self.sources = config, router, clock, list(sources)
        self.ranks = ranks  # each source's rank as hand-off target (None: what its plugin declares)
        self.ledger = WritebackLedger(store, clock=lambda: int(self.clock().timestamp() * 1000))
        self.counts = StoreLedger(self.ledger)
        self._sellers: dict[str, list[Seller]] = {}

    # -- which people ----------------------------------------------------------------------------

    def candidates(self) -> list[_Candidate]:
        done = self.ledger.handed_off_people(self.config.recycle_after_days * 86_400_000)
        out: list[_Candidate] = []
        for rows in iter_scores(self.store, stage="sql"):
            for row in rows:
                if int(row["person_id"]) in done or row.get("disqualified"):
                    continue
                out.append(_Candidate("", int(row["person_id"]),
                                      int(row["company_id"]) if row.get("company_id") is not None else None, row))
        self._load_records(out)
        generations = self.ledger.generations([c.person_id for c in out])
        for c in out:
            target, why = self.config.target_for(_facts(c), self.sources, self.ranks)
            latest, recycled = generations.get(c.person_id, (1, False))
            c.generation = latest + 1 if recycled else latest
            c.key, c.target_reason = handoff_key(target, c.person_id, c.generation), why
            c.person_ref = _member_id(c.person, target, c.score)
            c.company_ref = c.company.source_ids.get(target) if c.company else None
            c.company_owner = next((m.owner_id for m in c.company_members if m.source == target), None)
        return [c for c in out if _target_of(c, self) in self.writers]

    def _load_records(self, candidates: list[_Candidate]) -> None:
        people = self.store.identities.members(EntityType.PERSON, [c.person_id for c in candidates])
        companies = self.store.identities.members(EntityType.COMPANY, [c.company_id for c in candidates
                                                            if c.company_id is not None])
        for c in candidates:
            c.person = _merged(people.get(c.person_id) or [])  # type: ignore[assignment]
            if c.company_id is not None:
                c.company_members = companies.get(c.company_id) or []
                c.company = _merged(c.company_members)  # type: ignore[assignment]

    # -- the run ---------------------------------------------------------------------------------

    def run(self, *, dry_run: bool = False, limit: int | None = None) -> HandoffReport:
        report = HandoffReport()
        candidates = self.candidates()[:limit] if limit else self.candidates()
        by_target: dict[str, list[_Candidate]] = {}
        for c in candidates:
            by_target.setdefault(_target_of(c, self), []).append(c)
        for target, group in sorted(by_target.items()):
            self._run_target(target, group, report, dry_run)
        return report

    def _run_target(self, target: str, group: list[_Candidate], report: HandoffReport, dry_run: bool) -> None:
        writer, setup = self.writers[target], self.provisioned[target]
        if not dry_run:
            self.ledger.open([{"key": c.key, "person_id": c.person_id, "company_id": c.company_id,
                               "target": target, "generation": c.generation} for c in group])
            mine = set(self.ledger.claim([c.key for c in group], self.config.lease_seconds * 1000))
            report.skipped_claimed += len(group) - len(mine)
            group = [c for c in group if c.key in mine]
        if not group:
            return
        try:
            self._ensure_people(writer, group, dry_run)
            existing = writer.open_deals([c.person_ref for c in group if c.person_ref],
                                         [c.company_ref for c in group if c.company_ref],
                                         [c.key for c in group], setup.field_keys)
            self._hand_off_all(target, writer, setup, group, existing, report, dry_run)
        finally:
            if not dry_run:
                self.ledger.release([c.key for c in group])

    def _ensure_people(self, writer: Writer, group: list[_Candidate], dry_run: bool) -> None:
        missing = [c for c in group if not c.person_ref and c.person is not None and c.person.email]
        if not missing or dry_run:
            return
        drafts = [PersonDraft(c.person.email.lower(), c.person.first_name, c.person.last_name,  # type: ignore[union-attr]
                              c.person.title, c.person.phone,  # type: ignore[union-attr]
                              c.company.name if c.company else None, c.company.domain if c.company else None)
                  for c in missing]
        found = writer.ensure_people(drafts)
        for c, d in zip(missing, drafts, strict=True):
            if d.email in found:
                c.person_ref, company_ref = found[d.email]
                c.company_ref = c.company_ref or company_ref

    def _hand_off_all(self, target: str, writer: Writer, setup: Provisioned, group: list[_Candidate],
                      existing: list[DealRef], report: HandoffReport, dry_run: bool) -> None:
        """Reuse what the CRM has, assign owners in order, create the new deals in batches, record each."""
        drafts: list[tuple[_Candidate, HandoffOutcome, DealDraft]] = []
        followers: list[tuple[_Candidate, HandoffOutcome, _Candidate]] = []  # same account as an earlier one
        by_account: dict[str, _Candidate] = {}
        for c in group:
            outcome = HandoffOutcome(c.key, c.person_id, c.person.email if c.person else c.score.get("email"),
                                     target, None, "failed")
            report.outcomes.append(outcome)
            if not c.person_ref and not dry_run:
                outcome.error = f"the person is not in {target} and has no e-mail to create them with"
                continue
            reuse, why = _reusable(c, existing)
            if reuse is not None:
                outcome.deal_id, outcome.owner_id, outcome.title = reuse.id, reuse.owner_id, reuse.name
                outcome.action = "would reuse" if dry_run else ("recovered" if reuse.key == c.key else "reused")
                outcome.mode, outcome.rule, outcome.reason = "owner", "existing deal", why
                outcome.owner_label = self._owner_label(target, reuse.owner_id)
                self._record(target, writer, c, outcome, dry_run)
                continue
            first = by_account.get(c.company_ref) if c.company_ref else None
            if first is not None:  # one open deal per account: this pass already makes one
                followers.append((c, outcome, first))
                continue
            if c.company_ref:
                by_account[c.company_ref] = c
            self._assign(target, c, outcome)
            outcome.title = self._title(c)
            outcome.action = "would create"
            drafts.append((c, outcome, DealDraft(c.key, outcome.title, setup.pipeline_id, setup.stage_id,
                                                 c.person_ref or "", c.company_ref, outcome.owner_id,
                                                 self._summary(c)["text"], setup.field_keys)))
        made = {} if dry_run or not drafts else writer.create_deals([d for _, _, d in drafts])
        outcomes = {c.key: outcome for c, outcome, _ in drafts}
        for c, outcome, draft in drafts:
            result = made.get(draft.key)
            if isinstance(result, DealRef):
                outcome.deal_id, outcome.action = result.id, "created"
            elif not dry_run:
                outcome.action, outcome.error = "failed", str(result or "the CRM did not answer for it")[:300]
                log.warning("handoff.create_failed", key=c.key, target=target, error=type(result).__name__)
                continue
            self._record(target, writer, c, outcome, dry_run)
        for c, outcome, first in followers:
            lead = outcomes[first.key]
            if lead.deal_id is None and not dry_run:
                outcome.error = "the account's deal could not be created"
                continue
            outcome.deal_id, outcome.owner_id, outcome.owner_label = lead.deal_id, lead.owner_id, lead.owner_label
            outcome.title, outcome.mode, outcome.rule = lead.title, lead.mode, "existing deal"
            outcome.reason = f"the account's hand-off deal {lead.deal_id or '(new)'} was made in this pass"
            outcome.action = "would reuse" if dry_run else "reused"
            self._record(target, writer, c, outcome, dry_run)

    def _record(self, target: str, writer: Writer, c: _Candidate, outcome: HandoffOutcome, dry_run: bool) -> None:
        if dry_run:
            return
        summary = self._summary(c) | {
            "deal_url": writer.deal_url(outcome.deal_id or ""), "owner_label": outcome.owner_label,
            "owner_email": self._owner_email(target, outcome.owner_id), "target_reason": c.target_reason}
        self.ledger.complete(c.key, deal_id=outcome.deal_id, person_ref=c.person_ref, company_ref=c.company_ref,
                             reused=outcome.action != "created", owner_id=outcome.owner_id, mode=outcome.mode,
                             rule=outcome.rule, reason=outcome.reason, title=outcome.title, summary=summary)
        log.info("handoff.done", key=c.key, target=target, deal=outcome.deal_id, action=outcome.action,
                 owner=outcome.owner_id, rule=outcome.rule)

    def _assign(self, target: str, c: _Candidate, outcome: HandoffOutcome) -> None:
        now = self.clock()
        lead = _lead(c)
        assignment = self.router.assign(lead, self._sellers_of(target), self.counts, now)
        outcome.owner_id, outcome.mode = assignment.owner_id, str(assignment.mode)
        outcome.rule, outcome.reason = assignment.rule, assignment.reason
        outcome.owner_label = self._owner_label(target, assignment.owner_id) if assignment.owner_id else "to claim"
        if assignment.owner_id:
            self.counts.record(assignment.owner_id, now)

    def _sellers_of(self, target: str) -> list[Seller]:
        if target not in self._sellers:
            owners = [o for o in self.store.records.iter(EntityType.OWNER, target, live_only=False)
                      if isinstance(o, Owner)]
            sellers = [Seller.from_owner(o) for o in owners]
            self._sellers[target] = [s if not o.archived else Seller(s.id, s.name, s.email, False, s.timezone, s.teams)
                                     for s, o in zip(sellers, owners, strict=True)]
        return self._sellers[target]

    def _owner_label(self, target: str, owner_id: str | None) -> str | None:
        seller = next((s for s in self._sellers_of(target) if s.id == owner_id), None)
        return seller.label if seller else owner_id

    def _owner_email(self, target: str, owner_id: str | None) -> str | None:
        seller = next((s for s in self._sellers_of(target) if s.id == owner_id), None)
        return seller.email if seller else None

    def _title(self, c: _Candidate) -> str:
        person = c.person.full_name if c.person and c.person.full_name else (c.score.get("email") or "unknown")
        company = (c.company.name if c.company and c.company.name else None) or "no company"
        title = (c.person.title if c.person else None) or ""
        return self.config.title.format(company=company, person=person, title=title,
                                        score=c.score["data"].get("score"), email=c.score.get("email") or "")

    def _summary(self, c: _Candidate) -> dict[str, Any]:
        data = c.score["data"]
        reasons = reasons_text(data.get("reasons") or (), self.config.reasons_in_summary)
        text = (f"Score {data.get('score')} (fit {round(float(c.score['fit']))}, engagement "
                f"{round(float(c.score['engagement']))}); SQL. Top reasons: {reasons or 'none recorded'}.")
        return {"text": text, "score": data.get("score"), "reasons": reasons.split("; ") if reasons else [],
                "person": c.person.full_name if c.person else None, "email": c.score.get("email"),
                "title": c.person.title if c.person else None,
                "company": c.company.name if c.company else None, "domain": c.company.domain if c.company else None}


def o_name(owner: Owner) -> str:
    return " ".join(p for p in (owner.first_name, owner.last_name) if p) or owner.email or owner.source_id


def _merged(records: list[Any]) -> Any:
    """One view of a canonical record: the first source's, with every source's id."""
    if not records:
        return None
    first = records[0].model_copy(deep=True)
    first.source_ids = {r.source: r.source_id for r in records}
    for r in records[1:]:
        for name in type(first).model_fields:
            if getattr(first, name) in (None, "", []) and getattr(r, name) not in (None, "", []):
                setattr(first, name, getattr(r, name))
    return first


def _member_id(person: Person | None, target: str, score: Mapping[str, Any]) -> str | None:
    if person is not None and target in person.source_ids:
        return person.source_ids[target]
    return (score.get("data") or {}).get("source_ids", {}).get(target)


def _target_of(c: _Candidate, runner: HandoffRunner) -> str:
    return runner.config.target_for(_facts(c), runner.sources, runner.ranks)[0]


def _facts(c: _Candidate) -> dict[str, Any]:
    company, person = c.company, c.person
    return {"country": (company.country if company else None) or (person.country if person else None),
            "region": (company.region if company else None) or (person.region if person else None),
            "industry": company.industry if company else None,
            "employees": company.employees if company else None}


def _reusable(c: _Candidate, existing: list[DealRef]) -> tuple[DealRef | None, str]:
    for deal in existing:
        if deal.key == c.key:
            return deal, f"deal {deal.id} already carries this hand-off's key"
    for deal in existing:
        if deal.open and c.person_ref and c.person_ref in deal.person_ids:
            return deal, f"the person already has open deal {deal.id}"
    for deal in existing:
        if deal.open and c.company_ref and c.company_ref in deal.company_ids:
            return deal, f"the account already has open deal {deal.id}"
    return None, ""


def _lead(c: _Candidate) -> Lead:
    person, company = c.person, c.company
    data = c.score["data"]
    interest = tuple(sorted({str(r.get("rule")) for r in data.get("reasons") or () if r.get("category") in
                             ("engagement", "qualifying")}))
    facts = _facts(c)
    return Lead(person_id=c.person_id, email=c.score.get("email"), name=person.full_name if person else None,
                title=person.title if person else None, country=facts["country"], region=facts["region"],
                company_name=company.name if company else None, company_domain=company.domain if company else None,
                industry=facts["industry"], employees=facts["employees"],
                annual_revenue=company.annual_revenue if company else None,
                company_owner_id=c.company_owner,
                product_interest=interest, segment=None, score=float(c.score["total"]))


def window_start(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
