"""What a hand-off notification says (``HandoffNotice``) and what became of each delivery (``Delivery``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class HandoffNotice:
    """One sales-ready lead handed to a seller (or, in claim mode, to whoever takes it first).

    ``reasons`` are the score's top reasons, already phrased (``"Contact request form (+50)"``);
    ``key`` is the hand-off's idempotency key, repeated in every message so a receiver can dedupe.
    """

    key: str
    crm: str
    person_name: str
    person_email: str | None = None
    person_title: str | None = None
    company_name: str | None = None
    company_domain: str | None = None
    score: float
    stage: str = "SQL"
    reasons: tuple[str, ...] = ()
    deal_title: str
    deal_url: str | None = None
    owner_name: str | None = None
    owner_email: str | None = None
    claim: bool = False
    # What the notice is about: the hand-off itself, or a later step of its response-time SLA
    # (``reminder``, ``escalation``, ``reassignment``) or an account's intent ``surge``; ``note`` says
    # why, in a line (what is due when, who breached); ``recipient`` overrides whom e-mail goes to (a
    # manager for an escalation).
    kind: str = "handoff"
    note: str | None = None
    recipient: str | None = None

    def __post_init__(self) -> None:
        # A list passed by mistake would make the notice unhashable and mutable.
        object.__setattr__(self, "reasons", tuple(str(r) for r in self.reasons))


@dataclass(frozen=True)
class Delivery:
    """The outcome of one channel for one notice. ``target`` is safe to log and store (no secret).

    A failed delivery with ``retryable=True`` belongs in an outbox: call ``Notifier.deliver_to`` with
    its ``channel`` later (not before ``retry_after`` seconds, when the receiver asked for a wait).
    """

    channel: str
    target: str
    ok: bool
    retryable: bool
    attempts: int
    error: str | None = None
    retry_after: float | None = field(default=None, compare=False)
