"""Builders for leads, sellers and routing files, so routing tests read as the behaviour they check."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmbridge.routing import Assignment, Lead, MemoryLedger, OwnerRouter, RoutingConfig, Seller

ROOT = Path(__file__).resolve().parents[2]
# A Monday, 10:00 in Berlin, 09:00 UTC, 04:00 in New York.
NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def lead(**fields: Any) -> Lead:
    fields.setdefault("person_id", 1)
    fields.setdefault("email", "alex@acme.example")
    fields.setdefault("company_name", "Acme")
    fields.setdefault("company_domain", "acme.example")
    return Lead(**fields)


def seller(id: str, name: str | None = None, **fields: Any) -> Seller:
    fields.setdefault("email", f"{(name or id).lower().replace(' ', '.')}@lumen.example")
    return Seller(id=id, name=name or id.title(), **fields)


def routing(text: str) -> RoutingConfig:
    return RoutingConfig.from_text(text, name="routing.yaml")


def assign(config: RoutingConfig | str, the_lead: Lead, sellers: list[Seller], ledger: MemoryLedger | None = None,
           now: datetime = NOW) -> Assignment:
    cfg = routing(config) if isinstance(config, str) else config
    return OwnerRouter(cfg).assign(the_lead, sellers, ledger or MemoryLedger(), now)


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the first line of ``text`` containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)
