"""``WriteBack``: setup, hand-offs, the person write plan and its application, and the notification outbox.

One pass: hand off new SQLs first (so the hand-off time and owner go out with the same person
update), then plan every person's fields against the ledger, then write the plan in batches, then
deliver due notifications. ``dry_run`` computes and reports all of it and writes nothing anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmbridge.connectors import Capabilities, capabilities
from crmbridge.errors import ConfigError
from crmbridge.logs import get_logger
from crmbridge.model import LifecycleStage
from crmbridge.notify import HandoffNotice, Notifier
from crmbridge.rescore import utc_now
from crmbridge.routing import OwnerRouter
from crmbridge.store.cursors import Watermark
from crmbridge.store.handoffs import WritebackLedger, iter_scores
from crmbridge.store.store import Store
from crmbridge.writeback.config import HandoffConfig
from crmbridge.writeback.contract import CLEAR, PersonUpdate, Provisioned, ProvisionSpec, Writer
from crmbridge.writeback.handoff import HandoffReport, HandoffRunner
from crmbridge.writeback.plan import WritePlan, desired_values, latest_outcome, plan_person

log = get_logger("crmbridge.writeback")

PLAN_SOURCE, PLAN_STREAM, PLAN_KIND = "crmbridge", "_writeback", "plan"
# Each pass also looks at what changed shortly before the last one started (clocks of several
# replicas differ a little, and a score stored during the last pass must not be missed).
PLAN_OVERLAP_MS = 120_000
RETRY_BACKOFF_MS = (60_000, 300_000, 1_800_000, 7_200_000)


@dataclass
class ApplyReport:
    written: dict[str, int] = field(default_factory=dict)
    failed: dict[str, dict[str, str]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)


@dataclass
class WriteBackReport:
    handoffs: HandoffReport
    plan: WritePlan
    applied: ApplyReport | None
    notifications: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "handoffs": [o.as_dict() for o in self.handoffs.outcomes],
            "handoffs_held_elsewhere": self.handoffs.skipped_claimed,
            "plan": self.plan.as_dict(),
            "notifications": self.notifications,
        }
        if self.applied is not None:
            out["applied"] = {"written": self.applied.written, "failed": self.applied.failed,
                              "calls": self.applied.calls}
        return out


class WriteBack:
    """Write-back to the CRMs of ``writers``; what each CRM is like (its label, whether its lifecycle
    stage only moves forward, its rank as hand-off target) comes from ``capabilities``, by default what
    each source's installed plugin declares."""

    def __init__(self, store: Store, writers: Mapping[str, Writer], config: HandoffConfig, router: OwnerRouter,
                 notifier: Notifier | None = None, clock: Callable[[], datetime] = utc_now,
                 webhook: Mapping[str, str | None] | None = None,
                 capabilities: Mapping[str, Capabilities] | None = None) -> None:
        self.store, self.writers, self.config, self.router = store, dict(writers), config, router
        self.capabilities = dict(capabilities) if capabilities is not None else _declared(self.writers)
        self.notifier = notifier
        self.clock = clock
        self.ledger = WritebackLedger(store, clock=self.now_ms)
        self.webhook = dict(webhook or {})
        self.overlap_ms = PLAN_OVERLAP_MS

    def now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    # -- setup -----------------------------------------------------------------------------------

    def spec(self, source: str) -> ProvisionSpec:
        return ProvisionSpec(pipeline=self.config.pipelines.get(source), stage=self.config.stage,
                             webhook_url=self._webhook_url(source), webhook_user=self.webhook.get("user"),
                             webhook_password=self.webhook.get("password"))

    def _webhook_url(self, source: str) -> str | None:
        base = self.webhook.get("url")
        return f"{base.rstrip('/')}/webhooks/{source}" if base else None

    def setup(self, *, dry_run: bool = False) -> dict[str, Provisioned]:
        out = {}
        for source, writer in self.writers.items():
            result = writer.provision(self.spec(source), dry_run=dry_run)
            if not dry_run:
                self.store.provisioned.put(source, result.as_dict())
            out[source] = result
            log.info("writeback.setup", source=source, changed=result.changed, dry_run=dry_run)
        return out

    def provisioned(self) -> dict[str, Provisioned]:
        out = {}
        for source in self.writers:
            value = self.store.provisioned.get(source)
            if value is None or not value.get("stage_id"):
                raise ConfigError(f"write-back to {source} is not set up yet: run `crmbridge setup` first",
                                  key="crmbridge setup")
            out[source] = Provisioned(str(value["pipeline_id"]), str(value["stage_id"]), (),
                                      dict(value.get("field_keys") or {}))
        return out

    def is_set_up(self) -> bool:
        return all(self.store.provisioned.get(s) for s in self.writers)

    # -- one pass ----------------------------------------------------------------------------------

    def run(self, *, dry_run: bool = False, full: bool = False) -> WriteBackReport:
        """One pass. It plans the people changed since the last pass (score, hand-off, CRM record or
        identity), or everyone with ``full`` or when no pass has completed yet."""
        provisioned = self.provisioned()
        runner = HandoffRunner(self.store, self.writers, provisioned, self.config, self.router, self.clock,
                               list(self.writers), ranks=self._ranks())
        handoffs = runner.run(dry_run=dry_run)
        if not dry_run and self.notifier is not None and self.notifier.channels:
            done = [o.key for o in handoffs.outcomes if o.action in ("created", "reused", "recovered")]
            for row in self.ledger.handoffs(keys=done):
                self.ledger.enqueue(row["key"], list(self.notifier.channels_for(self.notice(row))))
        mark = None if full else self.store.cursors.watermark(PLAN_SOURCE, PLAN_STREAM, PLAN_KIND,
                                                              lookback_ms=self.overlap_ms)
        since = None if mark is None else mark.since_ms
        started = self.now_ms()  # what is stored before this moment is in this plan (or, in flight, in the overlap)
        plan = self.plan(since)
        applied = None if dry_run else self.apply(plan, provisioned)
        if applied is not None:
            # A record the CRM rejected is tried again by the next full pass (the daemon makes one a day).
            self.store.cursors.advance(PLAN_SOURCE, PLAN_STREAM, PLAN_KIND,
                                       Watermark(started, lookback_ms=self.overlap_ms))
        notified = {} if dry_run else self.deliver_notifications()
        return WriteBackReport(handoffs, plan, applied, notified)

    def plan(self, since_ms: int | None = None) -> WritePlan:
        """The writes that bring every CRM person in line with the store (or those changed since a moment)."""
        plan = WritePlan(batch_sizes={s: w.batch_size for s, w in self.writers.items()})
        people = None if since_ms is None else self.ledger.people_changed_since(since_ms)
        plan.full = people is None
        if people is not None and not people:
            return plan
        handoffs = {h["person_id"]: h for h in self.ledger.handoffs(status="done")}
        for rows in iter_scores(self.store, person_ids=people):
            plan.considered += len(rows)
            records = self.ledger.person_records([int(r["person_id"]) for r in rows])
            outcomes = self.ledger.outcomes_of([int(r["person_id"]) for r in rows])
            for source in self.writers:
                mine = [(records[int(r["person_id"])][source], r) for r in rows
                        if source in records.get(int(r["person_id"]), {})]
                if not mine:
                    continue
                held = self.ledger.held(source, "person", [sid for (sid, _), _ in mine])
                for (sid, crm_stage), row in mine:
                    handoff = _handoff_view(handoffs.get(int(row["person_id"])))
                    desired = desired_values(row, handoff, self.config.write, self.config.reasons_in_summary,
                                             latest_outcome(outcomes.get(int(row["person_id"]), [])))
                    change = plan_person(source, sid, int(row["person_id"]), row.get("email"), desired,
                                         held.get(sid, {}), _stage(crm_stage), forward_only=self._forward_only(source))
                    if change is not None:
                        plan.changes.append(change)
        return plan

    def apply(self, plan: WritePlan, provisioned: Mapping[str, Provisioned]) -> ApplyReport:
        report = ApplyReport()
        for source, changes in plan.by_source().items():
            writer, keys = self.writers[source], provisioned[source].field_keys
            calls = 0
            clears = [PersonUpdate(c.source_id, {"lifecycle_stage": CLEAR}) for c in changes if c.clear_first]
            if clears:
                calls += writer.write_people(clears, keys).calls
            result = writer.write_people([PersonUpdate(c.source_id, c.values) for c in changes], keys)
            calls += result.calls
            accepted = set(result.written)
            self.ledger.record_written(source, "person", [(c.source_id, c.person_id, c.values) for c in changes
                                                          if c.source_id in accepted])
            report.written[source] = len(accepted)
            report.failed[source] = dict(result.failed)
            report.calls[source] = calls
            log.info("writeback.applied", source=source, written=len(accepted), failed=len(result.failed),
                     calls=calls)
        return report

    # -- notifications ---------------------------------------------------------------------------

    def deliver_notifications(self) -> dict[str, int]:
        counts = {"sent": 0, "failed": 0, "retrying": 0}
        if self.notifier is None:
            return counts
        due = self.ledger.due_notifications()
        if not due:
            return counts
        handoffs = {h["key"]: h for h in self.ledger.handoffs(keys=sorted({d["handoff_key"] for d in due}))}
        for item in due:
            handoff = handoffs.get(item["handoff_key"])
            if handoff is None:
                continue
            delivery = self.notifier.deliver_to(self.notice(handoff), item["channel"])
            rounds = int(item["attempts"]) + 1  # outbox rounds; each round retries within its own bounds
            retry_at = None
            if not delivery.ok and delivery.retryable and rounds <= len(RETRY_BACKOFF_MS):
                wait_ms = max(RETRY_BACKOFF_MS[rounds - 1], int((delivery.retry_after or 0) * 1000))
                retry_at = self.now_ms() + wait_ms
            self.ledger.notification_outcome(item["handoff_key"], item["channel"], sent=delivery.ok,
                                             attempts=1, error=delivery.error, retry_at_ms=retry_at)
            counts["sent" if delivery.ok else ("retrying" if retry_at else "failed")] += 1
        return counts

    # -- what each CRM declares --------------------------------------------------------------------

    def _caps(self, source: str) -> Capabilities:
        return self.capabilities.get(source) or Capabilities(label=source)

    def _forward_only(self, source: str) -> bool:
        return self._caps(source).lifecycle_forward_only

    def _ranks(self) -> dict[str, int]:
        return {source: self._caps(source).handoff_rank for source in self.writers}

    def notice(self, handoff: Mapping[str, Any]) -> HandoffNotice:
        return notice_of(handoff, self._caps(handoff["target"]).label)


