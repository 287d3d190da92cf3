"""What sales said about each person, from the store: the hand-off outcomes the SLA engine recorded, and
deals won or lost in the CRMs. Calibration and backtests measure a scoring model against it."""

from __future__ import annotations

import sqlalchemy as sa

from crmbridge.model import Deal, DealStatus, EntityType
from crmbridge.scoring.calibrate import Outcome
from crmbridge.store import Store, schema

# A hand-off's recorded outcome as calibration reads it; a first touch alone says nothing about the lead.
HANDOFF_OUTCOMES = {"won": Outcome.WON, "lost": Outcome.LOST, "rejected": Outcome.REJECTED,
                    "accepted": Outcome.ACCEPTED, "meeting": Outcome.ACCEPTED}
RANK = {Outcome.WON: 3, Outcome.LOST: 2, Outcome.REJECTED: 2, Outcome.ACCEPTED: 1}


def known_outcomes(store: Store) -> dict[int, Outcome]:
    """Each canonical person's verdict: won beats lost and rejected, which beat accepted."""
    found: dict[int, Outcome] = {}

    def note(person: int, outcome: Outcome) -> None:
        if person not in found or RANK[outcome] > RANK[found[person]]:
            found[person] = outcome

    o = schema.outcomes.c
    with store.engine.connect() as conn:
        for person, kind in conn.execute(sa.select(o.person_id, o.kind)):
            if kind in HANDOFF_OUTCOMES:
                note(int(person), HANDOFF_OUTCOMES[kind])
    closed: dict[tuple[str, str], Outcome] = {}
    for deal in store.records.iter(EntityType.DEAL):
        if isinstance(deal, Deal) and deal.status in (DealStatus.WON, DealStatus.LOST):
            for pid in deal.person_ids:
                if closed.get((deal.source, pid)) is not Outcome.WON:
                    closed[(deal.source, pid)] = Outcome.WON if deal.status is DealStatus.WON else Outcome.LOST
    for key, cid in store.identities.canonical_ids(EntityType.PERSON, closed).items():
        note(cid, closed[key])
    return found
