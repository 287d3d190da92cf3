"""Web-analytics events (``GET /events/v3/events``) read straight from the world's behaviour columns.

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


class EventLog:
    def __init__(self, world: World, contact_id: Callable[[int], str], portal_id: int) -> None:
        self.world = world
        self.behaviours = world.behaviours
        self._contact_id = contact_id
        self._portal_id = portal_id
        self._global: array | None = None

    def _global_order(self) -> array:
        if self._global is None:
            at = self.behaviours.at_ms
            # A stable sort by time keeps positions ascending among equal times: (at, position) order.
            self._global = array("i", sorted(range(len(at)), key=at.__getitem__))
        return self._global

    def query(self, q: EventQuery) -> tuple[list[int], tuple[int, int] | None]:
        """Positions of the events on this page, and the (at, position) to continue after, if any."""
        at_col, kind_col = self.behaviours.at_ms, self.behaviours.kind
        if q.persons is None:
            order: Sequence[int] = self._global_order()
        else:
            positions: list[int] = []
            for person in q.persons:
                positions.extend(self.behaviours.of(person))
            if len(q.persons) > 1:
                positions.sort(key=lambda i: (at_col[i], i))
            order = positions

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

    def render(self, position: int) -> dict[str, Any]:
        b, world = self.behaviours, self.world
        kind, at, ref, person = b.kind[position], b.at_ms[position], b.ref[position], b.person[position]
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
