"""Image fingerprints: the perceptual hash and the multi-index Hamming search."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from gateway.core.screening import Action, Entry, EntryKind, hamming, perceptual_hash
from gateway.core.screening.images import FingerprintIndex, listing_fingerprints, parse_fingerprint


def photo(seed: int, size: int = 320) -> NDArray[np.uint8]:
    """A smooth synthetic BGR picture: a few coloured blobs on a gradient."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(angle) * x + np.sin(angle) * y) / size * 80
    canvas = np.zeros((size, size, 3), np.float32) + gradient[..., None]
    for _ in range(6):
        cy, cx, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(size / 12, size / 4)]
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
        canvas += blob[..., None] * rng.uniform(40, 160, 3)
    return np.asarray(np.clip(canvas, 0, 255), dtype=np.uint8)


def reencoded(image: NDArray[np.uint8], quality: int) -> NDArray[np.uint8]:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert decoded is not None
    return np.asarray(decoded, dtype=np.uint8)


ORIGINAL = photo(1)


@pytest.mark.parametrize("variant", [
    reencoded(ORIGINAL, 35),
    cv2.resize(ORIGINAL, (160, 160), interpolation=cv2.INTER_AREA),
    cv2.resize(ORIGINAL, (517, 517), interpolation=cv2.INTER_CUBIC),
    np.clip(ORIGINAL.astype(np.int16) + 18, 0, 255).astype(np.uint8),
    cv2.GaussianBlur(ORIGINAL, (5, 5), 1.0),
    cv2.cvtColor(ORIGINAL, cv2.COLOR_BGR2GRAY),
])
def test_hash_survives_reencoding_scaling_and_brightness(variant: NDArray[np.uint8]) -> None:
    assert hamming(perceptual_hash(variant), perceptual_hash(ORIGINAL)) <= 8


def test_different_pictures_are_far_apart() -> None:
    reference = perceptual_hash(ORIGINAL)
    assert all(hamming(perceptual_hash(photo(seed)), reference) > 16 for seed in range(2, 8))


def test_hash_is_64_bits_with_the_dc_bit_clear() -> None:
    value = perceptual_hash(ORIGINAL)
    assert 0 < value < 1 << 64
    assert not value >> 63  # the DC term's bit is the most significant and always 0
    assert 20 < value.bit_count() < 44  # a median threshold sets about half the bits


def test_unusable_images_are_rejected() -> None:
    with pytest.raises(ValueError):
        perceptual_hash(np.zeros((0, 0), np.uint8))
    with pytest.raises(ValueError):
        perceptual_hash(np.zeros((4, 4, 4, 4), np.uint8))


def fingerprints(values: list[int], max_distance: int = 8) -> FingerprintIndex:
    index = FingerprintIndex(max_distance)
    for i, value in enumerate(values):
        index.add(Entry(i, EntryKind.IMAGE_FINGERPRINT, f"{value:016x}", Action.REFUSE))
    index.build()
    return index


def flip(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


def test_search_finds_near_hashes_nearest_first() -> None:
    rng = random.Random(3)
    listed = [rng.getrandbits(64) for _ in range(5000)]
    index = fingerprints(listed)
    query = flip(listed[42], [0, 17, 33, 50, 63])  # 5 bits, one in each chunk
    assert [(e.id, d) for e, d in index.search(query)] == [(42, 5)]
    assert index.search(flip(listed[42], list(range(0, 18, 2)))) == []  # 9 bits: too far


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40), st.integers(0, 2**64 - 1),
       st.lists(st.integers(0, 63), max_size=10), st.integers(0, 12))
def test_multi_index_search_equals_a_linear_scan(listed: list[int], query: int, flips: list[int],
                                                 max_distance: int) -> None:
    listed = [*listed, flip(query, flips)]  # ensure something near exists
    expected = sorted((hamming(v, query), i) for i, v in enumerate(listed) if hamming(v, query) <= max_distance)
    got = sorted((d, e.id) for e, d in fingerprints(listed, max_distance).search(query))
    assert got == expected


def test_screen_reports_photo_index_and_distance() -> None:
    index = fingerprints([0x00FF00FF00FF00FF])
    (hit,) = index.screen((0x1234, 0x00FF00FF00FF00FE))
    assert hit.field == "images[1]" and hit.entry_id == 0
    assert hit.score == pytest.approx(1 - 1 / 64) and hit.threshold == pytest.approx(1 - 8 / 64)
    assert "1 bits" in hit.explanation


def test_fingerprint_values_and_query_hashes_are_validated() -> None:
    assert parse_fingerprint("00000000000000fF") == 255
    for bad in ("ff", "0x00000000000000", "g000000000000000"):
        with pytest.raises(ValueError):
            parse_fingerprint(bad)
    with pytest.raises(ValueError):
        fingerprints([1]).search(-1)
    assert fingerprints([]).search(5) == []


def test_an_entry_listed_under_several_fingerprints_is_found_by_each_and_reported_once() -> None:
    index = FingerprintIndex(8)
    index.add(Entry(1, EntryKind.IMAGE_FINGERPRINT, f"{0x0F0F:016x}", Action.HOLD,
                    aliases=(f"{0x0F0F ^ 0b11:016x}", f"{0xFF00FF00:016x}")))
    index.build()
    assert len(index) == 1
    assert [(e.id, d) for e, d in index.search(0x0F0F ^ 0b1)] == [(1, 1)]  # near two of them: once, nearest
    assert [(e.id, d) for e, d in index.search(0xFF00FF01)] == [(1, 1)]


def test_listing_fingerprints_cover_a_cropped_retake() -> None:
    frames = listing_fingerprints(ORIGINAL)
    assert frames[0] == perceptual_hash(ORIGINAL) and len(frames) == 5
    cropped = ORIGINAL[16:-16, 16:-16]  # 5% from each edge of 320 pixels
    assert min(hamming(perceptual_hash(cropped), f) for f in frames) <= 2
