"""Property-based tests of the value parsers every mapping relies on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from crmbridge.mapping import transforms as tf

instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                        timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(instants, offsets)
def test_epoch_milliseconds_and_iso_strings_of_one_instant_parse_equal(instant: datetime, zone: timezone) -> None:
    ms = (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)  # exact, unlike float math
    as_iso = instant.astimezone(zone).isoformat()
    assert tf.to_datetime(str(ms)) == tf.to_datetime(ms) == tf.to_datetime(as_iso) == instant


@given(instants)
def test_epoch_seconds_are_not_mistaken_for_milliseconds(instant: datetime) -> None:
    seconds = int(instant.timestamp())
    assert tf.to_datetime(seconds) == instant.replace(microsecond=0)


# Epoch values within four months of 1970 are ambiguous between seconds and milliseconds.
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1)).filter(
    lambda d: not date(1969, 9, 1) <= d <= date(1970, 5, 1))


@given(days, offsets)
def test_a_date_only_value_never_shifts_a_day(day: date, zone: timezone) -> None:
    midnight_utc_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    local_midnight = datetime(day.year, day.month, day.day, tzinfo=zone).isoformat()
    assert tf.to_date(day.isoformat()) == day
    assert tf.to_date(str(midnight_utc_ms)) == day
    assert tf.to_date(local_midnight) == day


local_parts = st.from_regex(r"[A-Za-z0-9._%+-]{1,20}", fullmatch=True)
hosts = st.from_regex(r"[A-Za-z0-9-]{1,15}\.[A-Za-z]{2,6}", fullmatch=True).filter(
    lambda h: not h.lower().startswith("www."))  # "www.io" is a host whose name is www, not a prefix


@given(local_parts, hosts, st.sampled_from(["", " ", "  \t"]))
def test_email_normalisation_ignores_case_and_surrounding_space_and_is_idempotent(
        local: str, host: str, pad: str) -> None:
    email = f"{pad}{local}@{host}{pad}"
    once = tf.normalise_email(email)
    assert once == f"{local}@{host}".lower()
    assert tf.normalise_email(once) == once
    assert tf.normalise_email(email.upper()) == once


@given(hosts, st.sampled_from(["", "http://", "https://", "HTTPS://"]), st.sampled_from(["", "www.", "WWW."]),
       st.sampled_from(["", "/", "/about?x=1", ":443/path", "."]))
def test_every_way_of_writing_a_domain_normalises_to_the_bare_host(host: str, scheme: str, www: str,
                                                                    tail: str) -> None:
    written = f"{scheme}{www}{host}{tail}"
    assert tf.normalise_domain(written) == host.lower()
    assert tf.normalise_domain(tf.normalise_domain(written)) == host.lower()


@given(st.one_of(st.none(), st.just(""), st.just("   "), st.just([])))
def test_empty_values_are_missing_for_every_transform(empty: object) -> None:
    for name, transform in tf.SIMPLE.items():
        if name == "present":
            assert transform(empty) is False
        elif name == "id_list":
            assert transform(empty) == []
        else:
            assert transform(empty) is None, name
