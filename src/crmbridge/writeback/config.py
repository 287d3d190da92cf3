"""The hand-off configuration (``handoff.yaml``): where sales-ready leads go and how they are written.

Validated once at start-up; a bad file names its file, line and key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crmbridge.connectors import capabilities
from crmbridge.errors import ConfigError
from crmbridge.yamlconf import load_yaml, validate

WRITABLE = ("score", "fit_score", "engagement_score", "score_reasons", "scored_at", "lifecycle_stage",
            "handoff_at", "handoff_owner", "sales_outcome", "sales_outcome_reason", "sales_outcome_at")


class SegmentWhen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: list[str] | None = None
    region: list[str] | None = None
    industry: list[str] | None = None
    min_employees: int | None = Field(default=None, ge=0)
    max_employees: int | None = Field(default=None, ge=0)

    def matches(self, facts: dict[str, Any]) -> bool:
        def within(value: Any, allowed: list[str] | None) -> bool:
            return allowed is None or (value is not None and str(value).lower() in {a.lower() for a in allowed})

        employees = facts.get("employees")
        if self.min_employees is not None and (employees is None or employees < self.min_employees):
            return False
        if self.max_employees is not None and (employees is None or employees > self.max_employees):
            return False
        return (within(facts.get("country"), self.country) and within(facts.get("region"), self.region)
                and within(facts.get("industry"), self.industry))


class Segment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    when: SegmentWhen = Field(default_factory=SegmentWhen)
    target: str


class HandoffConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Which CRM receives hand-off deals: a source name, or "auto": the configured source whose plugin
    # ranks highest as hand-off target (the CRM sellers work in, in a two-CRM set-up), else the first.
    # Segments, in order, override it.
    target: str = "auto"
    segments: list[Segment] = Field(default_factory=list)
    stage: str = "Sales-ready leads"
    pipelines: dict[str, str] = Field(default_factory=dict, description="source -> pipeline label or id")
    routing: Path | None = None
    # Person fields written back to every CRM that knows the person.
    write: list[Literal[WRITABLE]] = Field(default_factory=lambda: list(WRITABLE))  # type: ignore[valid-type]
    title: str = "{company}: {person} — sales-ready (score {score})"
    reasons_in_summary: int = Field(default=3, ge=1, le=10)
    lease_seconds: int = Field(default=600, ge=30)
    # A lead sales rejected or lost goes back to nurture; once this many days have passed it may be handed
    # off again, as a new generation with a deal of its own (never the old deal twice).
    recycle_after_days: int = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _title_fields(self) -> HandoffConfig:
        try:
            self.title.format(company="c", person="p", title="t", score=1, email="e")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"title may use {{company}}, {{person}}, {{title}}, {{score}}, {{email}}: {exc}") from None
        return self

    def target_for(self, facts: dict[str, Any], sources: Sequence[str],
                   ranks: Mapping[str, int] | None = None) -> tuple[str, str]:
        """The CRM a hand-off goes to, and why (the segment's name, or the default). ``ranks``: each
        source's rank as hand-off target, by default what its plugin declares."""
        for segment in self.segments:
            if segment.when.matches(facts):
                return segment.target, f"segment {segment.name}"
        if self.target != "auto":
            return self.target, "default target"
        return auto_target(sources, ranks), "default target"

    def check_sources(self, sources: Sequence[str], file: str | None = None) -> None:
        for name in [self.target, *(s.target for s in self.segments)]:
            if name != "auto" and name not in sources:
                raise ConfigError(f"hand-off target {name!r} is not a configured source ({', '.join(sources)})",
                                  file=file, key="target")


def auto_target(sources: Sequence[str], ranks: Mapping[str, int] | None = None) -> str:
    """The source that ranks highest as hand-off target; among equals, the first configured."""
    if not sources:
        raise ConfigError("no source is configured to receive hand-offs", key="CRMBRIDGE_SOURCES")
    rank = dict(ranks) if ranks is not None else {s: capabilities(s).handoff_rank for s in sources}
    best = sources[0]
    for source in sources[1:]:
        if rank.get(source, 0) > rank.get(best, 0):
            best = source
    return best


def load_handoff_config(path: Path | None) -> HandoffConfig:
    if path is None:
        return HandoffConfig()
    data, locator = load_yaml(path)
    config = validate(HandoffConfig, data or {}, locator)
    if config.routing is not None and not config.routing.is_absolute():
        config.routing = (Path(path).parent / config.routing).resolve()
    return config
