"""The SLA engine: clocks start at hand-off, stop at the first real sales touch, and climb a ladder.

One ``tick(now_ms)`` does everything, with the time given (tests move it instead of sleeping):

1. start a clock per policy for every hand-off that has none (in the owner's or team's calendar);
2. observe what the store received since the last tick: seller activities on the lead or the deal
   (calls, sent e-mails, meetings by a person, never by automation), the deal leaving the
   "Sales-ready leads" stage (acceptance), the deal won or lost; settle clocks and record outcomes;
3. mark open clocks past their due instant as breached (one UPDATE);
4. take the ladder steps that have come due: reminder to the owner, escalation to the manager,
   reassignment to the next owner by the routing rules (capped), each once across restarts and replicas;
5. write the SLA's state onto the deal in the sales CRM where it changed.

The tick costs what is due, not what is open: steps are found by ``next_ms`` in an index, breaches by
one UPDATE, and only deals whose status text changed are written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa

from crmbridge.logs import get_logger
from crmbridge.model import EntityType
from crmbridge.notify.notice import HandoffNotice
from crmbridge.notify.notifier import Notifier
from crmbridge.sla.calendar import BusinessCalendar, SlaClock
from crmbridge.sla.config import MANAGER, Policy, SlaConfig, Step, ladder_steps
from crmbridge.sla.ledger import (
    CLOSED,
    FAILED,
    MET,
    MISSED,
    OPEN,
    REASSIGNED,
    RECORDED,
    RETRY,
    SENDING,
    SENDING_BY,
    SENT,
    SKIPPED,
    SlaLedger,
)
from crmbridge.sla.surges import SurgeWatch
from crmbridge.store import schema
from crmbridge.store.cursors import Watermark
from crmbridge.store.engine import chunked
from crmbridge.store.handoffs import WritebackLedger
from crmbridge.store.store import Store, now_ms
from crmbridge.writeback.contract import DealUpdate, Writer

log = get_logger("crmbridge.sla")

CURSOR = ("_sla", "observe", "stored")
START_CURSOR = ("_sla", "start", "done")
START_OVERLAP_MS = 600_000  # hand-offs committed late carry an earlier done_ms; starting twice is a no-op
OVERLAP_MS = 5_000  # rows committed late carry an earlier stored_ms; settling twice is harmless
STEP_RETRY_MS = (60_000, 300_000, 1_800_000)  # a failed notice is tried again after these waits
# Real time a delivery may take before another process may treat it as cut off: more than the notifier's
# bounded retries (45 s) and a timeout, so a slow delivery by a live process is never taken over.
DELIVERY_LEASE_MS = 120_000
MEETING_KINDS = frozenset({"meeting", "meeting_booked"})
STATUS_TEXT = {MET: "met", MISSED: "missed", CLOSED: "closed", REASSIGNED: "reassigned"}


@dataclass(frozen=True)
class NewOwner:
    owner_id: str
    label: str
    email: str | None
    reason: str


class Reassigner(Protocol):
    """Picks the next owner for a hand-off whose SLA ran out, never one of ``exclude``."""

    def __call__(self, clock: Mapping[str, Any], exclude: set[str], now: datetime) -> NewOwner | None: ...


@dataclass
class TickReport:
    started: int = 0
    settled: int = 0
    breached: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    notices: Counter[str] = field(default_factory=Counter)
    outcomes: int = 0
    surges: int = 0
    deals_written: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "settled": self.settled, "breached": self.breached,
                "steps": dict(self.steps), "notices": dict(self.notices), "outcomes": self.outcomes,
                "surges": self.surges, "deals_written": self.deals_written, "errors": list(self.errors)}


def status_text(clock: Mapping[str, Any], now: int) -> str:
    """What a seller reads on the deal: on track, at risk, breached, met, missed, closed."""
    if clock["status"] != OPEN:
        return STATUS_TEXT.get(clock["status"], clock["status"])
    if now >= clock["due_ms"]:
        return "breached"
    return "at risk" if now >= clock["risk_ms"] else "on track"


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SlaEngine:
    def __init__(self, store: Store, config: SlaConfig, *, notifier: Notifier | None = None,
                 writers: Mapping[str, Writer] | None = None, reassigner: Reassigner | None = None,
                 clock: Callable[[], int] = now_ms, lease_ms: int = 120_000, batch: int = 1000,
                 holder: str | None = None, at: Callable[[int], int] | None = None) -> None:
        self.store, self.config, self.notifier = store, config, notifier
        # ``at`` maps an instant the store recorded (hand-off, activity, deal change) onto the SLA's timeline;
        # the identity unless the SLA clock runs faster than the wall clock (trying a policy on the sandbox).
        self.at = at or (lambda ms: ms)
        self._real_time = at is None
        self.writers = dict(writers or {})
        self.reassigner = reassigner
        self.clock = clock
        self.lease_ms, self.batch = lease_ms, batch
        self.ledger = SlaLedger(store, holder)
        self._policies = {p.name: p for p in config.policies}
        self._pretaken: dict[tuple[int, str, int], bool] = {}
        self.surges = SurgeWatch(store, notifier)

    # -- the tick ------------------------------------------------------------------------------------

    def tick(self, now: int | None = None) -> TickReport:
        now = self.clock() if now is None else now
        report = TickReport()
        report.started = self.start(now)
        self.observe(now, report)
        report.breached = self.ledger.mark_breached(now, now)
        self.climb(now, report)
        self.resend(now, report)
        report.deals_written = self.write_deals(now)
        report.surges = self.surges.check(now)
        if report.started or report.settled or report.breached or report.steps:
            log.info("sla.tick", **{k: v for k, v in report.as_dict().items() if v})
        return report

    # -- 1. clocks start -------------------------------------------------------------------------------

    def calendar_of(self, owner_id: str | None, owner_email: str | None, team: str | None,
                    policy: Policy | None = None) -> BusinessCalendar:
        if policy is not None and policy.calendar == "team":
            return self.config.calendar_for(None, None, team)
        return self.config.calendar_for(owner_id, owner_email, team)

    def start(self, now: int) -> int:
        """Clocks for the hand-offs done since the last tick (less an overlap for late commits); the first
        tick looks at every hand-off."""
        started = 0
        mark = self.store.cursors.watermark(*START_CURSOR, lookback_ms=START_OVERLAP_MS)
        since = None if mark is None else mark.since_ms
        newest = 0 if mark is None else mark.timestamp_ms
        while True:
            handoffs = self.ledger.unclocked_handoffs(self.batch, since)
            if handoffs:
                newest = max(newest, *(int(h["done_ms"]) for h in handoffs))
                started += self._start_batch(handoffs, now)
            if len(handoffs) < self.batch:
                self.store.cursors.advance(*START_CURSOR, Watermark(newest, lookback_ms=START_OVERLAP_MS))
                return started

    def _start_batch(self, handoffs: list[dict[str, Any]], now: int) -> int:
        sources = self.ledger.first_sources([h["person_id"] for h in handoffs])
        rows = []
        for h in handoffs:
            rows += self._clock_rows(h, sources.get(int(h["person_id"]), []), now)
        if not rows:  # no policy covers them: remember that by a closed marker clock per hand-off
            rows = [self._marker(h, now) for h in handoffs]
        return self.ledger.insert_clocks(rows)

    def _clock_rows(self, h: Mapping[str, Any], sources: Sequence[str], now: int) -> list[dict[str, Any]]:
        summary = h.get("summary") or {}
        owner_id, email = h.get("owner_id"), summary.get("owner_email")
        team = self.config.team_of(owner_id, email)
        source = next((s for s in sources if s != h["target"]), sources[0] if sources else h["target"])
        rows = []
        for policy in self.config.policies_for(team, owner_id, source, owner_email=email):
            rows.append(self.new_clock(policy, h, start_ms=self.at(int(h["done_ms"])), owner_id=owner_id, email=email,
                                       label=summary.get("owner_label"), team=team, source=source, now=now))
        return rows or [self._marker(h, now)]

    def new_clock(self, policy: Policy, h: Mapping[str, Any], *, start_ms: int, owner_id: str | None,
                  email: str | None, label: str | None, team: str | None, source: str | None, now: int,
                  reassignments: int = 0) -> dict[str, Any]:
        calendar = self.calendar_of(owner_id, email, team, policy)
        clock = SlaClock(calendar)
        due = policy.due_ms(clock, start_ms)
        budget = policy.budget_minutes(clock, start_ms)
        steps = ladder_steps(policy)
        risk_fraction = min((s.fraction for s in steps if s.kind == "remind" and s.fraction), default=0.75)
        risk = clock.due_ms(start_ms, risk_fraction * budget)
        first = _next_step(steps, 0, reassignments, policy)
        return {"handoff_key": h["key"], "generation": int(h.get("generation") or 1), "policy": policy.name,
                "measure": policy.measure, "person_id": int(h["person_id"]), "company_id": h.get("company_id"),
                "target": h["target"], "deal_id": h.get("deal_id"), "owner_id": owner_id, "owner_label": label,
                "owner_email": email, "team": team, "source": source, "calendar": calendar.name,
                "started_ms": start_ms, "risk_ms": risk, "due_ms": due, "budget_minutes": budget, "status": OPEN,
                "breached": False, "reassignments": reassignments, "next_step": first,
                "next_ms": steps[first].due_ms(clock, start_ms, budget) if first < len(steps) else None,
                "updated_ms": now}

    def _marker(self, h: Mapping[str, Any], now: int) -> dict[str, Any]:
        return {"handoff_key": h["key"], "generation": int(h.get("generation") or 1), "policy": "",
                "measure": "none", "person_id": int(h["person_id"]), "company_id": h.get("company_id"),
                "target": h["target"], "deal_id": h.get("deal_id"), "owner_id": h.get("owner_id"),
                "started_ms": self.at(int(h["done_ms"])), "risk_ms": self.at(int(h["done_ms"])),
                "due_ms": self.at(int(h["done_ms"])),
                "budget_minutes": 0.0, "status": CLOSED, "breached": False, "reassignments": 0, "next_step": 0,
                "next_ms": None, "updated_ms": now}

    # -- 2. touches, acceptance and outcomes -----------------------------------------------------------

    def observe(self, now: int, report: TickReport | None = None) -> None:
        report = report or TickReport()
        mark = self.store.cursors.watermark(*CURSOR, lookback_ms=OVERLAP_MS) or Watermark(lookback_ms=OVERLAP_MS)
        since = mark.since_ms
        earliest = self._earliest_live_start()
        newest = mark.timestamp_ms
        if earliest is not None:
            newest = max(newest, self._observe_activities(since, earliest, now, report))
            newest = max(newest, self._observe_deals(since, now, report))
        else:
            newest = max(newest, self._newest_stored())
        self.store.cursors.advance(*CURSOR, mark.advanced(newest))

    def _earliest_live_start(self) -> int | None:
        c = schema.sla_clocks.c
        with self.store.engine.connect() as conn:  # one status at a time: each is one seek in (status, started_ms)
            found = [conn.execute(sa.select(sa.func.min(c.started_ms)).where(c.status == s)).scalar()
                     for s in (OPEN, MET, MISSED)]
        return min((int(f) for f in found if f is not None), default=None)

    def _newest_stored(self) -> int:
        with self.store.engine.connect() as conn:
            a = conn.execute(sa.select(sa.func.max(schema.activities.c.stored_ms))).scalar() or 0
            d = conn.execute(sa.select(sa.func.max(schema.deals.c.stored_ms))).scalar() or 0
        return int(max(a, d))

    def _observe_activities(self, since: int, earliest: int, now: int, report: TickReport) -> int:
        a = schema.activities.c
        kinds = sorted(set(self.config.touches.kinds) | MEETING_KINDS)
        q = (sa.select(a.source, a.kind, a.occurred_ms, a.data, a.stored_ms)
             .where(a.stored_ms >= since, a.archived.is_(False), a.kind.in_(kinds),
                    a.occurred_ms >= (earliest if self._real_time else 0)))
        newest = 0
        touches: list[tuple[str, str, int, list[str], list[str], bool]] = []
        with self.store.engine.connect() as conn:
            for source, kind, occurred, data, stored in conn.execute(q):
                newest = max(newest, int(stored))
                record = orjson.loads(data)
                attributes = record.get("attributes") or {}
                automated = bool(attributes.get("automated")) or record.get("actor") not in (None, "owner")
                touch = self.config.is_touch(kind, record.get("owner_id"), automated)
                if touch or kind in MEETING_KINDS:
                    touches.append((source, kind, self.at(int(occurred)),
                                    [str(p) for p in record.get("person_ids") or ()],
                                    [str(d) for d in record.get("deal_ids") or ()], touch))
        if not touches:
            return newest
        touched = {(s, p) for s, _, _, ps, _, _ in touches for p in ps}
        people = self.store.identities.canonical_ids(EntityType.PERSON, touched)
        events: list[tuple[set[int], set[tuple[str, str]], str, int, bool]] = []
        for source, kind, occurred, person_ids, deal_ids, touch in touches:
            canon = {people[(source, p)] for p in person_ids if (source, p) in people}
            events.append((canon, {(source, d) for d in deal_ids}, kind, occurred, touch))
        clocks = self.ledger.open_clocks_of(person_ids={p for e in events for p in e[0]},
                                            deals={d for e in events for d in e[1]})
        for clock in clocks:
            best: tuple[int, str] | None = None
            for canon, deals, kind, occurred, touch in events:
                # Before the hand-off it is no answer to it; after now it is a plan (a call scheduled for
                # tomorrow), not a touch: when it is done its record changes and it is read again.
                if occurred < clock["started_ms"] or occurred > now:
                    continue
                if clock["person_id"] not in canon and (clock["target"], clock["deal_id"] or "") not in deals:
                    continue
                counts = touch if clock["measure"] == "first_touch" else (
                    kind in MEETING_KINDS if clock["measure"] == "meeting_booked" else False)
                if counts and (best is None or occurred < best[0]):
                    best = (occurred, kind)
            if best is not None:
                report.settled += self._settle(clock, best[0], best[1], now)
        return newest

    def _observe_deals(self, since: int, now: int, report: TickReport) -> int:
        d = schema.deals.c
        newest = 0
        by_deal: dict[tuple[str, str], dict[str, Any]] = {}
        with self.store.engine.connect() as conn:
            q = sa.select(d.source, d.source_id, d.data, d.stored_ms).where(d.stored_ms >= since)
            for source, sid, data, stored in conn.execute(q):
                newest = max(newest, int(stored))
                by_deal[(source, sid)] = orjson.loads(data)
        if not by_deal:
            return newest
        clocks = self.ledger.open_clocks_of(deals=by_deal)
        # A hand-off that reused a deal the lead already had found it in a stage of its own: only a deal made
        # in "Sales-ready leads" says something when it leaves it.
        h = schema.handoffs.c
        keys = sorted({c["handoff_key"] for c in clocks})
        with self.store.engine.connect() as conn:
            reused = set(conn.execute(sa.select(h.key).where(h.key.in_(keys), h.reused.is_(True))).scalars())
        outcomes: list[dict[str, Any]] = []
        for clock in clocks:
            deal = by_deal.get((clock["target"], clock["deal_id"] or ""))
            if deal is None:
                continue
            status = deal.get("status") or "open"
            stage = str(deal.get("stage_id") or "")
            handoff_stage = self._handoff_stage(clock["target"])
            moved_on = bool(handoff_stage) and stage != handoff_stage and clock["handoff_key"] not in reused
            changed = _ms(deal.get("closed_at")) or _ms(deal.get("updated_at"))
            at = self.at(changed) if changed is not None else now
            if status in ("won", "lost"):
                reason = (deal.get("extra") or {}).get("lost_reason") or (deal.get("custom") or {}).get(
                    "lost_reason") or deal.get("lost_reason")
                kind = "won" if status == "won" else ("lost" if moved_on or clock["status"] != OPEN else "rejected")
                outcomes.append(self._outcome(clock, kind, at, reason if status == "lost" else None, now))
                if kind in ("lost", "rejected"):  # back to nurture: handed off again later, as a new generation
                    WritebackLedger(self.store).recycle(clock["handoff_key"], at)
                if clock["status"] == OPEN and clock["measure"] in ("first_touch", "accepted"):
                    report.settled += self._settle(clock, max(at, clock["started_ms"]), kind, now, closed=True)
            elif moved_on:
                outcomes.append(self._outcome(clock, "accepted", at, None, now))
                if clock["status"] == OPEN and (clock["measure"] == "accepted" or (
                        clock["measure"] == "first_touch" and self.config.touches.stage_exit_is_acceptance)):
                    report.settled += self._settle(clock, max(at, clock["started_ms"]), "accepted", now)
        report.outcomes += self.ledger.record_outcomes(outcomes)
        return newest

    def _handoff_stage(self, target: str) -> str | None:
        value = self.store.provisioned.get(target) or {}
        return str(value["stage_id"]) if value.get("stage_id") else None

    def _outcome(self, clock: Mapping[str, Any], kind: str, at: int, reason: str | None, now: int) -> dict[str, Any]:
        return {"handoff_key": clock["handoff_key"], "generation": clock["generation"], "kind": kind,
                "person_id": clock["person_id"], "deal_id": clock["deal_id"], "reason": reason, "at_ms": at,
                "recorded_ms": now}

    def _settle(self, clock: Mapping[str, Any], at: int, by: str, now: int, *, closed: bool = False) -> int:
        """Stop a clock at ``at`` (or move an earlier touch in); 1 when something changed."""
        if clock["status"] != OPEN and (clock["settled_ms"] is None or clock["settled_ms"] <= at):
            return 0
        policy = self._policies.get(clock["policy"])
        calendar = self.calendar_of(clock["owner_id"], clock["owner_email"], clock["team"], policy)
        business = SlaClock(calendar).elapsed(clock["started_ms"], at)
        status = CLOSED if closed else (MET if at <= clock["due_ms"] else MISSED)
        self.ledger.update_clock(clock["id"], status=status, settled_ms=at, settled_by=by,
                                 business_minutes=round(business, 3),
                                 wall_minutes=round((at - clock["started_ms"]) / 60_000, 3),
                                 breached=at > clock["due_ms"], next_ms=None, claimed_by=None, lease_until_ms=None,
                                 updated_ms=now)
        if not closed and by != "accepted" and clock["measure"] in ("first_touch", "meeting_booked"):
            kind = "contacted" if clock["measure"] == "first_touch" else "meeting"
            self.ledger.record_outcomes([self._outcome(clock, kind, at, None, now)])
        return 1

    # -- 4. the ladder ---------------------------------------------------------------------------------

    def climb(self, now: int, report: TickReport) -> None:
        while True:
            due = self.ledger.claim_due(now, self.batch, self.lease_ms)
            # Steps that are only recorded (no channel to send them to) are taken for the whole batch at once;
            # a step to be sent is taken right before it goes, so a kill between the two leaves one step, not a
            # batch, waiting for the resend (by then its clock may have moved on).
            quiet = self.notifier is None or not self.notifier.channels
            self._pretaken = self._pretake(due, now) if quiet else {}
            with self.ledger.batched():  # the clocks' updates in one transaction per batch
                for clock in due:
                    try:
                        self._climb_one(clock, now, report)
                    except Exception as exc:  # one hand-off failing must not stop the others
                        report.errors.append(f"clock {clock['id']}: {type(exc).__name__}: {exc}"[:300])
                        log.error("sla.step_failed", clock=clock["id"], error=type(exc).__name__,
                                  message=str(exc)[:300])
                        self.ledger.update_clock(clock["id"], claimed_by=None, lease_until_ms=None,
                                                 next_ms=now + STEP_RETRY_MS[0])
            if len(due) < self.batch:
                return

    def _climb_one(self, clock: dict[str, Any], now: int, report: TickReport) -> None:
        policy = self._policies.get(clock["policy"])
        if policy is None:  # the policy left the configuration: the clock runs on without a ladder
            self.ledger.update_clock(clock["id"], next_ms=None, claimed_by=None, lease_until_ms=None)
            return
        steps, sla_clock, budget, start = self._ladder(clock, policy)
        i = int(clock["next_step"])
        while i < len(steps):
            step = steps[i]
            due = step.due_ms(sla_clock, start, budget)
            if due > now:
                break
            i = _next_step(steps, i + 1, int(clock["reassignments"]), policy)
            if step.kind == "reassign":
                if self._reassign(clock, step, due, now, report, policy):
                    return  # this clock is closed; the new owner's clock carries on
                continue
            self._notify_step(clock, step, due, now, report, policy, sla_clock)
        next_ms = steps[i].due_ms(sla_clock, start, budget) if i < len(steps) else None
        self.ledger.update_clock(clock["id"], next_step=i, next_ms=next_ms, claimed_by=None, lease_until_ms=None,
                                 updated_ms=now)

    def _ladder(self, clock: Mapping[str, Any], policy: Policy) -> tuple[list[Step], SlaClock, float, int]:
        """A clock's ladder: its steps, its business clock, its SLA in business minutes, and its start."""
        sla_clock = SlaClock(self.calendar_of(clock["owner_id"], clock["owner_email"], clock["team"], policy))
        return ladder_steps(policy), sla_clock, float(clock["budget_minutes"]), int(clock["started_ms"])

    def _pretake(self, clocks: Sequence[Mapping[str, Any]], now: int) -> dict[tuple[int, str, int], bool]:
        """Take the batch's due reminders and escalations (up to any reassignment) in one transaction before
        any is sent: a commit per step made a tick of 1,500 steps wait seconds on the database. Maps each
        planned step to whether this process took it (False: it was taken before, by a restart or a replica)."""
        rows, planned = [], []
        for clock in clocks:
            policy = self._policies.get(clock["policy"])
            if policy is None:
                continue
            steps, sla_clock, budget, start = self._ladder(clock, policy)
            i = int(clock["next_step"])
            while i < len(steps):
                step = steps[i]
                due = step.due_ms(sla_clock, start, budget)
                if due > now or step.kind == "reassign":
                    break
                _, reason, recipient = self._step_text(clock, step, policy, sla_clock, now)
                rows.append({"clock_id": clock["id"], "kind": step.kind, "seq": step.seq, "due_ms": due,
                             "taken_ms": now, "reason": reason, "recipient": recipient})
                planned.append((int(clock["id"]), step.kind, step.seq))
                i = _next_step(steps, i + 1, int(clock["reassignments"]), policy)
        taken = self.ledger.take_steps(rows)
        return {key: key in taken for key in planned}

    def _step_text(self, clock: Mapping[str, Any], step: Step, policy: Policy, sla_clock: SlaClock,
                   now: int) -> tuple[str, str, str | None]:
        """(notice kind, reason, recipient) of a reminder or an escalation."""
        if step.kind == "remind":
            left = sla_clock.left(int(clock["started_ms"]), float(clock["budget_minutes"]), now)
            reason = (f"{_measure_text(policy)} for this lead is due {_when(clock['due_ms'])}: "
                      f"{max(0.0, left):.0f} business minutes left ({step.fraction:.0%} of the SLA used).")
            return "reminder", reason, clock["owner_email"]
        target = policy.ladder.escalate_to or MANAGER
        recipient = self.config.manager_of(clock["team"]) if target == MANAGER else target
        who = clock["owner_label"] or clock["owner_id"] or "nobody (claim mode)"
        reason = (f"{_measure_text(policy)} was due {_when(clock['due_ms'])} and has not happened: "
                  f"the lead is with {who}. Escalated to {recipient or 'the team channel'}.")
        return "escalation", reason, recipient

    def _notify_step(self, clock: Mapping[str, Any], step: Step, due: int, now: int, report: TickReport,
                     policy: Policy, sla_clock: SlaClock) -> None:
        kind, reason, recipient = self._step_text(clock, step, policy, sla_clock, now)
        key = (int(clock["id"]), step.kind, step.seq)
        if key in self._pretaken:
            taken = self._pretaken.pop(key)
        else:
            with self.store.engine.begin() as conn:
                taken = self.ledger.take_step(clock["id"], step.kind, step.seq, due_ms=due, taken_ms=now,
                                              reason=reason, recipient=recipient, conn=conn)
        if not taken:
            return
        report.steps[step.kind] += 1
        self._deliver(clock, step.kind, step.seq, kind, reason, recipient, clock.get("owner_label"), now, report)

    def _deliver(self, clock: Mapping[str, Any], step_kind: str, seq: int, kind: str, reason: str,
                 recipient: str | None, owner_label: str | None, now: int, report: TickReport,
                 done: Iterable[str] = (), attempts: int = 0,
                 expect: tuple[str, str | None] = ("pending", None), note: str | None = None) -> None:
        """Each channel at most once, even across a kill: the channel is recorded as under way before it is
        tried (``begin_delivery``, which also keeps two processes from delivering one step), and a channel so
        recorded is never tried again: a receiver may already hold the message (the notice key lets it
        drop a copy, but a person reads a Slack channel)."""
        if self.notifier is None or not self.notifier.channels:
            self.ledger.step_outcome(clock["id"], step_kind, seq, status=RECORDED, channels=[], attempts=0)
            report.notices["recorded"] += 1
            return
        notice = self._notice(clock, kind, reason, recipient, owner_label, f"{step_kind}-{seq}")
        sent, failed, retryable = set(done), [], True
        lease = now + (self.at(DELIVERY_LEASE_MS) - self.at(0))  # real time, on the SLA's timeline
        for channel in self.notifier.channels_for(notice):
            if channel in sent:
                continue
            if not self.ledger.begin_delivery(clock["id"], step_kind, seq, expect=expect,
                                              channels=sorted(sent | {channel}), lease_until_ms=lease):
                return  # another process holds this step's delivery
            expect = (SENDING, SENDING_BY + self.ledger.holder)
            delivery = self.notifier.deliver_to(notice, channel)
            if delivery.ok:
                sent.add(channel)
            else:
                failed.append(f"{channel}: {delivery.error}")
                retryable = retryable and delivery.retryable
        attempts += 1
        if not failed:
            self.ledger.step_outcome(clock["id"], step_kind, seq, status=SENT, channels=sorted(sent),
                                     attempts=attempts, error=note)
            report.notices["sent"] += 1
            return
        retry = retryable and attempts <= len(STEP_RETRY_MS)
        self.ledger.step_outcome(clock["id"], step_kind, seq, status=RETRY if retry else FAILED,
                                 channels=sorted(sent), attempts=attempts,
                                 next_ms=now + STEP_RETRY_MS[attempts - 1] if retry else None,
                                 error="; ".join(failed)[:500])
        report.notices["retrying" if retry else "failed"] += 1

    def _notice(self, clock: Mapping[str, Any], kind: str, reason: str, recipient: str | None,
                owner_label: str | None, step: str) -> HandoffNotice:
        h = self._handoff(clock["handoff_key"])
        s = h.get("summary") or {}
        return HandoffNotice(
            key=f"{clock['handoff_key']}:{clock['policy']}:{clock['reassignments']}:{step}", crm=clock["target"],
            person_name=s.get("person") or s.get("email") or "unknown", person_email=s.get("email"),
            person_title=s.get("title"), company_name=s.get("company"), company_domain=s.get("domain"),
            score=float(s.get("score") or 0), reasons=tuple(s.get("reasons") or ()), deal_title=h.get("title") or "",
            deal_url=s.get("deal_url"), owner_name=owner_label or clock.get("owner_label"),
            owner_email=clock.get("owner_email"), kind=kind, note=reason, recipient=recipient)

    def _handoff(self, key: str) -> dict[str, Any]:
        h = schema.handoffs.c
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(schema.handoffs).where(h.key == key)).first()
        if row is None:
            return {}
        out = row._asdict()
        out["summary"] = orjson.loads(out["summary"]) if out.get("summary") else {}
        return out

    def resend(self, now: int, report: TickReport) -> None:
        """Notices that failed and may be retried now, steps a killed process recorded but never began to send,
        and deliveries a killed process cut off: their channels not yet begun get the notice, the channel that
        was under way does not (it may have the notice already)."""
        for step in self.ledger.unsent_steps(now, stale_ms=self.lease_ms):
            clocks = self.ledger.clocks(ids=[step["clock_id"]])
            if not clocks:
                continue
            if step["kind"] == "reassign" and step["status"] == "pending" and clocks[0]["status"] != REASSIGNED:
                if clocks[0]["status"] != OPEN:  # settled before the reassignment was carried out: it never will be
                    self.ledger.step_outcome(step["clock_id"], "reassign", step["seq"], status=SKIPPED, channels=[],
                                             attempts=0, error="the clock settled before the reassignment was made")
                continue  # an open clock's reassignment is carried out again by the ladder (``_reassign``)
            kind = {"remind": "reminder", "escalate": "escalation", "reassign": "reassignment"}.get(step["kind"],
                                                                                                  step["kind"])
            done = orjson.loads(step["channels"] or "[]")
            cut = step["status"] == SENDING
            note = (f"delivery cut off by the end of its process; not repeated on {', '.join(done)}, which may "
                    f"have missed it" if cut else None)
            self._deliver(clocks[0], step["kind"], step["seq"], kind, step["reason"], step["recipient"], None, now,
                          report, done=done, attempts=int(step["attempts"]),
                          expect=(step["status"], step["error"] if cut else None), note=note)

    def _reassign(self, clock: dict[str, Any], step: Step, due: int, now: int, report: TickReport,
                  policy: Policy) -> bool:
        if self.reassigner is None:
            return False
        previous = {c["owner_id"] for c in self.ledger.clocks(keys=[clock["handoff_key"]]) if c["owner_id"]}
        chosen = self.reassigner(clock, previous, datetime.fromtimestamp(now / 1000, UTC))
        with self.store.engine.begin() as conn:
            reason = (f"No first touch {_when(clock['due_ms'])} + {step.after_breach_minutes or 0:.0f} business "
                      f"minutes: " + (f"reassigned from {clock['owner_label'] or clock['owner_id']} to "
                                      f"{chosen.label} ({chosen.reason})." if chosen else
                                      "no other seller can take it, so it stays."))
            taken = self.ledger.take_step(clock["id"], "reassign", step.seq, due_ms=due, taken_ms=now, reason=reason,
                                          recipient=chosen.email if chosen else None, conn=conn)
        if not taken:
            # Still pending on a clock still open and now claimed by this process: the process that took it died
            # before the hand-off moved (perhaps after the CRM took the owner), so the reassignment is made again.
            taken = self.ledger.retake_step(clock["id"], "reassign", step.seq, taken_ms=now, reason=reason,
                                            recipient=chosen.email if chosen else None)
        if not taken:
            return False
        if chosen is None:
            self.ledger.step_outcome(clock["id"], "reassign", step.seq, status=SKIPPED, channels=[], attempts=0)
            return False
        writer = self.writers.get(clock["target"])
        if writer is not None and clock["deal_id"]:
            result = writer.write_deals([DealUpdate(str(clock["deal_id"]), {"owner_id": chosen.owner_id})],
                                        self._field_keys(clock["target"]))
            if str(clock["deal_id"]) not in result.written:
                error = "; ".join(result.failed.values()) or "the CRM did not take the new owner"
                self.ledger.step_outcome(clock["id"], "reassign", step.seq, status=FAILED, channels=[], attempts=1,
                                         error=error[:500])
                report.errors.append(f"reassign {clock['handoff_key']}: {error}"[:300])
                return False
        report.steps["reassign"] += 1
        self._move_handoff(clock, chosen, now, policy)
        self._deliver(clock, "reassign", step.seq, "reassignment", reason, chosen.email, chosen.label, now, report)
        return True

    def _move_handoff(self, clock: dict[str, Any], chosen: NewOwner, now: int, policy: Policy) -> None:
        """The old clock closes as reassigned; every open clock of the hand-off moves to the new owner. In one
        transaction: a process killed half-way would leave the old clock open beside the new owner's, and the
        reassignment, made again, would move both."""
        h = schema.handoffs.c
        row = self._handoff(clock["handoff_key"])
        summary = dict(row.get("summary") or {})
        summary.update(owner_label=chosen.label, owner_email=chosen.email)
        team = self.config.team_of(chosen.owner_id, chosen.email)
        fresh, moved = [], []
        for c in self.ledger.clocks(keys=[clock["handoff_key"]], status=OPEN):
            if c["generation"] != clock["generation"]:
                continue
            p = self._policies.get(c["policy"])
            if p is None:
                continue
            fresh.append(self.new_clock(p, {**row, "key": clock["handoff_key"]}, start_ms=now,
                                        owner_id=chosen.owner_id, email=chosen.email, label=chosen.label, team=team,
                                        source=c["source"], now=now, reassignments=int(c["reassignments"]) + 1))
            moved.append(c["id"])
        with self.store.engine.begin() as conn:
            for clock_id in moved:
                self.ledger.update_clock(clock_id, conn, status=REASSIGNED, settled_ms=now, settled_by="reassigned",
                                         next_ms=None, claimed_by=None, lease_until_ms=None, updated_ms=now)
            conn.execute(sa.update(schema.handoffs).where(h.key == clock["handoff_key"]).values(
                owner_id=chosen.owner_id, summary=orjson.dumps(summary).decode(),
                reason=f"{row.get('reason') or ''} → reassigned: {chosen.reason}"[:2000]))
            self.ledger.insert_clocks(fresh, conn)

    # -- 5. the deal shows it ------------------------------------------------------------------------------

    def _field_keys(self, target: str) -> dict[str, str]:
        value = self.store.provisioned.get(target) or {}
        return dict(value.get("field_keys") or {})

    def write_deals(self, now: int) -> int:
        """SLA fields onto deals whose status text changed since they were last written."""
        if not self.writers:
            return 0
        c = schema.sla_clocks.c
        text = sa.case((c.status != OPEN, c.status), (c.due_ms <= now, "breached"), (c.risk_ms <= now, "at risk"),
                       else_="on track")
        q = (sa.select(schema.sla_clocks).where(c.measure == "first_touch", c.status != REASSIGNED,
                                                 c.deal_id.is_not(None), c.target.in_(list(self.writers)),
                                                 sa.or_(c.crm_status.is_(None), c.crm_status != text)))
        written = 0
        with self.store.engine.connect() as conn:
            rows = [r._asdict() for r in conn.execute(q)]
        for target in sorted({r["target"] for r in rows}):
            mine = [r for r in rows if r["target"] == target]
            keys = self._field_keys(target)
            if not keys:  # write-back is not set up in this CRM: there are no fields to write yet
                continue
            for chunk in chunked(mine, 500):
                updates = [DealUpdate(str(r["deal_id"]), _deal_values(r, now)) for r in chunk]
                try:
                    result = self.writers[target].write_deals(updates, keys)
                except Exception as exc:
                    log.error("sla.deal_write_failed", target=target, error=type(exc).__name__,
                              message=str(exc)[:300])
                    break
                ok = set(result.written)
                with self.store.engine.begin() as conn:
                    for r in chunk:
                        if str(r["deal_id"]) in ok:
                            conn.execute(sa.update(schema.sla_clocks).where(c.id == r["id"]).values(
                                crm_status=status_text(r, now)))
                written += len(ok)
        return written


def _deal_values(clock: Mapping[str, Any], now: int) -> dict[str, Any]:
    values: dict[str, Any] = {"sla_due_at": iso(clock["due_ms"]), "sla_status": status_text(clock, now)}
    if clock["settled_ms"] is not None and clock["settled_by"] not in ("won", "lost", "rejected", "reassigned"):
        values["sla_first_touch_at"] = iso(clock["settled_ms"])
        values["sla_business_minutes"] = round(float(clock["business_minutes"] or 0), 1)
    return values


def _next_step(steps: Sequence[Step], i: int, reassignments: int, policy: Policy) -> int:
    """The index of the next step to take; reassignment steps are skipped once the cap is reached."""
    while i < len(steps) and steps[i].kind == "reassign" and reassignments >= policy.ladder.reassign_max:
        i += 1
    return i


def _measure_text(policy: Policy) -> str:
    return {"first_touch": "The first touch", "meeting_booked": "A booked meeting",
            "accepted": "Acceptance"}.get(policy.measure, policy.name)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ms(value: Any) -> int | None:
    if not value:
        return None
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None
