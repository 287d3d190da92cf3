"""Sellers answering hand-offs in the sandbox's Pipedrive.

The decisions come from ``crmbridge.sandbox.sellers``; this module finds the open deals in a stage named
like write-back's hand-off stage and carries the steps out through ``PipedriveState`` with
``change_source`` "app", as the deal's owner: done activities (call, email, meeting) whose due date and
time and ``marked_as_done_time`` are the simulated instant, then the deal moved to the next stage, won,
or lost with a ``lost_reason``. Pipedrive holds no marketing behaviour, so a surge is answered with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from crmbridge.sandbox.sellers import (
    HANDOFF_STAGE,
    DealPlan,
    HandoffDeal,
    SellerLedger,
    SellerRequest,
    Step,
    work_until,
)
from crmbridge_pipedrive.sandbox.state import PipedriveState

APP = "app"
SURGE_NOTE = ("Pipedrive is the sales CRM and holds no marketing behaviour (page views, downloads, e-mail "
              "opens), so surge is ignored here")
DURATION = {"call": "00:07", "email": "", "meeting": "00:30"}


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)


class PipedriveSalesDesk:
    """The hand-off deals of the account and the sellers' hands on them (a ``SalesDesk``)."""

    def __init__(self, state: PipedriveState) -> None:
        self.state = state
        self.ledger = SellerLedger()

    def reset(self, state: PipedriveState) -> None:
        self.state = state
        self.ledger.reset()

    def work(self, request: SellerRequest) -> dict[str, Any]:
        with self.state.lock:
            return work_until(self, self.ledger, request)

    def _stages(self) -> list[dict[str, Any]]:
        """Every pipeline's stages, in order (``order_nr``, then id), without deleted ones."""
        return sorted((s for s in self.state.tables["stages"].rows.values() if not s.get("is_deleted")),
                      key=lambda s: (s.get("pipeline_id") or 0, s.get("order_nr") or 0, s["id"]))

    def _handoff_stages(self) -> set[int]:
        wanted = HANDOFF_STAGE.strip().lower()
        return {s["id"] for s in self._stages() if str(s.get("name", "")).strip().lower() == wanted}

    # -- SalesDesk ---------------------------------------------------------------------------------

    def handoff_deals(self) -> Sequence[HandoffDeal]:
        stages = self._handoff_stages()
        if not stages:
            return []
        deals = self.state.tables["deals"]
        out = []
        for deal_id in self.state.live_ids("deals"):
            deal = deals.rows[deal_id]
            if deal.get("status") == "open" and deal.get("stage_id") in stages:
                owner = deal.get("owner_id")
                user = self.state.users.get(owner) or {}
                out.append(HandoffDeal(str(deal_id), str(owner) if owner is not None else None, user.get("email"),
                                       user.get("timezone_name"), _parse(deal["add_time"])))
        return out

    def carry_out(self, plan: DealPlan, step: Step) -> dict[str, Any] | None:
        deal = self.state.get("deals", int(plan.deal))
        if deal is None or deal.get("is_deleted") or deal.get("status") != "open":
            return None
        owner = int(plan.owner)
        if step.action in ("touch", "meeting"):
            return self._log(deal, owner, step)
        at = _stamp(step.at)
        if step.action == "accept":
            later = self._next_stage(deal)
            if later is None:
                return {"skipped": "already out of the hand-off stage"}
            self.state.update("deals", deal["id"], {"stage_id": later, "stage_change_time": at}, source=APP,
                              user_id=owner)
            return {"stage_id": later}
        if step.action == "won":
            changes = {"status": "won", "won_time": at, "close_time": at}
        else:  # lost, rejected
            changes = {"status": "lost", "lost_time": at, "close_time": at, "lost_reason": step.reason}
        self.state.update("deals", deal["id"], changes, source=APP, user_id=owner)
        return {"status": changes["status"]}

    def _next_stage(self, deal: dict[str, Any]) -> int | None:
        """The stage after the hand-off stage in the deal's pipeline (or the first other one)."""
        if deal.get("stage_id") not in self._handoff_stages():
            return None
        ids = [s["id"] for s in self._stages() if s.get("pipeline_id") == deal.get("pipeline_id")]
        at = ids.index(deal["stage_id"]) if deal["stage_id"] in ids else -1
        later = ids[at + 1:] or [i for i in ids if i != deal["stage_id"]]
        return later[0] if later else None

    def _log(self, deal: dict[str, Any], owner: int, step: Step) -> dict[str, Any]:
        kind = "meeting" if step.action == "meeting" else step.channel or "call"
        person = self.state.get("persons", deal["person_id"]) if deal.get("person_id") else None
        name = (person or {}).get("name") or deal.get("title") or "the lead"
        subject = {"call": f"Call with {name}", "email": f"E-mail to {name}",
                   "meeting": f"Discovery meeting with {name}"}[kind]
        at = _stamp(step.at)
        person_id = (person or {}).get("id")
        body = {"subject": subject, "type": kind, "owner_id": owner, "creator_user_id": owner, "done": True,
                "marked_as_done_time": at, "due_date": at[:10], "due_time": at[11:16], "duration": DURATION[kind],
                "person_id": person_id, "org_id": deal.get("org_id"), "deal_id": deal["id"],
                "participants": [{"person_id": person_id, "primary": True}] if person_id else []}
        made = self.state.create("activities", body, source=APP, user_id=owner)
        return {"activity_id": str(made["id"]), "type": kind}
