"""Photos of goods: read safely (size from the header before decoding) and fingerprinted for screening.

Acceptance photos, Screen's photos, blocklist images and scanner images all go through here, so the same
bytes give the same perceptual hash wherever they arrive, and no decompression bomb is ever unpacked.
"""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from gateway.core.screening import perceptual_hash
from gateway.core.screening.images import listing_fingerprints

# A 4 MiB PNG can unpack to gigabytes; photos of goods never need more than this many pixels.
MAX_IMAGE_PIXELS = 40_000_000


def _grey(data: bytes) -> NDArray[Any] | None:
    size = image_size(data)
    if size is None or size[0] * size[1] > MAX_IMAGE_PIXELS:
        return None
    # Grey, as parcel photos are decoded at acceptance, so the same bytes give the same hash on both sides.
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    return None if image is None or image.size == 0 else image


def image_fingerprint(data: bytes) -> int | None:
    """The perceptual hash of a JPEG or PNG photo; None when it is not one, is unreadable or too large."""
    image = _grey(data)
    return None if image is None else perceptual_hash(image)


def listing_of(data: bytes) -> tuple[int, ...] | None:
    """The fingerprints a listed photo is kept under: its own first, then its cropped and padded frames,
    so that a re-taken photo framed a little differently still matches; None when it is not readable."""
    image = _grey(data)
    return None if image is None else listing_fingerprints(image)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, read before decoding so a bomb is never unpacked."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker, length = data[at + 1], int.from_bytes(data[at + 2:at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return int(width), int(height)
        at += 2 + length
    return None


def media_type(data: bytes) -> str:
    """The media type an image's signature says: JPEG, PNG or DICOM (X-ray, DICOS); "" for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[128:132] == b"DICM":
        return "application/dicom"
    return ""
