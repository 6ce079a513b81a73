"""No file's bytes crash the camera or X-ray reading: each is a reading or a typed unreadable reason."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspection.config import Connection, Device
from inspection.devices.files import file_event
from inspection.simulators.files import dicos_bytes, export_bytes, xray_pixels

XRAY = Device("xray-1", "folder", Connection(), "HUB", {"kind": "xray"})
CAMERA = Device("camera-1", "folder", Connection(), "HUB", {"kind": "camera"})
GOOD = [dicos_bytes("SF1234567890", xray_pixels(1, 32)), export_bytes(xray_pixels(2, 32), "png"),
        export_bytes(xray_pixels(3, 32), "jpeg")]


# pydicom warns about the mangled headers it is fed here; the test is that nothing raises.
@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(GOOD), st.integers(0, 10_000), st.booleans())
def test_no_bytes_crash_a_folder_reading(raw: bytes, good: bytes, cut: int, camera: bool) -> None:
    device = CAMERA if camera else XRAY
    for content in (raw, good[:cut] + raw, good[:cut] + raw + good[cut + len(raw):]):
        outcome = file_event(device, content, None, 0.0)
        assert outcome.read or (outcome.event.unreadable and len(outcome.event.raw_sha256) == 64)
        assert outcome.read == (not outcome.event.unreadable) or outcome.event.unreadable.startswith(
            ("NO_WAYBILL", "LABEL_UNREADABLE", "AMBIGUOUS_CODES", "WAYBILL_CONFLICT"))
