"""Sellers at work in the sandbox's Pipedrive: calls and e-mails logged, deals moved on, won or lost.

Everything goes through ``PipedriveState``'s write methods with ``change_source`` "app" (what a seller
does in Pipedrive's web app), so webhooks go out as they would. The same seed does the same things
to the same account. Pipedrive is the sales CRM here: sales-ready leads come from the marketing CRM,
so a request for them is answered with none and a note saying why.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crmbridge_pipedrive.sandbox.render import LOST_REASONS
from crmbridge_pipedrive.sandbox.state import PipedriveState

APP = "app"
MAX_ACTIVITIES = 100_000
ON_A_DEAL = 0.6  # share of logged activities that are about an open deal (the rest: about a person)
WIN, LOSE, MOVE = 0.10, 0.18, 0.50  # cumulative chances for a worked deal: won, lost, moved one stage on
NOTE = ("Pipedrive is the sales CRM: sales-ready leads reach it from the marketing CRM (hand-off), so "
        "sales_ready is ignored here")


@dataclass
class Outcome:
    activity_ids: list[int] = field(default_factory=list)
    stage_moves: list[int] = field(default_factory=list)
    won: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"sales_ready": [], "activities": len(self.activity_ids), "activity_ids": self.activity_ids,
                "stage_moves": self.stage_moves, "won": self.won, "lost": self.lost, "note": NOTE}


def count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ACTIVITIES:
        raise ValueError(f"{name} must be a whole number from 0 to {MAX_ACTIVITIES}")
    return value


class SellerSimulator:
    """Picks what sellers do from a seeded random source and does it through the state."""

    def __init__(self, state: PipedriveState, seed: int) -> None:
        self.state = state
        self.rng = random.Random(seed)
        self.outcome = Outcome()

    def run(self, activities: int) -> dict[str, Any]:
        with self.state.lock:
            deals = [self.state.tables["deals"].rows[i] for i in self.state.live_ids("deals")]
            open_deals = [d["id"] for d in deals if d.get("status") == "open"]
            persons = self.state.live_ids("persons")
        worked: list[int] = []
        for _ in range(activities):
            deal = self.rng.choice(open_deals) if open_deals and self.rng.random() < ON_A_DEAL else None
            if deal is not None:
                self._log_on_deal(deal)
                worked.append(deal)
            elif persons:
                self._log_on_person(self.rng.choice(persons))
        for deal in dict.fromkeys(worked):
            self._progress(deal)
        return self.outcome.as_dict()

    def _log(self, owner: Any, person: Mapping[str, Any] | None, deal: Mapping[str, Any] | None) -> None:
        now = self.state.now()
        kind = self.rng.choice(("call", "email"))
        name = (person or {}).get("name") or (deal or {}).get("title") or "a contact"
        subject = f"Call with {name}" if kind == "call" else f"E-mail to {name}"
        person_id = (person or {}).get("id")
        body = {"subject": subject, "type": kind, "owner_id": owner, "creator_user_id": owner, "done": True,
                "marked_as_done_time": now, "due_date": now[:10], "due_time": now[11:16],
                "duration": f"00:{self.rng.randint(5, 45):02d}" if kind == "call" else "",
                "person_id": person_id, "org_id": (person or deal or {}).get("org_id"),
                "deal_id": (deal or {}).get("id"),
                "participants": [{"person_id": person_id, "primary": True}] if person_id else []}
        made = self.state.create("activities", body, source=APP, user_id=owner)
        self.outcome.activity_ids.append(made["id"])

    def _log_on_deal(self, deal_id: int) -> None:
        deal = self.state.get("deals", deal_id)
        if deal is None:
            return
        person = self.state.get("persons", deal["person_id"]) if deal.get("person_id") else None
        self._log(deal.get("owner_id"), person, deal)

    def _log_on_person(self, person_id: int) -> None:
        person = self.state.get("persons", person_id)
        if person is not None:
            self._log(person.get("owner_id"), person, None)

    def _progress(self, deal_id: int) -> None:
        deal = self.state.get("deals", deal_id)
        if deal is None or deal.get("status") != "open":
            return
        roll, now, owner = self.rng.random(), self.state.now(), deal.get("owner_id")
        if roll < WIN:
            self.state.update("deals", deal_id, {"status": "won", "won_time": now, "close_time": now},
                              source=APP, user_id=owner)
            self.outcome.won.append(deal_id)
        elif roll < LOSE:
            self.state.update("deals", deal_id, {"status": "lost", "lost_time": now, "close_time": now,
                                                 "lost_reason": self.rng.choice(LOST_REASONS)},
                              source=APP, user_id=owner)
            self.outcome.lost.append(deal_id)
        elif roll < MOVE:
            later = self._next_stage(deal)
            if later is not None:
                self.state.update("deals", deal_id, {"stage_id": later, "stage_change_time": now}, source=APP,
                                  user_id=owner)
                self.outcome.stage_moves.append(deal_id)

    def _next_stage(self, deal: Mapping[str, Any]) -> int | None:
        with self.state.lock:
            stages = sorted((s for s in self.state.tables["stages"].rows.values()
                             if s.get("pipeline_id") == deal.get("pipeline_id") and not s.get("is_deleted")),
                            key=lambda s: (s.get("order_nr") or 0, s["id"]))
        ids = [s["id"] for s in stages]
        if deal.get("stage_id") not in ids:
            return None
        at = ids.index(deal["stage_id"])
        return ids[at + 1] if at + 1 < len(ids) else None
