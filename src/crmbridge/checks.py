"""The whole configuration checked once: settings, each source's credentials and mapping, the merge policy,
the scoring model, the hand-off, routing and SLA files and the notification settings.

``crmbridge config check`` prints the result; ``crmbridge run`` refuses to start on the same errors, so a
set-up that passes the check does not fail later on a file nobody loaded. Every error names its file, line
and key (settings: the variable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from crmbridge.errors import ConfigError
from crmbridge.settings import Settings

ENVIRONMENT = ".env / environment"
T = TypeVar("T")


@dataclass
class ConfigReport:
    """What was checked (one line per file or setting group), what looks wrong but works, and the errors."""

    checked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def attempt(self, check: Callable[[], T]) -> T | None:
        """Run one check; its ``ConfigError`` is recorded and the other checks still run."""
        try:
            return check()
        except ConfigError as exc:
            self.errors.append(exc)
            return None


def check_configuration(settings: Settings) -> ConfigReport:
    """Load and validate everything ``settings`` points at; nothing is connected to or written."""
    report = ConfigReport()
    report.attempt(lambda: _settings(settings, report))
    for source in settings.sources:
        report.attempt(lambda source=source: _credentials(source, report))
        report.attempt(lambda source=source: _mapping(settings, source, report))
    report.attempt(lambda: _merge_policy(settings, report))
    report.attempt(lambda: _scoring_model(settings, report))
    routing = report.attempt(lambda: _handoff_and_routing(settings, report))
    sla_file = report.attempt(lambda: _sla(settings, report))
    if routing is not None and sla_file is not None:  # both files there: their team names should agree
        report.warnings += sla_teams_missing_from_routing(sla_file, routing)
    report.attempt(lambda: _notifications(report))
    return report


def _settings(settings: Settings, report: ConfigReport) -> None:
    from crmbridge.sla.build import timeline
    from crmbridge.store.engine import normalise_url

    try:
        normalise_url(settings.database_url)
        line = timeline(settings)  # a fast SLA clock without an epoch is refused here
    except ConfigError as exc:
        raise ConfigError(exc.message, file=ENVIRONMENT, key=exc.key) from None
    clock = "wall clock" if line.speed == 1.0 else f"SLA clock x{line.speed:g}"
    report.checked.append(f"{ENVIRONMENT} (sources {', '.join(settings.sources) or 'none'}; sync every "
                          f"{settings.sync_interval_seconds:g} s; {clock})")


def _credentials(source: str, report: ConfigReport) -> None:
    """The connector built from its own ``CRMBRIDGE_<SOURCE>_*`` settings, so a missing token is named now."""
    from crmbridge.connectors import plugins

    installed = plugins()
    if source not in installed:
        known = ", ".join(sorted(installed)) or "none installed"
        raise ConfigError(f"unknown source {source!r} (installed connectors: {known})", file=ENVIRONMENT,
                          key="CRMBRIDGE_SOURCES")
    try:
        connector = installed[source].connector()
    except ConfigError as exc:
        raise ConfigError(exc.message, file=exc.file or ENVIRONMENT, key=exc.key, line=exc.line) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        key = f"CRMBRIDGE_{source}_" + "_".join(str(p) for p in first["loc"])
        raise ConfigError(first["msg"], file=ENVIRONMENT, key=key.upper()) from None
    connector.close()
    report.checked.append(f"{source} credentials")


def _mapping(settings: Settings, source: str, report: ConfigReport) -> None:
    from crmbridge.connectors import plugins
    from crmbridge.mapping import SourceMapping

    if source not in plugins():
        return  # reported once, by the credentials check
    mapping = SourceMapping.load(settings.mapping_file(source))
    report.checked.append(f"{mapping.file} ({len(mapping.streams)} streams)")


def _merge_policy(settings: Settings, report: ConfigReport) -> None:
    from crmbridge.identity import load_policy

    path = settings.merge_policy_file
    load_policy(path)
    report.checked.append(f"{path} (merge policy)" if path.exists() else
                          f"merge policy: built-in, most recent wins (no {path})")


def _scoring_model(settings: Settings, report: ConfigReport) -> None:
    from crmbridge.scoring import ScoringModel

    model = ScoringModel.load(settings.scoring_model_path)
    report.checked.append(f"{settings.scoring_model_path} (scoring model {model.name!r}, SQL at "
                          f"{model.sql_threshold:g})")


def _handoff_and_routing(settings: Settings, report: ConfigReport) -> Any:
    """The hand-off file and the routing file it names (returned; None for the built-in routing)."""
    from crmbridge.routing import load_routing
    from crmbridge.writeback.config import load_handoff_config

    path = settings.handoff_config_path
    handoff = load_handoff_config(path)
    handoff.check_sources(list(settings.sources), str(path) if path else None)
    report.checked.append(f"{path or 'hand-off: built-in defaults'} (stage {handoff.stage!r})")
    if handoff.routing is None:
        return None
    routing = load_routing(handoff.routing)
    report.checked.append(f"{handoff.routing} ({len(routing.rules)} routing rules, {len(routing.teams)} teams)")
    return routing


def _sla(settings: Settings, report: ConfigReport) -> Path | None:
    from crmbridge.sla.config import load_sla

    path = settings.sla_config_path
    if path is None:
        report.checked.append("SLA: built-in defaults (no CRMBRIDGE_SLA_CONFIG, no ./sla.yaml)")
        return None
    sla = load_sla(path)
    report.checked.append(f"{path} ({len(sla.policies)} SLA policies, {len(sla.calendars)} calendars)")
    return path


def _notifications(report: ConfigReport) -> None:
    from crmbridge.notify import load_notify_settings

    notify = load_notify_settings()
    channels = [name for name, on in (("Slack", notify.slack_webhook_url), ("Teams", notify.teams_webhook_url),
                                      ("e-mail", notify.smtp_configured)) if on]
    report.checked.append(f"notifications ({', '.join(channels)})" if channels else
                          "notifications: no channel set (hand-offs notify nobody)")


def sla_teams_missing_from_routing(sla_file: Path, routing: Any) -> list[str]:
    """Teams the SLA file names that the routing file does not declare: a policy or calendar for them
    never applies, since hand-offs carry the routing's team names."""
    from crmbridge.yamlconf import load_yaml

    data, locator = load_yaml(sla_file)
    declared = {name.casefold() for name in routing.teams}
    listed = ", ".join(sorted(routing.teams)) or "none"
    warnings = []
    for name, path in _sla_team_names(data if isinstance(data, dict) else {}):
        if name.casefold() not in declared:
            line = locator.line(path)
            key = ".".join(str(p) for p in path)
            warnings.append(f"{sla_file}{f':{line}' if line else ''}: {key}: team {name!r} is not a team of "
                            f"{routing.source} (its teams: {listed})")
    return warnings


def _sla_team_names(data: dict[Any, Any]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    for name in data.get("teams") or {}:
        yield str(name), ("teams", name)
    for ref, owner in (data.get("owners") or {}).items():
        if isinstance(owner, dict) and isinstance(owner.get("team"), str):
            yield owner["team"], ("owners", ref, "team")
    for i, policy in enumerate(data.get("policies") or []):
        teams = ((policy.get("when") or {}).get("teams") if isinstance(policy, dict) else None) or []
        if isinstance(teams, str):
            yield teams, ("policies", i, "when", "teams")
        elif isinstance(teams, list):
            yield from ((str(t), ("policies", i, "when", "teams", j)) for j, t in enumerate(teams))
