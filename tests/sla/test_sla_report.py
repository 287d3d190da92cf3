"""``crmbridge sla report``: its JSON parses and every figure equals a recount from the store's own rows."""

from __future__ import annotations

import csv
import io
import json
import math
import random
from datetime import UTC, datetime

import sqlalchemy as sa
from sla_helpers import config, hand_off, log_activity, ms, seed_world, utc
from typer.testing import CliRunner

from crmbridge.cli import app
from crmbridge.model import ActivityKind
from crmbridge.routing import OwnerRouter
from crmbridge.sla.engine import SlaEngine
from crmbridge.sla.reassign import RoutingReassigner
from crmbridge.store import Store

runner = CliRunner()
MONDAY = utc(2026, 3, 9, 9, 0)
PEOPLE = 40


def _world(store: Store) -> int:
    """40 hand-offs on Monday and Tuesday; most answered after 0-200 business minutes, some never."""
    rng = random.Random(7)
    seed_world(store, people=PEOPLE)
    sla = SlaEngine(store, config(), reassigner=RoutingReassigner(store, OwnerRouter()))
    for n in range(PEOPLE):
        at = ms(MONDAY) + rng.randrange(0, 2 * 24 * 60) * 60_000
        hand_off(store, n, datetime.fromtimestamp(at / 1000, UTC), owner=rng.choice(["u1", "u2"]))
    sla.tick(ms(MONDAY) + 3 * 24 * 3_600_000 - 1)  # nothing touched yet: breaches, reminders, reassignments
    for n in range(PEOPLE):
        if rng.random() < 0.8:
            at = datetime.fromtimestamp(ms(MONDAY) / 1000 + rng.randrange(0, 4 * 24 * 3600), UTC)
            log_activity(store, n, at, kind=ActivityKind.CALL)
    now = ms(MONDAY) + 5 * 24 * 3_600_000
    sla.tick(now)
    return now


def _recount(url: str, now: int) -> dict[str, object]:
    """The same figures, counted the plain way from the rows."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        clocks = [r._asdict() for r in conn.execute(sa.text(
            "SELECT id, status, breached, business_minutes, wall_minutes, risk_ms, due_ms FROM sla_clocks "
            "WHERE measure = 'first_touch'"))]
        steps = conn.execute(sa.text("SELECT kind, count(*) FROM sla_steps WHERE status != 'skipped' "
                                     "GROUP BY kind")).all()
    engine.dispose()
    final = [c for c in clocks if c["status"] != "reassigned"]
    touched = sorted(c["business_minutes"] for c in final if c["status"] in ("met", "missed"))
    met = sum(1 for c in final if c["status"] == "met")
    late = sum(1 for c in final if c["status"] == "missed" or (c["status"] == "open" and now >= c["due_ms"]))

    def pct(p: float) -> float:
        return round(touched[max(1, math.ceil(p / 100 * len(touched))) - 1], 1)

    kinds = dict(steps)
    return {"handoffs": len(final), "touched": len(touched), "p50_minutes": pct(50), "p90_minutes": pct(90),
            "p95_minutes": pct(95), "within_sla_pct": round(100 * met / (met + late), 1),
            "breaches": sum(1 for c in clocks if c["breached"]),
            "open": sum(1 for c in final if c["status"] == "open"),
            "reminders": kinds.get("remind", 0), "reassignments": kinds.get("reassign", 0)}


def test_the_json_report_equals_a_recount_from_the_store(sqlite_url: str, monkeypatch) -> None:
    store = Store(sqlite_url)
    try:
        now = _world(store)
    finally:
        store.close()
    monkeypatch.setattr("crmbridge.sla.cli.datetime", _FrozenClock(now))
    result = runner.invoke(app, ["sla", "report", "--format", "json", "--database", sqlite_url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    expected = _recount(sqlite_url, now)
    assert {k: report[k] for k in expected} == expected
    assert report["handoffs"] == PEOPLE and 0 < report["touched"] < PEOPLE
    assert report["reminders"] > 0 and report["reassignments"] > 0 and report["breaches"] > 0
    assert sum(report["bands"].values()) == report["touched"]
    assert report["speed_to_lead_p50_minutes"] >= report["p50_minutes"]  # wall time includes nights


def test_groups_by_owner_add_up_to_the_whole(sqlite_url: str, monkeypatch) -> None:
    store = Store(sqlite_url)
    try:
        now = _world(store)
    finally:
        store.close()
    monkeypatch.setattr("crmbridge.sla.cli.datetime", _FrozenClock(now))
    result = runner.invoke(app, ["sla", "report", "--format", "json", "--by", "owner", "--database", sqlite_url])
    report = json.loads(result.output)
    assert set(report["groups"]) == {"Ann", "Bob"}
    for key in ("handoffs", "touched", "breaches", "open", "reminders", "reassignments"):
        assert sum(g[key] for g in report["groups"].values()) == report[key], key
    csv_out = runner.invoke(app, ["sla", "report", "--format", "csv", "--by", "owner", "--database", sqlite_url])
    rows = list(csv.DictReader(io.StringIO(csv_out.output)))
    assert [r["group"] for r in rows] == ["Ann", "Bob", "all"]
    assert int(rows[-1]["handoffs"]) == report["handoffs"]


def test_since_and_until_select_by_hand_off_time(sqlite_url: str, monkeypatch) -> None:
    store = Store(sqlite_url)
    try:
        now = _world(store)
    finally:
        store.close()
    monkeypatch.setattr("crmbridge.sla.cli.datetime", _FrozenClock(now))
    monday = json.loads(runner.invoke(app, ["sla", "report", "--format", "json", "--database", sqlite_url,
                                            "--until", "2026-03-10"]).output)
    tuesday = json.loads(runner.invoke(app, ["sla", "report", "--format", "json", "--database", sqlite_url,
                                             "--since", "2026-03-10"]).output)
    everything = json.loads(runner.invoke(app, ["sla", "report", "--format", "json", "--database",
                                                sqlite_url]).output)
    assert monday["handoffs"] + tuesday["handoffs"] == everything["handoffs"] == PEOPLE


def test_a_bad_date_and_a_missing_database_are_clear_errors(tmp_path) -> None:
    result = runner.invoke(app, ["sla", "report", "--database", f"sqlite:///{tmp_path / 'none.db'}"])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not (tmp_path / "none.db").exists()
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.close()
    result = runner.invoke(app, ["sla", "report", "--since", "last tuesday", "--database",
                                 f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2 and "--since" in result.output


class _FrozenClock:
    """Stands in for ``datetime`` in the report command so 'now' is the test's."""

    def __init__(self, now_ms: int) -> None:
        self._now = now_ms

    def now(self, tz: object = None) -> object:
        from datetime import UTC, datetime

        return datetime.fromtimestamp(self._now / 1000, UTC)

    def fromisoformat(self, text: str) -> object:
        from datetime import datetime

        return datetime.fromisoformat(text)
