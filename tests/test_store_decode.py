"""Decoding stored records fast gives exactly what pydantic's validation gives, or defers to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmbridge.model import Activity, ActivityKind, ActorKind, Company, LifecycleStage, Person, SourceRecord
from crmbridge.store.decode import DECODERS

text = st.text(max_size=12)
maybe = st.none() | text
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC) | st.just(timezone(timedelta(hours=5, minutes=30))))
values = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False,
                      allow_infinity=False) | text, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(text, inner, max_size=3), max_leaves=8)
common = {"source": text, "source_id": text, "created_at": st.none() | moments, "updated_at": st.none() | moments,
          "archived": st.booleans(), "merged_into": maybe, "merged_ids": st.lists(text, max_size=2),
          "source_ids": st.dictionaries(text, text, max_size=2), "custom": st.dictionaries(text, values, max_size=3),
          "extra": st.dictionaries(text, values, max_size=2)}
records = st.one_of(
    st.builds(Person, **common, email=maybe, title=maybe, company_ids=st.lists(text, max_size=2),
              lifecycle_stage=st.none() | st.sampled_from(LifecycleStage), unsubscribed=st.booleans()),
    st.builds(Company, **common, domain=maybe, employees=st.none() | st.integers(0, 10**6),
              annual_revenue=st.none() | st.floats(0, 1e12), technologies=st.lists(text, max_size=3)),
    st.builds(Activity, **common, kind=st.sampled_from(ActivityKind), occurred_at=moments,
              actor=st.none() | st.sampled_from(ActorKind), person_ids=st.lists(text, max_size=2),
              attributes=st.dictionaries(text, values, max_size=3)),
)


def _same(a: SourceRecord, b: SourceRecord) -> None:
    assert type(a) is type(b) and a == b
    assert [(k, type(v)) for k, v in a.__dict__.items()] == [(k, type(v)) for k, v in b.__dict__.items()]
    assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__
    assert (a.__pydantic_extra__, a.__pydantic_private__) == (b.__pydantic_extra__, b.__pydantic_private__)
    for name, value in a.__dict__.items():
        if isinstance(value, datetime):
            assert value.tzinfo is b.__dict__[name].tzinfo


@given(records)
def test_a_stored_record_decodes_to_what_validation_gives(record: SourceRecord) -> None:
    data = record.model_dump_json()
    _same(DECODERS[type(record)](data), type(record).model_validate_json(data))


@pytest.mark.parametrize("data", [
    # keys in another order, a missing key, an int where a float is, a time with an offset, a naive time
    '{"kind":"call","source":"s","source_id":"1","occurred_at":"2026-01-01T00:00:00Z"}',
    Company(source="s", source_id="1").model_dump_json().replace('"annual_revenue":null', '"annual_revenue":5'),
    Activity(source="s", source_id="1", kind=ActivityKind.CALL, occurred_at=datetime(2026, 1, 1, tzinfo=UTC))
    .model_dump_json().replace("2026-01-01T00:00:00Z", "2026-01-01T02:00:00+02:00"),
])
def test_json_of_another_shape_is_left_to_validation(data: str) -> None:
    cls = Company if "annual_revenue" in data else Activity
    _same(DECODERS[cls](data), cls.model_validate_json(data))


def test_json_validation_refuses_is_refused_alike() -> None:
    bad = Activity(source="s", source_id="1", kind=ActivityKind.CALL, occurred_at=datetime(2026, 1, 1, tzinfo=UTC)
                   ).model_dump_json().replace('"call"', '"telepathy"')
    with pytest.raises(ValueError, match="kind"):
        DECODERS[Activity](bad)
