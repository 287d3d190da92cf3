"""The sellers of one decision, joined with their settings from the routing file: weight, cap, time zone,
calendar and teams. Resolves the file's references (user ids, e-mails, team names) to sellers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crmbridge.routing.model import Seller

if TYPE_CHECKING:
    from crmbridge.routing.config import RoutingConfig, SellerSettings


@dataclass(frozen=True)
class SellerProfile:
    seller: Seller
    settings: SellerSettings
    zone: ZoneInfo
    teams: frozenset[str]

    @property
    def id(self) -> str:
        return self.seller.id

    @property
    def label(self) -> str:
        return self.seller.label

    @property
    def weight(self) -> Fraction:
        # Exact arithmetic so equal loads tie exactly and ties fall to the id, never to rounding.
        return Fraction(str(self.settings.weight))


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


class Roster:
    """Everyone a decision may consider, keyed by id, with e-mail and team look-ups."""

    def __init__(self, config: RoutingConfig, sellers: Sequence[Seller]) -> None:
        from crmbridge.routing.config import SellerSettings

        self.config = config
        seen: set[str] = set()
        for seller in sellers:
            if seller.id in seen:
                raise ValueError(f"seller id {seller.id!r} appears twice")
            seen.add(seller.id)
        ordered = sorted(sellers, key=lambda s: s.id)
        by_email_setting = {ref.casefold(): s for ref, s in config.sellers.items() if "@" in ref}
        default_zone = ZoneInfo(config.default_timezone)
        self._ids = {s.id: s for s in ordered}
        self._by_email: dict[str, Seller] = {}
        for seller in ordered:
            if seller.email:
                self._by_email.setdefault(seller.email.casefold(), seller)
        members = {name.casefold(): {s.id for s in map(self._lookup, team.members) if s}
                   for name, team in config.teams.items()}
        self.profiles: dict[str, SellerProfile] = {}
        for seller in ordered:
            settings = config.sellers.get(seller.id) or (
                by_email_setting.get(seller.email.casefold()) if seller.email else None) or SellerSettings()
            zone = _zone(settings.timezone) or _zone(seller.timezone) or default_zone
            teams = {t.casefold() for t in (*seller.teams, *settings.teams)}
            teams |= {team for team, ids in members.items() if seller.id in ids}
            self.profiles[seller.id] = SellerProfile(seller, settings, zone, frozenset(teams))

    def _lookup(self, ref: str) -> Seller | None:
        return self._ids.get(ref) or self._by_email.get(ref.casefold())

    def resolve(self, ref: str) -> SellerProfile | None:
        """The seller a reference names: a user id, else an e-mail address (any case)."""
        if ref in self.profiles:
            return self.profiles[ref]
        seller = self._by_email.get(ref.casefold())
        return self.profiles[seller.id] if seller else None

    def everyone(self) -> list[SellerProfile]:
        return list(self.profiles.values())

    def team(self, name: str) -> list[SellerProfile]:
        key = name.casefold()
        return [p for p in self.profiles.values() if key in p.teams]

    def pool(self, refs: Iterable[str]) -> tuple[list[SellerProfile], list[str]]:
        """The sellers a list of references names (sorted by id, once each), and the references that match nobody."""
        found: dict[str, SellerProfile] = {}
        unknown: list[str] = []
        for ref in refs:
            profile = self.resolve(ref)
            if profile is None:
                unknown.append(ref)
            else:
                found[profile.id] = profile
        return [found[k] for k in sorted(found)], unknown

    def audit(self) -> list[str]:
        problems: list[str] = []
        config = self.config

        def check(ref: str, where: str, *, needs_active: bool = True) -> None:
            profile = self.resolve(ref)
            if profile is None:
                problems.append(f"{where}: no CRM user has the id or e-mail {ref!r}")
            elif needs_active and not profile.seller.active:
                problems.append(f"{where}: {profile.label} ({ref}) is deactivated in the CRM")

        for ref in config.sellers:
            check(ref, f"sellers.{ref}", needs_active=False)
        for name, team in config.teams.items():
            for i, ref in enumerate(team.members):
                check(ref, f"teams.{name}.members.{i}")
        for i, rule in enumerate(config.rules):
            for key in ("owner", "pool"):
                value = getattr(rule, key, None)
                for j, ref in enumerate([value] if isinstance(value, str) else value or []):
                    check(ref, f"rules.{i}.{key}" + (f".{j}" if key == "pool" else ""))
            team = getattr(rule, "team", None)
            if team and not any(p.seller.active for p in self.team(team)):
                problems.append(f"rules.{i}.team: team {team!r} has no active member")
        if config.fallback.owner:
            check(config.fallback.owner, "fallback.owner")
        for seller in self.profiles.values():
            tz = seller.seller.timezone
            if tz and _zone(tz) is None and not seller.settings.timezone:
                problems.append(f"user {seller.label}: the CRM's time zone {tz!r} is unknown; "
                                f"using {config.default_timezone}")
        return problems
