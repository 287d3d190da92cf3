"""Builders for canonical records and models, so scoring tests read as the behaviour they check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crmbridge.model import Activity, ActivityKind, Company, Person
from crmbridge.scoring import ScoringModel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "scoring"
AS_OF = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

_counter = iter(range(1, 10**9))


def person(**fields: Any) -> Person:
    fields.setdefault("email", "alex@acme.example")
    return Person(source="test", source_id=fields.pop("source_id", f"p{next(_counter)}"), **fields)


def company(**fields: Any) -> Company:
    return Company(source="test", source_id=fields.pop("source_id", f"c{next(_counter)}"), **fields)


def activity(kind: ActivityKind | str, age: timedelta = timedelta(days=1), *, as_of: datetime = AS_OF,
             **attributes: Any) -> Activity:
    extra = {k: attributes.pop(k) for k in ("actor", "subject") if k in attributes}
    return Activity(source="test", source_id=f"a{next(_counter)}", kind=ActivityKind(kind),
                    occurred_at=as_of - age, attributes=attributes, **extra)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def model_from(yaml_text: str) -> ScoringModel:
    return ScoringModel.from_text(yaml_text, name="model.yaml")


MINIMAL = """
name: test
thresholds:
  mql: {fit_min: 10}
  sql: {total_min: 50, engagement_min: 10}
"""


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the first line of ``text`` containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def minimal_with(extra: str) -> ScoringModel:
    """The minimal model plus sections (YAML at top level) under test."""
    return model_from(MINIMAL + extra)


def sweet_spot_company(**fields: Any) -> Company:
    base = dict(domain="northwind.example", industry="software", employees=300, region="EMEA", country="DE",
                technologies=["salesforce"], tier="tier_1")
    return company(**{**base, **fields})


def vp_sales(**fields: Any) -> Person:
    base = dict(email="maria@northwind.example", title="VP Sales", seniority="vp", department="sales")
    return person(**{**base, **fields})
