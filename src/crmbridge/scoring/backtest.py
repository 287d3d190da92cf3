"""Backtest a scoring model on stored history, side by side with the live one, before it goes live.

For every week of the window, each person is scored as of the week's end on what they had done by then
(later activities are hidden), under each model. A person counts as an SQL in the first week a model
makes them one (people who were SQL before the window opened are counted apart); that week's new SQLs
are routed by the routing rules (with the backtest's assignments remembered, as round robin and caps
would) to give each owner's load; and the SQLs whose outcome sales recorded give the model's precision:
the share accepted or won, and the share won.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crmbridge.model import LifecycleStage
from crmbridge.profiles import PersonProfile
from crmbridge.scoring import Profile, Scorer, ScoringModel
from crmbridge.scoring.calibrate import Outcome

Route = Callable[[PersonProfile, datetime], str | None]  # who would own this SQL at that moment


@dataclass
class ModelBacktest:
    name: str
    threshold: float
    sqls_per_week: list[int] = field(default_factory=list)
    load_per_week: list[dict[str, int]] = field(default_factory=list)
    sqls: int = 0
    before: int = 0  # SQL already before the first week
    with_outcome: int = 0
    positive: int = 0
    won: int = 0

    @property
    def precision(self) -> float | None:
        return round(self.positive / self.with_outcome, 4) if self.with_outcome else None

    @property
    def won_precision(self) -> float | None:
        return round(self.won / self.with_outcome, 4) if self.with_outcome else None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sql_threshold": self.threshold, "sqls": self.sqls, "sql_before": self.before,
                "sqls_per_week": self.sqls_per_week, "owner_load_per_week": self.load_per_week,
                "with_outcome": self.with_outcome, "precision": self.precision, "won_precision": self.won_precision,
                "max_owner_load": max((max(w.values(), default=0) for w in self.load_per_week), default=0)}


@dataclass
class Backtest:
    weeks: list[datetime]
    models: list[ModelBacktest]

    def as_dict(self) -> dict[str, Any]:
        return {"weeks": [w.date().isoformat() for w in self.weeks], "models": [m.as_dict() for m in self.models]}


def week_ends(until: datetime, weeks: int) -> list[datetime]:
    """The ends of the last ``weeks`` weeks, oldest first, the last one ``until``."""
    return [until - timedelta(weeks=weeks - 1 - n) for n in range(weeks)]


def as_of(profile: Profile, moment: datetime) -> Profile:
    """The profile as it stood at ``moment``: activities after it hidden."""
    return Profile(profile.person, profile.company, tuple(a for a in profile.activities if a.occurred_at <= moment))


def backtest(people: Sequence[PersonProfile], models: Mapping[str, ScoringModel], weeks: Sequence[datetime],
             outcomes: Mapping[int, Outcome], route: Route | None = None) -> Backtest:
    runs = []
    for name, model in models.items():
        scorer = Scorer(model)
        run = ModelBacktest(name, float(model.sql_threshold))
        became: dict[int, int] = {}  # person -> index of the week they became SQL
        opened = weeks[0] - timedelta(weeks=1)  # SQL already when the window opens: not a new SQL of it
        for p in people:
            if scorer.score(as_of(p.profile, opened), opened).stage is LifecycleStage.SQL:
                run.before += 1
                continue
            for i, end in enumerate(weeks):
                if scorer.score(as_of(p.profile, end), end).stage is LifecycleStage.SQL:
                    became[p.person_id] = i
                    break
        by_week: list[list[PersonProfile]] = [[] for _ in weeks]
        for p in people:
            if p.person_id in became:
                by_week[became[p.person_id]].append(p)
        for i, group in enumerate(by_week):
            run.sqls_per_week.append(len(group))
            load: Counter[str] = Counter()
            for p in group:
                owner = route(p, weeks[i]) if route is not None else None
                load[owner or "(to claim)"] += 1
            run.load_per_week.append(dict(sorted(load.items())))
        run.sqls = len(became)
        for person_id in became:
            outcome = outcomes.get(person_id)
            if outcome is None:
                continue
            run.with_outcome += 1
            run.positive += outcome.positive
            run.won += outcome is Outcome.WON
        runs.append(run)
    return Backtest(list(weeks), runs)
