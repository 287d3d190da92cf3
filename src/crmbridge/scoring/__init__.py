"""Lead scoring: a declarative YAML model of fit, engagement, qualifying answers and disqualifiers,
compiled once and applied as a pure function of a person's profile and a moment in time.

Also here: the account (ABM) roll-up, lifecycle policy, explanations, persona test cases and
threshold calibration from sales outcomes. Nothing in this package knows a CRM vendor.
"""

from crmbridge.scoring.account import AccountScore, AccountScorer, AccountStage, ScoreSnapshot, Surge, detect_surge
from crmbridge.scoring.calibrate import Band, Calibration, Outcome, Sample, calibrate, load_outcomes
from crmbridge.scoring.cases import CaseReport, Check, PersonaResult, run_cases
from crmbridge.scoring.engine import Profile, Scorer
from crmbridge.scoring.lifecycle import LifecyclePolicy, apply_lifecycle_policy
from crmbridge.scoring.model import ScoringModel
from crmbridge.scoring.result import Gap, PersonScore, Reason, Reasons

__all__ = [
    "AccountScore",
    "AccountScorer",
    "AccountStage",
    "Band",
    "Calibration",
    "CaseReport",
    "Check",
    "Gap",
    "LifecyclePolicy",
    "Outcome",
    "PersonScore",
    "PersonaResult",
    "Profile",
    "Reason",
    "Reasons",
    "Sample",
    "ScoreSnapshot",
    "Scorer",
    "ScoringModel",
    "Surge",
    "apply_lifecycle_policy",
    "calibrate",
    "detect_surge",
    "load_outcomes",
    "run_cases",
]