def _declared(sources: Mapping[str, Any]) -> dict[str, Capabilities]:
    return {source: capabilities(source) for source in sources}


def _stage(value: str | None) -> LifecycleStage | None:
    try:
        return LifecycleStage(value) if value else None
    except ValueError:
        return None


def _handoff_view(handoff: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if handoff is None:
        return None
    summary = handoff.get("summary") or {}
    owner = summary.get("owner_label") or handoff.get("owner_id") or "to claim"
    rule = handoff.get("rule")
    return {"done_ms": handoff.get("done_ms"), "owner_label": f"{owner} ({rule})" if rule else owner}


def notice_of(handoff: Mapping[str, Any], crm_label: str | None = None) -> HandoffNotice:
    """The notification of a hand-off; ``crm_label`` names the target CRM as people read it."""
    s = handoff.get("summary") or {}
    return HandoffNotice(
        person_name=s.get("person") or s.get("email") or "unknown", person_email=s.get("email"),
        person_title=s.get("title"),
        company_name=s.get("company"), company_domain=s.get("domain"), score=float(s.get("score") or 0),
        stage="SQL", reasons=tuple(s.get("reasons") or ()), deal_title=handoff.get("title") or "",
        deal_url=s.get("deal_url"), owner_name=s.get("owner_label") or "unassigned", owner_email=s.get("owner_email"),
        claim=handoff.get("mode") == "claim", crm=crm_label or handoff["target"],
        key=handoff["key"])
