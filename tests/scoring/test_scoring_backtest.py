"""Backtest: each person is judged on what they had done by each week's end, a stricter model never makes
more SQLs, owner load follows the routing, and precision counts only SQLs whose outcome sales recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from crmbridge.model import Activity, ActivityKind, Company, Person
from crmbridge.profiles import PersonProfile
from crmbridge.scoring import Profile, ScoringModel
from crmbridge.scoring.backtest import as_of, backtest, week_ends
from crmbridge.scoring.calibrate import Outcome

ROOT = Path(__file__).resolve().parents[2]
END = datetime(2026, 3, 27, 18, 0, tzinfo=UTC)
WEEKS = week_ends(END, 4)


def person(n: int, form_at: datetime | None, employees: int = 500) -> PersonProfile:
    p = Person(source="hubspot", source_id=str(n), email=f"p{n}@acme{n}.example", title="VP Sales",
               seniority="vp", company_ids=[f"c{n}"])
    c = Company(source="hubspot", source_id=f"c{n}", name=f"Acme {n}", domain=f"acme{n}.example",
                employees=employees, industry="software", country="DE", region="EMEA")
    acts = [] if form_at is None else [Activity(source="hubspot", source_id=f"a{n}", kind=ActivityKind.FORM_SUBMISSION,
                                                occurred_at=form_at, person_ids=[str(n)],
                                                attributes={"form_name": "Contact us"})]
    return PersonProfile(n, n, Profile(p, c, tuple(acts)))


def models(tmp_path: Path) -> dict[str, ScoringModel]:
    text = (ROOT / "examples" / "scoring" / "default.yaml").read_text()
    stricter = tmp_path / "strict.yaml"
    stricter.write_text(text.replace("    total_min: 50", "    total_min: 500").replace(
        "    stage: sql              # a contact request", "    stage: mql              # a contact request"))
    return {"live": ScoringModel.load(ROOT / "examples" / "scoring" / "default.yaml"),
            "strict": ScoringModel.load(stricter)}


def test_a_person_is_scored_on_what_they_had_done_by_then() -> None:
    p = person(1, WEEKS[2] - timedelta(days=1))
    assert as_of(p.profile, WEEKS[1]).activities == ()
    assert len(as_of(p.profile, WEEKS[2]).activities) == 1


def test_sqls_per_week_owner_load_and_precision(tmp_path: Path) -> None:
    people = [person(1, WEEKS[0] - timedelta(days=2)), person(2, WEEKS[2] - timedelta(days=3)),
              person(3, WEEKS[2] - timedelta(days=1)), person(4, None), person(5, WEEKS[0] - timedelta(days=20))]
    outcomes = {1: Outcome.WON, 2: Outcome.REJECTED, 4: Outcome.LOST}
    owners = iter(["Ann", "Bo", "Ann", "Bo"])
    result = backtest(people, models(tmp_path), WEEKS, outcomes, route=lambda p, at: next(owners))
    live, strict = result.models
    assert live.before == 1  # person 5 filled the form before the window
    assert live.sqls_per_week == [1, 0, 2, 0]
    assert live.load_per_week == [{"Ann": 1}, {}, {"Ann": 1, "Bo": 1}, {}]
    assert (live.with_outcome, live.precision, live.won_precision) == (2, 0.5, 0.5)  # 1 won, 2 rejected; 4 no SQL
    assert strict.sqls == 0 and sum(strict.sqls_per_week) == 0 and strict.precision is None
    assert result.as_dict()["models"][0]["max_owner_load"] == 1
