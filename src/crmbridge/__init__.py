"""crmbridge: the RevOps playbook (ICP, scoring, lifecycle stages, hand-off, SLA) as a daemon."""

__version__ = "0.1.0"
