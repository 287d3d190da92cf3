"""How many leads each seller has already been given: the count that caps and round robin read.

The router only asks; the store answers in production. ``MemoryLedger`` answers from a list, for tests,
simulations and dry runs.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import defaultdict
from datetime import datetime
from typing import Protocol

from crmbridge.routing.model import Assignment


class Ledger(Protocol):
    def count(self, owner_id: str, since: datetime | None) -> int:
        """Assignments made to ``owner_id`` at or after ``since`` (``None``: ever)."""
        ...


class MemoryLedger:
    """A ledger kept in memory: record assignments, count them back."""

    def __init__(self) -> None:
        self._times: dict[str, list[datetime]] = defaultdict(list)

    def record(self, owner_id: str, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("assignment times must carry a time zone")
        insort(self._times[owner_id], at)

    def record_assignment(self, assignment: Assignment, at: datetime) -> None:
        """Count a decision if it named an owner; claim announcements count once someone claims."""
        if assignment.mode == "owner" and assignment.owner_id is not None:
            self.record(assignment.owner_id, at)

    def count(self, owner_id: str, since: datetime | None) -> int:
        times = self._times.get(owner_id, [])
        if since is None:
            return len(times)
        return len(times) - bisect_left(times, since)

    def totals(self) -> dict[str, int]:
        """Assignments per owner, ever."""
        return {owner: len(times) for owner, times in self._times.items() if times}


class CachedCounts:
    """One decision's view of a ledger: each (owner, since) is asked once, however many rules look."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._seen: dict[tuple[str, datetime | None], int] = {}

    def count(self, owner_id: str, since: datetime | None) -> int:
        key = (owner_id, since)
        if key not in self._seen:
            self._seen[key] = self._ledger.count(owner_id, since)
        return self._seen[key]
