"""Canonical record bytes: RFC 8785, one byte form per record, and JSON values only."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.evidence.records import (
    RecordError,
    canonical_bytes,
    format_time,
    parse_time,
    record_label,
    record_leaf_hash,
)


def test_the_rfc_8785_example_canonicalises_as_the_rfc_prints_it() -> None:
    # RFC 8785 section 3.2.2's input, with our type member added (it sorts last).
    source = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
              '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
              '"literals": [null, true, false], "type": "audit"}')
    expected = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
                '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/","type":"audit"}')
    assert canonical_bytes(json.loads(source)) == expected.encode()


def test_members_are_sorted_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is D83D DE00 in UTF-16, below U+FB01; by code point it would come after.
    found = canonical_bytes({"type": "audit", "\ufb01": 1, "\U0001f600": 2})
    assert found == '{"type":"audit","\U0001f600":2,"\ufb01":1}'.encode()


def test_one_record_has_one_byte_form_whatever_the_member_order() -> None:
    a = {"type": "shipment_event", "waybill_no": "SF1234567890", "seq": 2, "details": {"b": 1, "a": [1, 2]}}
    b = {"details": {"a": [1, 2], "b": 1}, "seq": 2, "waybill_no": "SF1234567890", "type": "shipment_event"}
    assert canonical_bytes(a) == canonical_bytes(b)
    assert canonical_bytes(a) == (b'{"details":{"a":[1,2],"b":1},"seq":2,"type":"shipment_event",'
                                  b'"waybill_no":"SF1234567890"}')
    assert canonical_bytes(a) != canonical_bytes({**a, "seq": 3})


def test_the_leaf_hash_is_the_rfc_6962_leaf_of_the_canonical_bytes() -> None:
    record = {"type": "audit", "audit_id": 7}
    assert record_leaf_hash(record) == hashlib.sha256(b"\x00" + b'{"audit_id":7,"type":"audit"}').digest()


@pytest.mark.parametrize(("record", "reason"), [
    ([1, 2], "a JSON object"),
    ({"seq": 1}, "type is one of"),
    ({"type": "parcel"}, "type is one of"),
    ({"type": "audit", "x": float("nan")}, r"record\.x: nan"),
    ({"type": "audit", "x": [1, float("inf")]}, r"record\.x\[1\]: inf"),
    ({"type": "audit", "x": 2**53}, "beyond the integers"),
    ({"type": "audit", "x": b"\x00"}, "a bytes is not a JSON value"),
    ({"type": "audit", "x": (1, 2)}, "a tuple is not a JSON value"),
    ({"type": "audit", "x": datetime(2026, 1, 1, tzinfo=UTC)}, "a datetime is not a JSON value"),
    ({"type": "audit", "x": {1: "a"}}, "key 1 is not a string"),
    ({"type": "audit", "x": "\ud800"}, "cannot be canonicalised"),
])
def test_what_json_cannot_hold_is_refused_by_name(record: Any, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        canonical_bytes(record)


def test_the_largest_safe_integer_and_finite_floats_are_kept() -> None:
    found = canonical_bytes({"type": "audit", "n": 2**53 - 1, "f": 0.1})
    assert found == b'{"f":0.1,"n":9007199254740991,"type":"audit"}'


def test_times_are_utc_with_microseconds_and_a_z() -> None:
    at = datetime(2026, 11, 28, 18, 0, 0, 5, tzinfo=timezone(timedelta(hours=8)))
    assert format_time(at) == "2026-11-28T10:00:00.000005Z"
    assert parse_time("2026-11-28T10:00:00.000005Z") == at
    with pytest.raises(RecordError, match="time zone"):
        format_time(datetime(2026, 11, 28))
    for bad in ("2026-11-28T10:00:00Z", "2026-11-28 10:00:00.000000Z", None):
        with pytest.raises(RecordError, match="is not a time"):
            parse_time(bad)


def test_labels_name_the_waybill_and_seq_or_the_record_id() -> None:
    assert record_label({"type": "shipment_event", "waybill_no": "SF1", "seq": 4}) == "SF1/4"
    assert record_label({"type": "audit", "audit_id": 9}) == "audit 9"
    assert record_label({"type": "verification", "verification_id": 3}) == "verification 3"
    assert record_label({"type": "scan_event", "event_id": "dws-1-7-2", "waybill_no": "SF1"}) == "event dws-1-7-2"
    assert record_label({"type": "audit"}) == "-"


_json_leaves = (st.none() | st.booleans() | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
                | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
                | st.sampled_from(["\x00\x07\x08\t\n\x0b\x0c\r\x1f", "\x7f\u2028\u2029\ufeff", '"\\/',
                                  "\U0001f600\ue000"]))
_names = st.text(max_size=6) | st.sampled_from(["\ue000", "\U0001f600", "a", "A", "_", "~"])
_values = st.recursive(_json_leaves, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_names, inner, max_size=4), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(body=st.dictionaries(_names, _values, max_size=6), with_float=st.booleans())
def test_the_fast_path_writes_exactly_what_rfc_8785_writes(body: dict[str, Any], with_float: bool) -> None:
    # Plain records take the standard library's encoder; floats and non-ASCII names take rfc8785. Either way
    # the bytes are RFC 8785's (rfc8785 here is the reference), so no leaf ever depends on the path taken.
    record = {**body, "type": "audit", **({"f": 0.1} if with_float else {})}
    assert canonical_bytes(record) == rfc8785.dumps(record)


def test_an_unpaired_surrogate_is_refused_on_the_fast_path_too() -> None:
    with pytest.raises(RecordError):
        canonical_bytes({"type": "audit", "note": "bad \ud800 half"})
