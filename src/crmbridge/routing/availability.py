"""Whether a seller can take a lead at a given moment: active, not out of office, working today (and now),
and under their daily cap. Days and hours are the seller's own, in their time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time

from crmbridge.routing.config import WEEKDAYS, Availability, clock_text
from crmbridge.routing.ledger import CachedCounts
from crmbridge.routing.model import SkipCause
from crmbridge.routing.roster import SellerProfile

Problem = tuple[SkipCause, str]
# Days a seller does not work that another calendar knows (public holidays, time off in the SLA file):
# (seller id, seller e-mail, the seller's local date) -> why they are off, or None.
DaysOff = Callable[[str, str | None, date], str | None]


def local_day_start(profile: SellerProfile, now: datetime) -> datetime:
    """Midnight of the seller's current day, as an aware datetime in their zone."""
    local = now.astimezone(profile.zone)
    return datetime.combine(local.date(), time(0), tzinfo=profile.zone)


def assignments_today(profile: SellerProfile, now: datetime, counts: CachedCounts) -> int:
    return counts.count(profile.id, local_day_start(profile, now))


def unavailable(profile: SellerProfile, level: Availability, now: datetime, counts: CachedCounts,
                days_off: DaysOff | None = None) -> Problem | None:
    """Why the seller cannot take a lead under ``level``, or None when they can.

    ``active`` checks only that the user is active; ``available_today`` adds out-of-office days, working
    days and the daily cap; ``available_now`` adds working hours.
    """
    who = profile.label
    if not profile.seller.active:
        return SkipCause.INACTIVE, f"{who} is deactivated in the CRM"
    if level == "active":
        return None
    return calendar_problem(profile, level, now, days_off) or cap_problem(profile, now, counts)


def calendar_problem(profile: SellerProfile, level: Availability, now: datetime,
                     days_off: DaysOff | None = None) -> Problem | None:
    who, settings = profile.label, profile.settings
    local = now.astimezone(profile.zone)
    for off in settings.out_of_office:
        if off.covers(local.date()):
            return SkipCause.OUT_OF_OFFICE, f"{who} is out of office {off.describe()}"
    why = days_off(profile.id, profile.seller.email, local.date()) if days_off is not None else None
    if why:
        return SkipCause.OUT_OF_OFFICE, f"{who} is off today ({why})"
    hours = settings.working_hours
    if hours is None:
        return None
    zone = profile.zone.key
    if WEEKDAYS[local.weekday()] not in hours.days:
        return SkipCause.OFF_DAY, f"{who} does not work on {local:%A}s (works {hours.describe()}, {zone})"
    minute = local.hour * 60 + local.minute
    if level == "available_now" and not hours.start <= minute < hours.end:
        return SkipCause.OUTSIDE_HOURS, (f"{who} is outside working hours (it is {clock_text(minute)} in {zone}; "
                                         f"works {hours.describe()})")
    return None


def cap_problem(profile: SellerProfile, now: datetime, counts: CachedCounts) -> Problem | None:
    cap = profile.settings.daily_cap
    if cap is None:
        return None
    today = assignments_today(profile, now, counts)
    if today >= cap:
        return SkipCause.CAPPED, (f"{profile.label} reached the daily cap ({today} of {cap} today "
                                  f"in {profile.zone.key})")
    return None
