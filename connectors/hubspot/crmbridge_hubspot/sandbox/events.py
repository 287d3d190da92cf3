"""Web-analytics events (``GET /events/v3/events``) read straight from the world's behaviour columns,
followed by the events appended since (the simulator's visitors, submitting forms now).

Events are immutable and ordered by (occurredAt, id): an id is ``<portal>-<epoch ms>-<position>``, so the
two orders agree. The paging cursor is the (occurredAt, position) pair of the last event, encoded.
A query for one contact reads only that person's slice; a query across all contacts uses a global
order built on first use.
"""

from __future__ import annotations

import base64
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from crmbridge.sandbox.world import EMAIL_CLICK, EMAIL_OPEN, FORM_SUBMISSION, PAGE_VIEW, World
from crmbridge_hubspot.sandbox.clock import iso_ms

EVENT_TYPES = {"e_visited_page": PAGE_VIEW, "e_submitted_form": FORM_SUBMISSION, "e_opened_email": EMAIL_OPEN,
               "e_clicked_email": EMAIL_CLICK}
EVENT_NAMES = {code: name for name, code in EVENT_TYPES.items()}
SESSION_GAP_MS = 30 * 60 * 1000


@dataclass(frozen=True, slots=True)
class EventQuery:
    persons: Sequence[int] | None  # world person indices; None = every contact
    kinds: frozenset[int] | None  # None = every event type
    after_ms: int | None
    before_ms: int | None
    cursor: tuple[int, int] | None
    limit: int
    descending: bool


