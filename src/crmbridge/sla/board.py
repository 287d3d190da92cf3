"""The dashboard's figures from the store: open SLA clocks with business time left, per-owner figures over
the last 30 days, the funnel from lead to won deal, and account surges."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.dashboard.model import Funnel, HandoffRow, OwnerFigures, Snapshot, SurgeRow, status_of
from crmbridge.sla.calendar import SlaClock
from crmbridge.sla.config import SlaConfig
from crmbridge.sla.ledger import MET, MISSED, OPEN, SlaLedger
from crmbridge.sla.report import sla_report
from crmbridge.store import schema
from crmbridge.store.store import Store, now_ms

BOARD_ROWS = 200  # open clocks shown, the nearest to their due instant first
RECENT_MS = 3_600_000  # clocks settled in the last hour stay on the board, as met
FIGURES_WINDOW_MS = 30 * 86_400_000


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class StoreSnapshot:
    """A ``SnapshotSource`` over the store; ``clock`` is the SLA's clock (the demo runs it fast)."""

    def __init__(self, store: Store, config: SlaConfig, clock: Callable[[], int] = now_ms) -> None:
        self.store, self.config, self.clock = store, config, clock
        self.ledger = SlaLedger(store)
        self._policies = {p.name: p for p in config.policies}

    def snapshot(self) -> Snapshot:
        now = self.clock()
        clocks = self.ledger.clocks(status=OPEN, limit=BOARD_ROWS)
        clocks += [c for c in self.ledger.clocks(status=(MET, MISSED), order="settled_ms")
                   if c["settled_ms"] is not None and c["settled_ms"] >= now - RECENT_MS][-50:]
        counts = self.ledger.step_counts([c["id"] for c in clocks])
        handoffs = self._handoffs([c["handoff_key"] for c in clocks])
        rows = [self._row(c, handoffs.get(c["handoff_key"], {}), counts.get(c["id"], {}), now) for c in clocks]
        return Snapshot(generated_at=_at(now), rows=rows, owners=self._owners(now), funnel=self._funnel(),
                        surges=self._surges())

    def _row(self, clock: dict[str, Any], handoff: dict[str, Any], steps: dict[str, int], now: int) -> HandoffRow:
        summary = handoff.get("summary") or {}
        policy = self._policies.get(clock["policy"])
        calendar = self.config.calendar_for(None, None, clock["team"]) if policy and policy.calendar == "team" \
            else self.config.calendar_for(clock["owner_id"], clock["owner_email"], clock["team"])
        sla = SlaClock(calendar)
        budget = float(clock["budget_minutes"]) or 1.0
        end = now if clock["status"] == OPEN else int(clock["settled_ms"])
        used = sla.elapsed(int(clock["started_ms"]), end)
        status = status_of(100 * used / budget, paused=clock["status"] == OPEN and sla.paused(now),
                           met=clock["status"] == MET)
        if clock["status"] == MISSED:
            status = "breached"
        return HandoffRow(key=clock["handoff_key"], person=summary.get("person") or summary.get("email") or "unknown",
                          email=summary.get("email"), company=summary.get("company"),
                          owner=clock["owner_label"] or clock["owner_id"] or "to claim", team=clock["team"],
                          source=clock["source"], policy=clock["policy"], started_at=_at(int(clock["started_ms"])),
                          due_at=_at(int(clock["due_ms"])), business_minutes_left=round(budget - used, 1),
                          used_pct=round(100 * used / budget, 1), status=status, reminders=steps.get("remind", 0),
                          reassignments=int(clock["reassignments"]), deal_url=summary.get("deal_url"))

    def _handoffs(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        h = schema.handoffs.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(h.key, h.summary).where(h.key.in_(sorted(set(keys))))).all()
        return {key: {"summary": orjson.loads(summary) if summary else {}} for key, summary in rows}

    def _owners(self, now: int) -> list[OwnerFigures]:
        report = sla_report(self.store, now_ms=now, since_ms=now - FIGURES_WINDOW_MS, by="owner")
        return [OwnerFigures(owner=name, open=g["open"], at_risk=g["at_risk"], breached=g["breaches"],
                             handoffs=g["handoffs"], p50_minutes=g["p50_minutes"], within_sla_pct=g["within_sla_pct"])
                for name, g in report["groups"].items()]

    def _funnel(self) -> Funnel:
        stages = self.store.scores.stage_counts()
        h, o = schema.handoffs.c, schema.outcomes.c
        with self.store.engine.connect() as conn:
            handoffs = int(conn.execute(sa.select(sa.func.count()).where(h.status == "done")).scalar() or 0)
            kinds = dict(conn.execute(sa.select(o.kind, sa.func.count(sa.distinct(o.handoff_key)))
                                      .group_by(o.kind)).all())
        return Funnel(leads=int(stages.get("lead", 0)), mqls=int(stages.get("mql", 0)), sqls=int(stages.get("sql", 0)),
                      handoffs=handoffs, touched=int(kinds.get("contacted", 0) + kinds.get("accepted", 0)),
                      meetings=int(kinds.get("meeting", 0)), won=int(kinds.get("won", 0)),
                      lost=int(kinds.get("lost", 0) + kinds.get("rejected", 0)))

    def _surges(self) -> list[SurgeRow]:
        s = schema.surges.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.surges).order_by(s.at_ms.desc()).limit(20)).all()
        out = []
        for r in rows:
            detail = orjson.loads(r.detail or "{}")
            out.append(SurgeRow(company=detail.get("company") or f"company {r.company_id}",
                                owner=detail.get("owner_label") or r.owner_id, score_before=float(r.score_before),
                                score_now=float(r.score_now), people=list(detail.get("people") or []), at=_at(r.at_ms)))
        return out
