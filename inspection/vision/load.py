"""Loading an image from bytes as one grey uint8 array: JPEG and PNG from cameras, DICOM/DICOS from X-ray machines.

Bytes come from devices and files nobody checked, so nothing is decoded before it is known to be worth it: the
file's size is checked first, then its signature, then the pixel size its header declares (PNG IHDR, JPEG SOF, DICOM
Rows and Columns), against limits, so a small file that would inflate to gigabytes (a decompression bomb) is refused
having cost a few hundred bytes of parsing. Everything that goes wrong is one exception, ImageUnreadable, whose
reason is plain words and never carries the bytes.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

MAX_PIXELS = 40_000_000  # 40 megapixels
MAX_BYTES = 16 * 1024 * 1024  # 16 MiB
JPEG, PNG, DICOM = "image/jpeg", "image/png", "application/dicom"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (every coding process but the DHT/JPG/DAC markers that share the range).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length


class ImageUnreadable(Exception):
    """The bytes are not an image this side reads: not one, corrupt, truncated, or larger than the limits."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def media_type(data: bytes) -> str:
    """"image/jpeg", "image/png" or "application/dicom" from the signature; "" for anything else."""
    head = bytes(data[:132])
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(_PNG_SIGNATURE):
        return PNG
    if head[128:132] == b"DICM":  # a 128-byte preamble, then the DICOM prefix (DICOS files too)
        return DICOM
    return ""


def load_image(data: bytes, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """The image as a 2D uint8 grey array; ImageUnreadable with a plain reason if it cannot or may not be read."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageUnreadable(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise ImageUnreadable(f"file too large: {len(data):,} bytes (the limit is {max_bytes:,})")
    if not data:
        raise ImageUnreadable("empty file")
    data = bytes(data)
    kind = media_type(data)
    if kind == JPEG:
        return _decode(data, "JPEG", _jpeg_size(data), max_pixels)
    if kind == PNG:
        return _decode(data, "PNG", _png_size(data), max_pixels)
    if kind == DICOM:
        from inspection.vision.dicom import load_dicom  # pydicom is imported only for DICOM files

        return load_dicom(data, max_pixels)
    raise ImageUnreadable("not an image: neither JPEG, PNG nor DICOM")


def check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    """Refuses a declared size that is empty or above the pixel limit, before anything is decoded."""
    if width <= 0 or height <= 0:
        raise ImageUnreadable(f"corrupt {what}: it declares {width}x{height} pixels")
    if width * height > max_pixels:
        raise ImageUnreadable(f"image too large: {what} of {width}x{height} = {width * height:,} pixels "
                              f"(the limit is {max_pixels:,})")


def _decode(data: bytes, what: str, size: tuple[int, int], max_pixels: int) -> np.ndarray:
    check_pixels(*size, max_pixels, what)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ImageUnreadable(f"corrupt {what}: the decoder could not read its pixels")
    if (image.shape[1], image.shape[0]) != size:
        raise ImageUnreadable(f"corrupt {what}: the header says {size[0]}x{size[1]}, the pixels are "
                              f"{image.shape[1]}x{image.shape[0]}")
    return image


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first, whole, with its checksum right."""
    if len(data) < 33 or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise ImageUnreadable("corrupt PNG: no IHDR header where it must be")
    if zlib.crc32(data[12:29]) != int.from_bytes(data[29:33], "big"):
        raise ImageUnreadable("corrupt PNG: the IHDR header's checksum is wrong")
    if data.rfind(b"IEND") < 33:
        raise ImageUnreadable("truncated PNG: no IEND chunk at the end")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from the first start-of-frame segment, walking the segments from the start."""
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            raise ImageUnreadable(f"corrupt JPEG: no marker at byte {i}")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i + 2 >= n:
            break
        marker, i = data[i], i + 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan begins, before any frame header
            raise ImageUnreadable("corrupt JPEG: no frame header before the image data")
        length = int.from_bytes(data[i:i + 2], "big")
        if length < 2 or i + length > n:
            break
        if marker in _SOF:
            return _sof_size(data, i, length)
        i += length
    raise ImageUnreadable("truncated JPEG: it ends inside its headers")


def _sof_size(data: bytes, at: int, length: int) -> tuple[int, int]:
    if length < 8:
        raise ImageUnreadable("corrupt JPEG: the frame header is too short")
    if data.rfind(b"\xff\xd9") < at:  # the image data must end with an end-of-image marker
        raise ImageUnreadable("truncated JPEG: no end-of-image marker")
    return int.from_bytes(data[at + 5:at + 7], "big"), int.from_bytes(data[at + 3:at + 5], "big")