def encode_cursor(at: int, position: int) -> str:
    return base64.urlsafe_b64encode(f"{at}|{position}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, int] | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        at, _, position = raw.partition("|")
        return int(at), int(position)
    except (ValueError, UnicodeDecodeError):
        return None


class _Column:
    """One behaviour column of the world, continued by the events appended since (``EventLog.append``)."""

    __slots__ = ("base", "size", "tail")

    def __init__(self, base: Sequence[int], tail: list[int]) -> None:
        self.base, self.tail, self.size = base, tail, len(base)

    def __getitem__(self, i: int) -> int:
        return self.base[i] if i < self.size else self.tail[i - self.size]

    def __len__(self) -> int:
        return self.size + len(self.tail)


class EventLog:
    """The world's events (immutable columns, shared between sandboxes) and those appended since."""

    def __init__(self, world: World, contact_id: Callable[[int], str], portal_id: int) -> None:
        self.world = world
        self.behaviours = world.behaviours
        self._contact_id = contact_id
        self._portal_id = portal_id
        self._global: array | None = None
        self._tail: dict[str, list[int]] = {"person": [], "kind": [], "at": [], "ref": []}
        self._tail_of: dict[int, list[int]] = {}  # person -> appended positions
        b = self.behaviours
        self.at = _Column(b.at_ms, self._tail["at"])
        self.kind = _Column(b.kind, self._tail["kind"])

    def append(self, person: int, kind: int, at_ms: int, ref: int) -> int:
        """Add an event the world did not generate (the simulator's visitors); returns its position."""
        position = len(self.at)
        for name, value in (("person", person), ("kind", kind), ("at", at_ms), ("ref", ref)):
            self._tail[name].append(value)
        self._tail_of.setdefault(person, []).append(position)
        if self._global is not None:
            at = self.at
            where = bisect_right(self._global, (at_ms, position), key=lambda i: (at[i], i))
            self._global.insert(where, position)
        return position

    def _columns(self) -> tuple[Sequence[int], Sequence[int]]:
        if not self._tail["at"]:  # the common case reads the world's arrays directly
            return self.behaviours.at_ms, self.behaviours.kind
        return self.at, self.kind

    def _global_order(self) -> array:
        if self._global is None:
            at = self._columns()[0]
            # A stable sort by time keeps positions ascending among equal times: (at, position) order.
            self._global = array("i", sorted(range(len(at)), key=at.__getitem__))
        return self._global

    def _of(self, persons: Sequence[int], at_col: Sequence[int]) -> list[int]:
        positions: list[int] = []
        appended = False
        for person in persons:
            positions.extend(self.behaviours.of(person))
            extra = self._tail_of.get(person)
            if extra:
                positions.extend(extra)
                appended = True
        if len(persons) > 1 or appended:
            positions.sort(key=lambda i: (at_col[i], i))
        return positions

    def query(self, q: EventQuery) -> tuple[list[int], tuple[int, int] | None]:
        """Positions of the events on this page, and the (at, position) to continue after, if any."""
        at_col, kind_col = self._columns()
        order: Sequence[int] = self._global_order() if q.persons is None else self._of(q.persons, at_col)

        def key(i: int) -> tuple[int, int]:
            return at_col[i], i

        low = bisect_left(order, (q.after_ms, -1), key=key) if q.after_ms is not None else 0
        high = bisect_right(order, (q.before_ms, 1 << 62), key=key) if q.before_ms is not None else len(order)
        if q.cursor is not None:
            if q.descending:
                high = min(high, bisect_left(order, q.cursor, key=key))
            else:
                low = max(low, bisect_right(order, q.cursor, key=key))
        indices = range(high - 1, low - 1, -1) if q.descending else range(low, high)
        page: list[int] = []
        for i in indices:
            position = order[i]
            if q.kinds is None or kind_col[position] in q.kinds:
                if len(page) == q.limit:
                    last = page[-1]
                    return page, (at_col[last], last)
                page.append(position)
        return page, None

    def _event(self, position: int) -> tuple[int, int, int, int]:
        """(kind, at, ref, person) of a position, world or appended."""
        b = self.behaviours
        if position < len(b):
            return b.kind[position], b.at_ms[position], b.ref[position], b.person[position]
        i = position - len(b)
        tail = self._tail
        return tail["kind"][i], tail["at"][i], tail["ref"][i], tail["person"][i]

    def render(self, position: int) -> dict[str, Any]:
        world = self.world
        kind, at, ref, person = self._event(position)
        if kind == PAGE_VIEW:
            page = world.pages[ref]
            referrer, source = self._referrer(position, person)
            path = page.url.split("/", 3)[3] if page.url.count("/") >= 3 else ""
            props = {"hs_url": page.url, "hs_page_title": page.title, "hs_referrer": referrer,
                     "hs_url_domain": page.url.split("/")[2], "hs_url_path": "/" + path, "hs_visit_source": source,
                     "hs_device_type": "MOBILE" if position % 5 == 0 else "COMPUTER"}
        elif kind == FORM_SUBMISSION:
            form = world.forms[ref]
            page = world.pages[form.page]
            props = {"hs_form_id": form.guid, "hs_form_title": form.name, "hs_url": page.url,
                     "hs_page_title": page.title}
        else:
            campaign = world.campaigns[ref]
            props = {"hs_email_campaign_id": str(campaign.id), "hs_email_campaign_name": campaign.name,
                     "hs_email_subject": campaign.subject}
            if kind == EMAIL_CLICK:
                props["hs_url"] = world.pages[campaign.click_page].url + "?utm_medium=email"
        return {
            "objectType": "CONTACT", "objectId": self._contact_id(person), "eventType": EVENT_NAMES[kind],
            "occurredAt": iso_ms(at), "id": f"{self._portal_id}-{at}-{position:09d}", "properties": props,
        }

    def _referrer(self, position: int, person: int) -> tuple[str, str]:
        b = self.behaviours
        if position >= len(b):
            return "", "DIRECT_TRAFFIC"  # an appended event: a visit that started right there
        begin = b.start[person]
        if position > begin and b.at_ms[position] - b.at_ms[position - 1] < SESSION_GAP_MS:
            previous_kind = b.kind[position - 1]
            if previous_kind == PAGE_VIEW:
                return self.world.pages[b.ref[position - 1]].url, "DIRECT_TRAFFIC"
            if previous_kind == EMAIL_CLICK:
                return "", "EMAIL_MARKETING"
        if position % 3 == 0:
            return "https://www.google.com/", "ORGANIC_SEARCH"
        if position % 7 == 0:
            return "https://www.linkedin.com/", "SOCIAL_MEDIA"
        return "", "DIRECT_TRAFFIC"
