"""The device protocol parsers and the image readers under mutated real input: valid frames and real JPEG, PNG
and DICOM files (made here with OpenCV and pydicom), bit-flipped, truncated, spliced and cut into arbitrary
chunks. Each entry point answers what its module documents (a reading, an Unreadable reason, ImageUnreadable,
None) and nothing else: no other exception, no hang (each example is timed), no crash of the process.

Entry points: inspection.devices.mtsics.parse, dws.parse_record / Framer / read_frame, reader.parse,
files.file_event / dicom_tags / parse_sidecar, inspection.vision.load.load_image, inspection.vision.reader
.read_codes, and gateway.core.photos (image_size, image_fingerprint, listing_of, media_type).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.core import photos
from inspection.config import Connection, Device
from inspection.devices import dws, mtsics, reader
from inspection.devices.files import dicom_tags, file_event, parse_sidecar
from inspection.events import Unreadable
from inspection.vision.load import ImageUnreadable, load_image
from inspection.vision.reader import read_codes
from tests.fuzz.conftest import fuzz_settings
from tests.fuzz.strategies import corrupt_images, real_dicom, real_image

SLOW_S = 10.0  # an example that takes longer is a hang for this purpose (the machine is shared and loaded)
XRAY = Device("xray-1", "folder", Connection(), "HUB", {"kind": "xray"})
CAMERA = Device("camera-1", "folder", Connection(), "HUB", {"kind": "camera", "goods": True})

MTSICS_LINES = [mtsics.format_weight("S", 100.0).rstrip(b"\r\n"), mtsics.format_weight("D", 2.5, "kg").rstrip(),
                b"S I", b"S +", b"S -", b"ES", b"EL", b"ET", b"S S      0.00 g"]
DWS_RECORDS = [dws.format_record(7, "SF1234567890", (300, 200, 100), 1500),
               dws.format_record(999999, "", (0, 0, 0), 0, "N"),
               dws.format_record(1, "JD0001234567890", (100000, 1, 1), 9_999_999)]
READER_LINES = [b"SF1234567890", b"NOREAD", b"  YT9876543210  "]
SIDECAR = b'{"waybill": "SF1234567890", "findings": [{"category": "BATTERY", "description": "cells", ' \
          b'"confidence": 0.93, "alarm": true}]}'


@st.composite
def mutated(draw: st.DrawFn, good: bytes) -> bytes:
    """A real frame with bits flipped, bytes changed, inserted or dropped, cut short, or doubled."""
    data = bytearray(good)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(("flip", "set", "insert", "delete", "truncate", "double")))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if how == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "delete" and data:
            del data[at:at + draw(st.integers(1, 8))]
        elif how == "truncate":
            del data[at:]
        elif how == "double":
            data.extend(bytes(data))
    return bytes(data)


def _timed(started: float) -> None:
    assert time.monotonic() - started < SLOW_S, "took too long: a hang for this purpose"


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


@fuzz_settings(300)
@given(st.sampled_from(MTSICS_LINES).flatmap(mutated))
@example(b"S S  1e999 g").via("an exponent Decimal would take")
@example(b"S S  " + b"9" * 400 + b" g").via("a huge number")
def test_mtsics_answers_a_reading_or_unreadable(line: bytes) -> None:
    started = time.monotonic()
    parsed = mtsics.parse(line)
    _timed(started)
    assert isinstance(parsed, mtsics.Answer | Unreadable)
    if isinstance(parsed, mtsics.Answer) and parsed.is_weight:
        assert abs(parsed.grams) <= mtsics.MAX_GRAMS


@fuzz_settings(300)
@given(st.sampled_from(DWS_RECORDS), st.integers(1, 55), st.integers(0, 7))
def test_one_bit_flipped_inside_a_dws_record_is_never_a_reading(good: bytes, at: int, bit: int) -> None:
    # The XOR checksum covers bytes 1 to 53 and the checksum digits themselves are exact upper-case hex: a
    # single flipped bit anywhere between STX and ETX can never give a reading.
    data = bytearray(good)
    data[at] ^= 1 << bit
    parsed = dws.parse_record(bytes(data))
    assert isinstance(parsed, Unreadable), (bytes(data), parsed)


@fuzz_settings(200)
@given(st.lists(st.one_of(st.sampled_from(DWS_RECORDS), st.sampled_from(DWS_RECORDS).flatmap(mutated),
                          st.binary(max_size=20), st.just(b"\r\n")), min_size=1, max_size=6).map(b"".join),
       st.lists(st.integers(0, 10_000), max_size=8))
def test_dws_framing_does_not_depend_on_how_the_bytes_arrive(stream: bytes, cuts: list[int]) -> None:
    whole = dws.Framer()
    at_once = whole.feed(stream) + whole.cut()
    pieces = dws.Framer()
    in_chunks = [f for chunk in _chunks(stream, cuts) for f in pieces.feed(chunk)] + pieces.cut()
    assert in_chunks == at_once
    for kind, data in at_once:
        parsed = dws.read_frame(kind, data)
        assert isinstance(parsed, dws.Record | Unreadable)
        if isinstance(parsed, dws.Record):
            assert data in DWS_RECORDS or dws.format_record(
                parsed.sequence, parsed.waybill, (parsed.length_mm, parsed.width_mm, parsed.height_mm),
                parsed.weight_g, parsed.status) == data


@fuzz_settings(300)
@given(st.sampled_from(READER_LINES).flatmap(mutated))
def test_reader_lines_are_a_waybill_or_unreadable(line: bytes) -> None:
    parsed = reader.parse(line)
    assert isinstance(parsed, Unreadable) or (isinstance(parsed, str) and reader.is_waybill(parsed))


@fuzz_settings(200)
@given(mutated(SIDECAR))
def test_sidecars_are_findings_or_unreadable(raw: bytes) -> None:
    assert isinstance(parse_sidecar(raw), Unreadable | tuple)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the headers it is fed here
@fuzz_settings(120)
@given(st.one_of(corrupt_images(), st.builds(real_dicom).flatmap(mutated)))
@example(real_dicom()[:152]).via("found: a DICOM cut inside its meta group raised struct.error")
@example(real_dicom()[:155]).via("found: the same, three bytes on")
def test_image_readers_answer_pixels_or_their_documented_refusal(data: bytes) -> None:
    started = time.monotonic()
    try:
        pixels = load_image(data)
    except ImageUnreadable as refused:
        assert str(refused) and "Traceback" not in str(refused)
        pixels = None
    if pixels is not None:
        assert isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8 and pixels.size > 0
        codes = read_codes(pixels)
        assert isinstance(codes, list)
    size = photos.image_size(data)
    assert size is None or (len(size) == 2 and all(isinstance(n, int) for n in size))
    for fingerprinted in (photos.image_fingerprint(data), photos.listing_of(data)):
        assert fingerprinted is None or isinstance(fingerprinted, int | tuple)
    assert photos.media_type(data) in ("", "image/jpeg", "image/png", "application/dicom")
    if data[128:132] == b"DICM":
        assert isinstance(dicom_tags(data), tuple | Unreadable)  # documented: never raises
    _timed(started)


@pytest.mark.filterwarnings("ignore::UserWarning")
@fuzz_settings(80)
@given(st.one_of(corrupt_images(), st.builds(real_dicom).flatmap(mutated)), st.booleans(),
       st.one_of(st.none(), st.just(SIDECAR), mutated(SIDECAR)))
def test_a_folder_file_is_an_event_read_or_marked_unreadable(content: bytes, camera: bool,
                                                            sidecar: bytes | None) -> None:
    started = time.monotonic()
    outcome = file_event(CAMERA if camera else XRAY, content, sidecar, 0.0)
    _timed(started)
    ev = outcome.event
    assert outcome.read or (ev.unreadable and len(ev.raw_sha256) == 64 and not any(i.content for i in ev.images))
    if outcome.read:
        assert all(i.content == content for i in ev.images) and ev.images


def test_the_real_files_are_read() -> None:
    # The mutations start from files every reader takes, so a refusal above is the mutation's doing.
    assert load_image(real_image(".jpg")).shape == (32, 48) and load_image(real_image(".png")).shape == (32, 48)
    assert load_image(real_dicom()).size > 0
    assert all(isinstance(dws.parse_record(r), dws.Record) for r in DWS_RECORDS)
    assert all(isinstance(mtsics.parse(line), mtsics.Answer) for line in MTSICS_LINES)
