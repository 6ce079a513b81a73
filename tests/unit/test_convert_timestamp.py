"""The Timestamp converter agrees with protobuf's own FromDatetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from gateway.rpc.convert.common import from_timestamp, timestamp

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES))
def test_same_as_from_datetime(at: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(at.astimezone(UTC))
    assert timestamp(at) == expected
    assert from_timestamp(timestamp(at), True) == at


def test_none_is_the_empty_timestamp() -> None:
    assert timestamp(None) == Timestamp()
