"""Account intent surges: the moment an account's buying interest rises, its owner is told once.

The ABM roll-up flags an account whose score rose by the model's amount within its window. A surge is
identified by its company and its baseline (the low point it rose from), which every replica computes
alike, so inserting that row is what entitles a process to send the notice: once per surge. The surge
ends when the flag drops; a later rise is a new surge with a new baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from crmbridge.logs import get_logger
from crmbridge.model import Company, EntityType, Owner
from crmbridge.notify.notice import HandoffNotice
from crmbridge.notify.notifier import Notifier
from crmbridge.store import schema
from crmbridge.store.store import Store

log = get_logger("crmbridge.sla")

TOP_PEOPLE = 5


class SurgeWatch:
    def __init__(self, store: Store, notifier: Notifier | None = None) -> None:
        self.store, self.notifier = store, notifier

    def check(self, now: int) -> int:
        """Record and announce new surges, close ended ones; returns how many were announced."""
        a, s = schema.account_scores.c, schema.surges.c
        with self.store.engine.connect() as conn:
            surging = {int(cid): (float(score), orjson.loads(data)) for cid, score, data in conn.execute(
                sa.select(a.company_id, a.score, a.data).where(a.surge.is_(True)))}
            running = {(int(r.company_id), int(r.at_ms)): orjson.loads(r.detail or "{}") for r in conn.execute(
                sa.select(s.company_id, s.at_ms, s.detail))}
        self._end(running, surging, now)
        still = {cid for (cid, _), d in running.items() if not d.get("ended_ms")}
        fresh = []
        for cid, (score, data) in surging.items():
            if cid in still:  # the same surge, its baseline moved as the window slid: told once already
                continue
            baseline = (data.get("surge") or {}).get("baseline") or {}
            if not baseline.get("at"):
                continue
            at = int(datetime.fromisoformat(baseline["at"]).timestamp() * 1000)
            if (cid, at) not in running:
                fresh.append((cid, at, float(baseline.get("score") or 0.0), score, data))
        if not fresh:
            return 0
        companies = self.store.identities.members(EntityType.COMPANY, [cid for cid, *_ in fresh])
        people = self.store.scores.company_people([cid for cid, *_ in fresh])
        owners = self._owners()
        announced = 0
        for cid, at, before, score, data in fresh:
            company = next((c for c in companies.get(cid) or [] if isinstance(c, Company)), None)
            owner = owners.get((company.source, company.owner_id)) if company and company.owner_id else None
            top = sorted(people.get(cid) or [], key=lambda p: -float(p[1] or 0))[:TOP_PEOPLE]
            detail = {"company": (company.name or company.domain) if company else f"company {cid}",
                      "domain": company.domain if company else None,
                      "owner_label": owner[0] if owner else None, "owner_email": owner[1] if owner else None,
                      "people": [f"{p[0]} ({float(p[1] or 0):.0f} engagement)" for p in top if p[0]],
                      "reason": (data.get("surge") or {}).get("reason")}
            if not self._insert(cid, at, before, score, company.owner_id if company else None, detail, now):
                continue  # another replica announced it
            announced += 1
            self._announce(cid, at, detail, before, score, now)
        return announced

    def _insert(self, cid: int, at: int, before: float, score: float, owner_id: str | None,
                detail: Mapping[str, Any], now: int) -> bool:
        stmt = self.store._insert(schema.surges).on_conflict_do_nothing(index_elements=["company_id", "at_ms"])
        row = {"company_id": cid, "at_ms": at, "score_before": before, "score_now": score, "owner_id": owner_id,
               "detail": orjson.dumps({**detail, "noticed_ms": now}).decode(), "notified_ms": None}
        with self.store.engine.begin() as conn:
            return bool(conn.execute(stmt.returning(schema.surges.c.company_id), [row]).all())

    def _announce(self, cid: int, at: int, detail: Mapping[str, Any], before: float, score: float, now: int) -> None:
        note = (f"Buying interest is rising at {detail['company']}: account score {before:.0f} → {score:.0f}. "
                f"{detail.get('reason') or ''} People behind it: {', '.join(detail['people']) or 'none named'}.")
        if self.notifier is None or not self.notifier.channels:
            self._notified(cid, at, now)
            return
        notice = HandoffNotice(key=f"surge-{cid}-{at}", crm="", person_name=str(detail["company"]),
                               company_domain=detail.get("domain"), score=score, deal_title="",
                               owner_name=detail.get("owner_label"), owner_email=detail.get("owner_email"),
                               kind="surge", note=note, recipient=detail.get("owner_email"))
        deliveries = self.notifier.deliver(notice)
        if all(d.ok for d in deliveries):
            self._notified(cid, at, now)
        else:
            log.warning("sla.surge_notice_failed", company=cid, errors=[d.error for d in deliveries if not d.ok])

    def _notified(self, cid: int, at: int, now: int) -> None:
        s = schema.surges.c
        with self.store.engine.begin() as conn:
            conn.execute(sa.update(schema.surges).where(s.company_id == cid, s.at_ms == at).values(notified_ms=now))

    def _end(self, running: Mapping[tuple[int, int], dict[str, Any]], surging: Mapping[int, Any], now: int) -> None:
        s = schema.surges.c
        ended = [(cid, at, d) for (cid, at), d in running.items() if cid not in surging and not d.get("ended_ms")]
        if not ended:
            return
        with self.store.engine.begin() as conn:
            for cid, at, d in ended:
                conn.execute(sa.update(schema.surges).where(s.company_id == cid, s.at_ms == at).values(
                    detail=orjson.dumps({**d, "ended_ms": now}).decode()))

    def _owners(self) -> dict[tuple[str, str], tuple[str, str | None]]:
        out = {}
        for o in self.store.records.iter(EntityType.OWNER, live_only=False):
            if isinstance(o, Owner):
                name = " ".join(p for p in (o.first_name, o.last_name) if p) or o.email or o.source_id
                out[(o.source, o.source_id)] = (name, o.email)
        return out
