"""Owner assignment for sales-ready leads: a chain of rules from a YAML file (account owner, territory and
segment rules, weighted round robin with caps and availability, fixed owners, claim mode) applied as a
pure function of the lead, the CRM's sellers, an assignment ledger and the moment.

Nothing here talks to a CRM or a database: callers pass sellers and a ``Ledger`` in, and store the
``Assignment`` (with its reason) themselves.
"""

from crmbridge.routing.config import (
    AccountOwnerRule,
    ClaimRule,
    FallbackSpec,
    FixedRule,
    RoundRobinRule,
    RoutingConfig,
    RuleSpec,
    SegmentRule,
    SellerSettings,
    TerritoryRule,
    load_routing,
)
from crmbridge.routing.ledger import Ledger, MemoryLedger
from crmbridge.routing.model import Assignment, AssignmentMode, Lead, Seller, Skip, SkipCause
from crmbridge.routing.router import OwnerRouter

__all__ = [
    "AccountOwnerRule",
    "Assignment",
    "AssignmentMode",
    "ClaimRule",
    "FallbackSpec",
    "FixedRule",
    "Lead",
    "Ledger",
    "MemoryLedger",
    "OwnerRouter",
    "RoundRobinRule",
    "RoutingConfig",
    "RuleSpec",
    "SegmentRule",
    "Seller",
    "SellerSettings",
    "Skip",
    "SkipCause",
    "TerritoryRule",
    "load_routing",
]
