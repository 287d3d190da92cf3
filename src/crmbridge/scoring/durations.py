"""Durations as people write them in scoring models and case files: ``90m``, ``12h``, ``3d``, ``2w``, ``1y``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdwy])")
_WHOLE = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*[smhdwy]\s*)+")


def parse_duration(text: str | int | float) -> timedelta:
    """Parse ``"3d"``, ``"2w"`` or ``"1d12h"``; a bare number counts days, the unit scoring models think in."""
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 30d, 2w or 12h")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(days=text)
    value = str(text).strip().lower()
    if not value or not _WHOLE.fullmatch(value):
        raise ValueError(f"{text!r} is not a duration such as 30d, 2w, 12h or 90m")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """An exact spelling of a duration that ``parse_duration`` reads back (``14d``, ``36h``, ``90m``)."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    for unit in ("d", "h", "m"):  # days rather than weeks: "14d" reads as people write windows
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
