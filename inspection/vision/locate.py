"""Where the codes may be: OpenCV's barcode detector for 1D codes, a morphological search for 2D ones.

Both run on a copy of the frame WORKING_SIZE pixels on its long side (half size for the 1280x960 cameras): a
located region is cut again from the full-size frame, so locating needs only the coarse shape, and half the size is
a quarter of the work. The sizes below are in the copy's pixels.

A 2D code (QR, DataMatrix) is a squarish patch dense with edges in every direction. The search takes the
morphological gradient (bright where dark and light meet at the scale of a module), keeps the strong edges,
closes them into blobs, opens away what is thin, and keeps the blobs that are filled and large enough to hold a
code: those squarish and edge-dense every way (see _matrix_like) for 2D codes, the rest as a second chance for any.
Bold print passes too at times; zxing-cpp then finds no code there, at the cost of one small read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

WORKING_SIZE = 640  # px on the long side, at most (smaller frames are searched as they are)
MAX_BLOBS = 6  # blobs of each shape read at most, largest first: more is clutter, and each costs a read
MIN_SIDE = 12  # a 21-module QR code at 1.3 px per module is 14
MIN_EDGE_DENSITY, MAX_COHERENCE = 0.6, 0.5  # what a 2D code's blob shows (see _matrix_like)
_detector: cv2.barcode.BarcodeDetector | None = None


@dataclass
class Candidates:
    """Where codes may be, as quadrilaterals (4x2) in full-frame pixels.

    linear: the barcode detector's regions; matrix: blobs like a 2D code; others: the other blobs, among them the
    few barcodes the detector misses (read, in every format, only when nothing else gave a code).
    """

    linear: list[np.ndarray] = field(default_factory=list)
    matrix: list[np.ndarray] = field(default_factory=list)
    others: list[np.ndarray] = field(default_factory=list)


def barcode_detector() -> cv2.barcode.BarcodeDetector:
    """One detector per process (building one loads its settings; its detect calls keep no state)."""
    global _detector
    if _detector is None:
        _detector = cv2.barcode.BarcodeDetector()
        # The detector shrinks its input to this many pixels on the short side. At 640x480, the default 512
        # takes three times as long as 320 and finds no more Code 128 (a few more EAN-13, which the blobs find).
        _detector.setDownsamplingThreshold(320)
    return _detector


def locate(grey: np.ndarray) -> Candidates:
    """The candidates in a full-size grey frame."""
    scale = min(1.0, WORKING_SIZE / max(grey.shape))
    small = grey if scale == 1.0 else cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    matrix, others = _blobs(small, scale)
    return Candidates(linear=_linear(small, scale), matrix=matrix, others=others)


def _linear(small: np.ndarray, scale: float) -> list[np.ndarray]:
    ok, points = barcode_detector().detectMulti(small)
    if not ok or points is None:
        return []
    return [quad.reshape(4, 2).astype(np.float64) / scale for quad in points]


def _blobs(small: np.ndarray, scale: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Edge-dense blobs, largest first, as rotated boxes in full-frame pixels: those like a 2D code, and the rest."""
    edges = cv2.morphologyEx(small, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    threshold, _ = cv2.threshold(edges, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    _, strong = cv2.threshold(edges, max(threshold, 40.0), 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(strong, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    # Opening this wide removes what is thin (a label's border and rules, a line of small print) and keeps what is
    # solid: without it, a border a few pixels from the code joins them into one blob the size of the label.
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((9, 9), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    matrix: list[tuple[float, np.ndarray]] = []
    others: list[tuple[float, np.ndarray]] = []
    for contour in contours:
        rect = cv2.minAreaRect(contour)
        (w, h), area = rect[1], rect[1][0] * rect[1][1]
        if min(w, h) < MIN_SIDE or cv2.contourArea(contour) < 0.5 * area:
            continue
        box = cv2.boxPoints(rect).astype(np.float64) / scale
        squarish = max(w, h) <= 1.7 * min(w, h)
        (matrix if squarish and _matrix_like(small, strong, contour) else others).append((area, box))
    return _largest(matrix), _largest(others)


def _matrix_like(small: np.ndarray, strong: np.ndarray, contour: np.ndarray) -> bool:
    """Edges cover most of the blob, running every way: a 2D code, not a bold letter (sparser edges) nor a 1D
    code or a hatch (edges one way). Measured on the warehouse photos, every 2D code had edge density above 0.67
    and coherence below 0.4; the bounds leave room on both sides and drop three in four of the other blobs."""
    x, y, w, h = cv2.boundingRect(contour)
    inside = np.zeros((h, w), np.uint8)
    cv2.drawContours(inside, [contour - np.array([x, y])], -1, 255, cv2.FILLED)
    if cv2.mean(strong[y:y + h, x:x + w], mask=inside)[0] < MIN_EDGE_DENSITY * 255:
        return False
    roi = small[y:y + h, x:x + w].astype(np.float32)
    gx, gy = cv2.Sobel(roi, cv2.CV_32F, 1, 0), cv2.Sobel(roi, cv2.CV_32F, 0, 1)
    xx, yy, xy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    coherence = np.sqrt((xx - yy) ** 2 + 4 * xy * xy) / (xx + yy + 1e-6)  # 1: all edges one way; 0: every way
    return bool(coherence <= MAX_COHERENCE)


def _largest(found: list[tuple[float, np.ndarray]]) -> list[np.ndarray]:
    return [box for _, box in sorted(found, key=lambda f: -f[0])[:MAX_BLOBS]]
