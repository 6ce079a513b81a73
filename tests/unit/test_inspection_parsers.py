"""Every device parser with valid and invalid input; no byte string crashes one."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspection.devices import dws, mtsics, reader
from inspection.devices.files import dicom_tags, parse_sidecar
from inspection.events import Unreadable


@pytest.mark.parametrize(("line", "kind", "grams"), [
    (b"S S     100.00 g", "stable", 100),
    (b"S S      1.250 kg", "stable", 1250),
    (b"S D      99.50 g", "dynamic", 100),
    (b"S S      -0.02 g", "stable", 0),
    (b"S S 0.4 g", "stable", 0),
    (b"S I", "busy", 0),
    (b"S +", "overload", 0),
    (b"S -", "underload", 0),
    (b"ES", "syntax_error", 0),
    (b"EL", "logical_error", 0),
    (b"ET", "transmission_error", 0),
    (b"S S    100000.000 kg", "stable", 100_000_000),
])
def test_mtsics_answers(line: bytes, kind: str, grams: int) -> None:
    assert mtsics.parse(line) == mtsics.Answer(kind, grams)


@pytest.mark.parametrize(("line", "reason"), [
    (b"S X     100.00 g", "UNKNOWN_STATUS"),
    (b"S Q", "UNKNOWN_STATUS"),
    (b"S S     100.00 lb", "UNKNOWN_UNIT"),
    (b"S S     100.00", "MALFORMED_LINE"),
    (b"S S     1.0.0 g", "MALFORMED_LINE"),
    (b"S S 100000.001 kg", "OUT_OF_RANGE"),
    (b"hello", "MALFORMED_LINE"),
    (b"\xfe\x01garbled", "MALFORMED_LINE"),
    (b"S S  \x07100.00 g", "MALFORMED_LINE"),
    (b"", "MALFORMED_LINE"),
])
def test_mtsics_bad_answers(line: bytes, reason: str) -> None:
    answer = mtsics.parse(line)
    assert isinstance(answer, Unreadable) and answer.reason == reason


def test_mtsics_formats_what_it_parses() -> None:
    assert mtsics.format_weight("S", 100) == b"S S     100.00 g\r\n"
    assert mtsics.parse(mtsics.format_weight("D", 2345, "kg").rstrip()) == mtsics.Answer("dynamic", 2345)
    assert mtsics.command("SIR") == b"SIR\r\n"
    with pytest.raises(ValueError):
        mtsics.command("Z")


def test_dws_record_round_trip() -> None:
    record = dws.format_record(42, "SF1234567890", (300, 200, 100), 1250)
    assert len(record) == dws.RECORD_LEN
    assert dws.parse_record(record) == dws.Record(42, "SF1234567890", 300, 200, 100, 1250, "G")
    no_read = dws.parse_record(dws.format_record(43, "", (1, 2, 3), 4, status="N"))
    assert isinstance(no_read, dws.Record) and no_read.waybill == "" and no_read.status == "N"


def _resum(body: bytes) -> bytes:
    return bytes([dws.STX]) + body + dws.checksum(body) + bytes([dws.ETX])


@pytest.mark.parametrize(("frame", "reason"), [
    (dws.format_record(1, "SF1234567890", (3, 2, 1), 5)[:40], "TRUNCATED_RECORD"),
    (dws.format_record(1, "SF1234567890", (3, 2, 1), 5)[:-3] + b"00\x03", "BAD_CHECKSUM"),
    (_resum(dws.format_record(1, "SF1234567890", (3, 2, 1), 5)[1:53] + b"Z"), "UNKNOWN_STATUS"),
    (_resum(b"X" + dws.format_record(1, "SF1234567890", (3, 2, 1), 5)[2:54]), "MALFORMED_RECORD"),
    (_resum(dws.format_record(1, "sf1234567890", (3, 2, 1), 5)[1:54]), "MALFORMED_RECORD"),
    (_resum(dws.format_record(1, "SF1234567890", (3, 2, 1), 5)[1:30] + b"00x003" + b"0" * 24), "MALFORMED_RECORD"),
    (dws.format_record(1, "SF1234567890", (100_001, 2, 1), 5), "OUT_OF_RANGE"),
    (dws.format_record(1, "SF1234567890", (3, 2, 1), 5) + b"\x03", "MALFORMED_RECORD"),
])
def test_dws_bad_records(frame: bytes, reason: str) -> None:
    parsed = dws.parse_record(frame)
    assert isinstance(parsed, Unreadable) and parsed.reason == reason, parsed


def test_dws_framer_cuts_records_truncations_and_junk() -> None:
    good = dws.format_record(1, "SF1234567890", (3, 2, 1), 5)
    framer = dws.Framer()
    frames = framer.feed(b"\r\n" + good + b"\r\n" + good[:20] + good + b"noise")
    assert [kind for kind, _ in frames] == ["record", "truncated", "record"]
    assert frames[1][1] == good[:20]
    assert framer.cut() == [("junk", b"noise")]
    assert framer.feed(good[:10]) == [] and framer.cut() == [("truncated", good[:10])]
    too_long = framer.feed(b"\x02" + b"A" * 80)
    assert too_long[0][0] == "junk"


@pytest.mark.parametrize(("line", "expected"), [
    (b"SF1234567890", "SF1234567890"),
    (b"  JD0001234567 ", "JD0001234567"),
    (b"NOREAD", "NO_READ"),
    (b"sf1234567890", "NOT_A_WAYBILL"),
    (b"SF12", "NOT_A_WAYBILL"),
    (b"\xff\xfe\x00\x07SF12", "MALFORMED_LINE"),
    (b"SF12345\x0767890", "MALFORMED_LINE"),
    (b"A" * 300, "MALFORMED_LINE"),
])
def test_reader_lines(line: bytes, expected: str) -> None:
    parsed = reader.parse(line)
    assert (parsed.reason if isinstance(parsed, Unreadable) else parsed) == expected


def test_sidecar_valid() -> None:
    raw = json.dumps({"waybill": "SF1234567890", "findings": [
        {"category": "BATTERY", "description": "lithium cells", "confidence": 0.9, "alarm": True}]}).encode()
    waybill, findings = parse_sidecar(raw)  # type: ignore[misc]
    assert waybill == {"waybill": "SF1234567890"}
    assert [(f.category, f.alarm, round(f.confidence, 2)) for f in findings] == [("BATTERY", True, 0.9)]
    assert parse_sidecar(b"{}") == ({}, [])


@pytest.mark.parametrize("raw", [
    b"{not json", b"[]", b'{"waybill": 5}', b'{"waybill": "short"}', b'{"extra": 1}',
    b'{"findings": [{"category": ""}]}', b'{"findings": [{"category": "X", "confidence": 1.5}]}',
    b'{"findings": [{"category": "X", "confidence": true}]}', b'{"findings": [{"category": "X", "alarm": "yes"}]}',
    b'{"findings": [{"category": "X", "description": "' + b"d" * 201 + b'"}]}',
    json.dumps({"findings": [{"category": "X"}] * 33}).encode(), b"\xff\xfe", b"[" * 100000,
])
def test_sidecar_invalid(raw: bytes) -> None:
    parsed = parse_sidecar(raw)
    assert isinstance(parsed, Unreadable) and parsed.reason == "BAD_SIDECAR"


def test_dicom_tags_of_a_dicos_file() -> None:
    from inspection.simulators.files import dicos_bytes, xray_pixels

    content = dicos_bytes("SF1234567890", xray_pixels(1))
    waybill, at = dicom_tags(content)  # type: ignore[misc]
    assert waybill == "SF1234567890" and at is not None and at.year == 2026
    bad = dicom_tags(dicos_bytes("not a waybill", xray_pixels(1)))
    assert isinstance(bad, Unreadable) and bad.reason == "BAD_WAYBILL"
    assert isinstance(dicom_tags(b"plain text, no DICOM at all"), Unreadable)


# No byte string crashes a parser: each answers a reading or a typed unreadable reason.
@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_no_bytes_crash_mtsics(raw: bytes) -> None:
    assert isinstance(mtsics.parse(raw), (mtsics.Answer, Unreadable))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 56), st.integers(0, 255))
def test_no_bytes_crash_dws(raw: bytes, at: int, byte: int) -> None:
    mutated = bytearray(dws.format_record(7, "SF1234567890", (3, 2, 1), 5))
    mutated[at] = byte
    for frame in (raw, bytes(mutated)):
        assert isinstance(dws.parse_record(frame), (dws.Record, Unreadable))
        framer = dws.Framer()
        for kind, data in framer.feed(frame) + framer.cut():
            assert isinstance(dws.read_frame(kind, data), (dws.Record, Unreadable))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_no_bytes_crash_reader(raw: bytes) -> None:
    parsed = reader.parse(raw)
    assert isinstance(parsed, Unreadable) or (isinstance(parsed, str) and reader.is_waybill(parsed))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["waybill", "findings", "category", "description", "confidence", "alarm", "x"]), inner,
        max_size=4)).map(lambda doc: json.dumps(doc).encode())))
def test_no_bytes_crash_sidecar(raw: bytes) -> None:
    parsed = parse_sidecar(raw)
    assert isinstance(parsed, (Unreadable, tuple))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_no_bytes_crash_dicom_tags(raw: bytes) -> None:
    assert isinstance(dicom_tags(b"\0" * 128 + b"DICM" + raw), (tuple, Unreadable))
