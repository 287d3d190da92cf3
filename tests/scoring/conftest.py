"""Fixtures for the scoring tests: the shipped default model and a scorer bound to it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

# The suite imports test files by path (--import-mode=importlib); this makes the builders in
# scoring_helpers.py importable from every scoring test.
sys.path.insert(0, str(Path(__file__).parent))

from scoring_helpers import AS_OF, EXAMPLES

from crmbridge.model import Activity, Company, Person
from crmbridge.scoring import PersonScore, Profile, Scorer, ScoringModel


@pytest.fixture(scope="session")
def default_model() -> ScoringModel:
    return ScoringModel.load(EXAMPLES / "default.yaml")


@pytest.fixture
def scorer(default_model: ScoringModel) -> Scorer:
    return Scorer(default_model)


@pytest.fixture
def score(scorer: Scorer) -> Callable[..., PersonScore]:
    """score(person, company=None, *activities, as_of=AS_OF) with the default model."""

    def run(who: Person, org: Company | None = None, *acts: Activity, as_of: datetime = AS_OF) -> PersonScore:
        return scorer.score(Profile(who, org, acts), as_of)

    return run
