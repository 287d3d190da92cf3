"""The board's decisions without a server: the colour rule, the words beside each colour, the order of rows,
and the JSON every API answer is cut from."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from dashboard_helpers import NOW, breached, row, snapshot

from crmbridge.dashboard import as_json, colour, status_of, status_text
from crmbridge.dashboard.model import board_order, counts_by_status, iso_utc


@pytest.mark.parametrize(("used_pct", "status", "expected_colour"), [
    (0.0, "on_track", "green"),
    (74.9, "on_track", "green"),
    (75.0, "at_risk", "amber"),
    (99.9, "at_risk", "amber"),
    (100.0, "at_risk", "amber"),
    (100.1, "breached", "red"),
    (250.0, "breached", "red"),
])
def test_clock_is_green_under_three_quarters_amber_up_to_due_and_red_past_it(used_pct, status, expected_colour):
    assert status_of(used_pct) == status
    assert colour(status_of(used_pct)) == expected_colour


def test_clock_paused_outside_working_hours_is_grey_unless_it_already_breached():
    assert status_of(40.0, paused=True) == "paused"
    assert colour("paused") == "grey"
    assert status_of(130.0, paused=True) == "breached"  # a breach stays red overnight


def test_settled_clock_is_met_and_blue():
    assert status_of(130.0, met=True) == "met"
    assert colour("met") == "blue"


def test_every_status_has_words_beside_its_colour():
    assert status_text(row(status="on_track")) == "on track"
    assert status_text(row(status="at_risk", used_pct=80.0, business_minutes_left=12.7)) == "at risk — 12 min left"
    assert status_text(breached(row(), minutes_over=34.2)) == "breached — 35 min over"
    assert status_text(row(status="paused")) == "paused — outside working hours"
    assert status_text(row(status="met")) == "met"


def test_long_durations_read_in_hours():
    assert status_text(row(status="at_risk", business_minutes_left=125.0)) == "at risk — 2 h 5 min left"
    assert status_text(breached(row(), minutes_over=120.0)) == "breached — 2 h over"


def test_board_shows_breaches_first_then_risk_then_by_due_time():
    late = row("late", status="on_track", due_at=NOW + timedelta(hours=3))
    soon = row("soon", status="on_track", due_at=NOW + timedelta(minutes=5))
    risk = row("risk", status="at_risk")
    red = breached(row("red"))
    done = row("done", status="met")
    assert [r.key for r in board_order([late, done, soon, red, risk])] == ["red", "risk", "soon", "late", "done"]


def test_counts_name_every_status_even_at_zero():
    assert counts_by_status([row(), breached(row("b"))]) == {
        "breached": 1, "at_risk": 0, "on_track": 1, "paused": 0, "met": 0}


def test_json_times_are_iso_utc_whatever_zone_they_came_in():
    cet = timezone(timedelta(hours=1))
    assert iso_utc(datetime(2025, 3, 4, 15, 30, tzinfo=cet)) == "2025-03-04T14:30:00Z"
    assert iso_utc(datetime(2025, 3, 4, 14, 30)) == "2025-03-04T14:30:00Z"  # naive is taken as UTC


def test_snapshot_as_json_is_plain_and_complete():
    data = as_json(snapshot(rows=[row(), breached(row("h-2"))]))
    assert json.loads(json.dumps(data)) == data
    assert data["generated_at"] == "2025-03-04T14:30:00Z"
    assert data["counts"]["breached"] == 1
    first = data["handoffs"][0]
    assert first["key"] == "h-1" and first["colour"] == "green" and first["status_text"] == "on track"
    assert first["due_at"] == "2025-03-04T15:24:00Z"
    assert data["handoffs"][1]["status_text"] == "breached — 35 min over"
    assert data["owners"][1] == {"owner": "Alan Turing", "open": 0, "at_risk": 0, "breached": 0, "handoffs": 0,
                                 "p50_minutes": None, "within_sla_pct": None}
    assert data["funnel"]["won"] == 6
    assert data["surges"][0]["people"] == ["Ada Lovelace", "Charles Babbage"]
    assert data["surges"][0]["at"] == (NOW - timedelta(hours=2)).astimezone(UTC).isoformat().replace("+00:00", "Z")
