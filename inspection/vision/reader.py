"""Reading waybill codes from a photo: OpenCV finds where the codes are, zxing-cpp reads each one, rectified.

Measured on the warehouse cameras' photos (1280x960, labels rotated up to 30 degrees, blurred, noisy): OpenCV's
barcode detector finds nearly every 1D code but decodes almost no Code 128, and zxing-cpp on the whole frame misses
codes rotated further than their bars are tall and takes tens of milliseconds trying rotations and scales. So each
candidate is cut out of the frame, turned upright and enlarged (inspection.vision.crop), and zxing-cpp reads only
that crop, only in the formats a candidate of its kind can be. The whole frame is read only when no candidate gave a
code. What zxing-cpp returns has passed its checksum (Code 128's check symbol, EAN-13's check digit, QR and
DataMatrix error correction), and a 1D reading must also span its bars (see _tall_enough); nothing else is
returned, so a code that cannot be read is never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp

from inspection.vision.crop import Crop, linear_crop, matrix_crop
from inspection.vision.locate import Candidates, locate

Corners = tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]
_F = zxingcpp.BarcodeFormat
LINEAR = zxingcpp.BarcodeFormats((_F.Code128, _F.EAN13))
# QRCode names the whole QR family in zxing-cpp 3 (Micro QR and rMQR too): waybills carry the standard symbol
# (Model 2) only, and a Micro QR "found" in print or noise would be a wrong reading (its checks are weaker).
MATRIX = zxingcpp.BarcodeFormats((_F.QRCodeModel2, _F.DataMatrix))
ALL = zxingcpp.BarcodeFormats((*LINEAR, *MATRIX))
_NAMES = {_F.Code128: "Code128", _F.EAN13: "EAN13", _F.QRCode: "QRCode", _F.QRCodeModel2: "QRCode",
          _F.DataMatrix: "DataMatrix"}
MIN_BAR_EXTENT = 2.0  # px (see _tall_enough)
# The whole frame is read at most this large (long side, px): zxing-cpp's time grows with the pixels. At the
# cameras' 1280 px it reads some codes the candidates missed (about a third of the few it is asked to), at ~18 ms.
WHOLE_FRAME_MAX_SIZE = 1600


@dataclass(frozen=True)
class Code:
    """One code read from an image: its text, its format, and its corners in the image's own pixels."""

    text: str
    format: str  # "Code128", "QRCode", "DataMatrix" or "EAN13"
    corners: Corners  # top-left, top-right, bottom-right, bottom-left, as the symbol reads


def read_codes(image: np.ndarray) -> list[Code]:
    """Every code in the image that zxing-cpp decodes with a valid checksum, each text once."""
    grey = _grey(image)
    found = _from_candidates(grey, locate(grey))
    if not found:
        found = _whole_frame(grey)
    return _unique(found)


def _grey(image: np.ndarray) -> np.ndarray:
    """The image as contiguous 8-bit grey; a BGR or BGRA image is converted, anything else refused."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"read_codes takes 8-bit grey, BGR or BGRA images (load_image makes them), not "
                         f"{image.dtype} {image.shape}")
    if image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    return np.ascontiguousarray(image)


def _from_candidates(grey: np.ndarray, candidates: Candidates) -> list[Code]:
    """Reads each candidate's crop: 1D formats where the barcode detector found a region, 2D formats in the
    blobs like a 2D code. Only when neither gave a code, every blob is read again in every format, turned too: the
    detector misses a few barcodes that the blob search finds, some merged with the printed text beside them."""
    found = [code for quad in candidates.linear for code in _read_crop(linear_crop(grey, quad), LINEAR)]
    found += [code for box in candidates.matrix for code in _read_crop(matrix_crop(grey, box), MATRIX)]
    if found:
        return found
    for box in candidates.matrix + candidates.others:
        found += _read_crop(linear_crop(grey, box), ALL, turn=True)
    return found


def _read_crop(crop: Crop | None, formats: zxingcpp.BarcodeFormats, turn: bool = False) -> list[Code]:
    """zxing-cpp on one rectified crop, in two versions; `turn` also tries quarter turns.

    1D codes read best sharpened, so that version goes first; 2D codes as cut, turned (zxing-cpp's DataMatrix
    detector is not fully rotation-invariant, and the crop's quarter turn is arbitrary for a square).
    """
    if crop is None:
        return []
    matrix = formats == MATRIX
    for pixels in (crop.plain, crop.sharp) if matrix else (crop.sharp, crop.plain):
        results = zxingcpp.read_barcodes(pixels, formats=formats, try_rotate=turn or matrix, try_downscale=False,
                                         try_invert=False)
        codes = _codes(results, crop.to_frame)
        if codes:
            return codes
    return []


def _whole_frame(grey: np.ndarray) -> list[Code]:
    """The last resort: zxing-cpp on the whole frame (shrunk to WHOLE_FRAME_MAX_SIZE) in every format."""
    scale = min(1.0, WHOLE_FRAME_MAX_SIZE / max(grey.shape))
    small = grey if scale == 1.0 else cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    back = np.array([[1 / scale, 0, 0], [0, 1 / scale, 0], [0, 0, 1]])
    results = zxingcpp.read_barcodes(small, formats=ALL, try_rotate=True, try_downscale=True, try_invert=False)
    return _codes(results, back)


def _codes(results: list[zxingcpp.Barcode], to_frame: np.ndarray) -> list[Code]:
    """The valid results of the expected formats (a format asked for may admit others: they are dropped), 1D
    ones only when confirmed across the bars' height."""
    return [_code(r, to_frame) for r in results
            if r.valid and r.error is None and r.format in _NAMES and (r.format in MATRIX or _tall_enough(r))]


def _tall_enough(result: zxingcpp.Barcode) -> bool:
    """A 1D reading spans MIN_BAR_EXTENT px or more along its bars. zxing-cpp accepts a 1D code found on two
    scan lines; the only wrong readings seen in testing (two EAN-13, of about 7,500 readings from heavily filtered
    crops) were two lines one pixel apart along an edge of the bars, while right ones span the bars."""
    p = result.position
    return float(np.hypot(p.bottom_left.x - p.top_left.x, p.bottom_left.y - p.top_left.y)) >= MIN_BAR_EXTENT


def _code(result: zxingcpp.Barcode, to_frame: np.ndarray) -> Code:
    """A zxing-cpp result as a Code, its corners carried back from the crop to the frame."""
    p = result.position
    points = np.array([[[q.x, q.y] for q in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)]], np.float64)
    frame = cv2.perspectiveTransform(points, to_frame)[0]
    corners = tuple((int(round(x)), int(round(y))) for x, y in frame)
    return Code(result.text, _NAMES[result.format], corners)  # type: ignore[arg-type]  # four by construction


def _unique(codes: list[Code]) -> list[Code]:
    """The first reading of each (format, text): the same code found by two candidates is one code."""
    seen: dict[tuple[str, str], Code] = {}
    for code in codes:
        seen.setdefault((code.format, code.text), code)
    return list(seen.values())
