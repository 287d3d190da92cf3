"""Value transforms a mapping can name: each turns one vendor value into one canonical value.

Every transform returns ``None`` for a missing or empty value, and raises ``ValueError`` for a value
it cannot read (the record is then quarantined rather than stored wrong). They are pure and cheap:
mapping runs on every record of every sync.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crmbridge.mapping.geo import country_code, region_of

Transform = Callable[[Any], Any]

_EMPTY = (None, "", [], {})
_MISSING = object()
_TRUE = frozenset({"true", "1", "yes", "y", "on", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "off", "f"})
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DIGITS = re.compile(r"^-?\d+(\.\d+)?$")


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value or value.isspace()
    return value in _EMPTY


def to_string(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if _blank(value):
        return None
    return str(value).strip() or None


def to_lower(value: Any) -> str | None:
    text = to_string(value)
    return text.lower() if text is not None else None


def to_upper(value: Any) -> str | None:
    text = to_string(value)
    return text.upper() if text is not None else None


def normalise_email(value: Any) -> str | None:
    """Lower-cased, trimmed address; ``None`` for anything that is not an address at all."""
    text = to_string(value)
    if text is None:
        return None
    text = text.lower().strip("<>").strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or " " in text:
        return None
    return f"{local}@{domain.rstrip('.')}"


def normalise_domain(value: Any) -> str | None:
    """``https://WWW.Example.com/about`` and ``example.com.`` both become ``example.com``."""
    text = to_string(value)
    if text is None:
        return None
    text = text.lower()
    if "@" in text:
        text = text.rpartition("@")[2]
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.split(":", 1)[0].strip().rstrip(".")
    while text.startswith("www."):
        text = text[4:]
    return text or None


def to_integer(value: Any) -> int | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a whole number: {value!r}")
    if isinstance(value, int):
        return value
    number = float(str(value).replace(",", "").strip())
    if not number.is_integer():
        return round(number)
    return int(number)


def to_number(value: Any) -> float | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    return float(str(value).replace(",", "").strip()) if not isinstance(value, int | float) else float(value)


def to_boolean(value: Any) -> bool | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a yes/no value: {value!r}")


def is_present(value: Any) -> bool:
    """True when the vendor holds any value at all (a bounce reason, an opt-out date…)."""
    return not _blank(value) and str(value).strip().lower() not in _FALSE


def _from_epoch(number: float) -> datetime:
    # Vendors mix seconds and milliseconds. 10^10 seconds is the year 2286, so a larger magnitude is
    # milliseconds; only milliseconds within four months of 1970-01-01 would be misread.
    if abs(number) >= 1e10:
        # Whole milliseconds in integers: dividing a float by 1000 can land a millisecond off.
        if float(number).is_integer():
            whole, millis = divmod(int(number), 1000)
            return datetime.fromtimestamp(whole, tz=UTC) + timedelta(milliseconds=millis)
        number = number / 1000
    return datetime.fromtimestamp(number, tz=UTC)


def to_datetime(value: Any) -> datetime | None:
    """ISO 8601 (with ``Z``, an offset, or none = UTC) or epoch seconds/milliseconds → aware UTC."""
    if _blank(value):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    text = str(value).strip()
    if text[:1].isdigit() and "-" in text[:5]:  # the usual ISO form; skip the epoch check
        parsed = datetime.fromisoformat(text[:-1] + "Z" if text.endswith("z") else text)
    elif _DIGITS.match(text):
        return _from_epoch(float(text))
    else:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_date(value: Any) -> date | None:
    """A calendar day, never shifted: ``2024-05-01`` stays the 1st whatever the offset or zone.

    An ISO timestamp keeps the day it was written with; an epoch value (CRMs that send date
    properties as UTC midnight in ms) is read in UTC, where it names the intended day.
    """
    if _blank(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float):
        return _from_epoch(float(value)).date()
    text = str(value).strip()
    if _DATE_ONLY.match(text):
        return date.fromisoformat(text)
    if _DIGITS.match(text):
        return _from_epoch(float(text)).date()
    return datetime.fromisoformat(text.replace("z", "Z")).date()


def id_list(value: Any) -> list[str]:
    """``"12;13"``, ``"12,13"``, ``[12, 13]`` → ``["12", "13"]``."""
    if _blank(value):
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if not _blank(v)]
    return [part.strip() for part in re.split(r"[;,]", str(value)) if part.strip()]


def country(value: Any) -> str | None:
    text = to_string(value)
    return None if text is None else country_code(text)


def region(value: Any) -> str | None:
    code = country(value)
    return None if code is None else region_of(code)


SIMPLE: dict[str, Transform] = {
    "string": to_string,
    "lower": to_lower,
    "upper": to_upper,
    "email": normalise_email,
    "domain": normalise_domain,
    "integer": to_integer,
    "number": to_number,
    "boolean": to_boolean,
    "present": is_present,
    "datetime": to_datetime,
    "date": to_date,
    "id_list": id_list,
    "country": country,
    "region": region,
    "raw": lambda value: None if _blank(value) else value,
}


def list_of(separator: str = ";", lower: bool = False) -> Transform:
    """A multi-value field (``"aws;Slack"``) as a list of trimmed items."""

    def split(value: Any) -> list[str]:
        if _blank(value):
            return []
        items = value if isinstance(value, list | tuple) else str(value).split(separator)
        out = [str(i).strip() for i in items if str(i).strip()]
        return [i.lower() for i in out] if lower else out

    return split


def enum(values: Mapping[str, Any], *, match: str = "exact", default: Any = None,
         passthrough: bool = False) -> Transform:
    """Normalise vendor codes to canonical ones; ``match`` is exact (case-insensitive) or regex."""
    if match == "regex":
        patterns = [(re.compile(k, re.IGNORECASE), v) for k, v in values.items()]

        def by_pattern(value: Any) -> Any:
            text = to_string(value)
            if text is None:
                return None
            for pattern, target in patterns:
                if pattern.search(text):
                    return target
            return text.lower() if passthrough else default

        return by_pattern
    table = {str(k).strip().lower(): v for k, v in values.items()}

    def lookup(value: Any) -> Any:
        text = to_lower(value)
        if text is None:
            return None
        found = table.get(text, _MISSING)
        if found is not _MISSING:
            return found
        return text if passthrough else default

    return lookup


def chain(*steps: Transform) -> Transform:
    def run(value: Any) -> Any:
        for step in steps:
            value = step(value)
            if value is None:
                return None
        return value

    return run
