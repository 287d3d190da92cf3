"""A rule's ``when``: conditions on the lead's territory, size, industry, interest, segment and score.

``describe_match`` returns what matched in words, for the assignment's reason; None when the lead does
not match. Text compares case-insensitively and ignores surrounding spaces.
"""

from __future__ import annotations

from collections.abc import Mapping

from crmbridge.routing.config import SizeBand, When
from crmbridge.routing.model import Lead


def number_text(value: float) -> str:
    """``1,200``, ``50,000,000`` or ``87.5``: how people write counts and amounts."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")


def _norm(value: str) -> str:
    return value.strip().casefold()


def _one_of(value: str | None, allowed: tuple[str, ...]) -> bool:
    return value is not None and _norm(value) in {_norm(a) for a in allowed}


def describe_match(when: When | None, lead: Lead, bands: Mapping[str, SizeBand]) -> list[str] | None:
    """The matched conditions in words (``["country DE", "size band enterprise"]``), or None on a miss."""
    if when is None:
        return []
    said: list[str] = []
    for key, label in (("country", "country"), ("region", "region"), ("industry", "industry"),
                       ("segment", "segment")):
        allowed = getattr(when, key)
        if allowed is None:
            continue
        value = getattr(lead, key)
        if not _one_of(value, allowed):
            return None
        said.append(f"{label} {value}")
    if when.product_interest is not None:
        hits = [p for p in lead.product_interest if _one_of(p, when.product_interest)]
        if not hits:
            return None
        said.append(f"interested in {', '.join(hits)}")
    if when.size_band is not None:
        band = next((b for b in when.size_band if bands[b].holds(lead.employees)), None)
        if band is None:
            return None
        said.append(f"size band {band} at {number_text(lead.employees or 0)} employees")
    for key, label in (("employees", "employees"), ("annual_revenue", "annual revenue"), ("score", "score")):
        bounds = getattr(when, key)
        if bounds is None:
            continue
        value = getattr(lead, key)
        if not bounds.holds(value):
            return None
        said.append(f"{label} {number_text(value)}")
    return said
