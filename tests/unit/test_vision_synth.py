"""The photo generator: seeded, 1280x960, with a ground truth that matches the code drawn, within its envelope."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from inspection.vision.synth import (
    HEIGHT,
    MAX_BLUR,
    MAX_MOTION,
    MODULE_PX,
    SYMBOLOGIES,
    WIDTH,
    draw_conditions,
    make_photo,
    waybill_text,
)


def test_a_seed_reproduces_its_photo_and_another_seed_does_not() -> None:
    first, again, other = make_photo(11, "Code128"), make_photo(11, "Code128"), make_photo(12, "Code128")
    assert first.jpeg == again.jpeg and first.text == again.text and first.corners == again.corners
    assert other.jpeg != first.jpeg


@pytest.mark.parametrize("symbology", SYMBOLOGIES)
def test_photos_are_1280x960_jpeg_with_the_code_inside_the_frame(symbology: str) -> None:
    photo = make_photo(21, symbology)
    image = cv2.imdecode(np.frombuffer(photo.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (HEIGHT, WIDTH, 3) and photo.format == symbology
    corners = np.array(photo.corners)
    assert corners.shape == (4, 2)
    assert (corners >= 0).all() and (corners[:, 0] <= WIDTH).all() and (corners[:, 1] <= HEIGHT).all()
    assert cv2.contourArea(corners.astype(np.float32)) > 400  # a code, not a speck


def test_waybill_texts_look_like_the_issue_says() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        assert re.fullmatch(r"[A-Z0-9]{12,16}", waybill_text(rng, "Code128"))
        assert re.fullmatch(r"[A-Z0-9]{12,16}", waybill_text(rng, "DataMatrix"))
        assert re.fullmatch(r"(https://t\.courier\.example/w/)?[A-Z0-9]{12,16}", waybill_text(rng, "QRCode"))
        ean = waybill_text(rng, "EAN13")
        digits = [int(d) for d in ean]
        assert len(digits) == 13 and sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


@pytest.mark.parametrize("symbology", SYMBOLOGIES)
def test_conditions_stay_inside_the_envelope(symbology: str) -> None:
    rng = np.random.default_rng(9)
    low, high = MODULE_PX[symbology]
    for _ in range(500):
        c = draw_conditions(rng, symbology)
        assert low <= c.module_px <= high and -30 <= c.angle_deg <= 30
        assert c.motion_px <= MAX_MOTION * c.module_px + 1e-9
        assert np.hypot(c.blur_sigma, c.motion_px / np.sqrt(12)) <= MAX_BLUR * c.module_px + 1e-6
        assert 55 <= c.jpeg_quality <= 92 and 0.55 <= c.light_low <= 1.0


def test_an_unknown_symbology_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown symbology"):
        make_photo(1, "PDF417")
