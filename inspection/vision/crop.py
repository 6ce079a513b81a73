"""Cutting a candidate out of the frame: turned upright, with a quiet zone around it, small ones enlarged.

zxing-cpp reads a 1D code along rows of pixels and needs the bars crossed by a row from end to end, with some white
before and after; it reads best when a module covers two pixels or more. So a candidate's quadrilateral is mapped
by a perspective warp onto an axis-aligned strip (the long side across), grown past the detector's box by a quiet
zone, and enlarged (bicubic) when its modules would be thin; along the bars it is shortened instead, as zxing-cpp
needs only a few rows. A 2D code gets the same, square.

Each crop comes sharpened too (an unsharp mask): the camera's blur rounds narrow bars and small cells into grey,
and restoring their edges pays for 1D codes (of 300 photos' barcodes cut at their true corners, 279 read sharpened
against 259 as cut; smoothing along the bars first read a few more of 900 whole photos). zxing-cpp's 2D detectors
do better on the crop as cut, so that goes first for them.
"""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np

# 1D: the strip is at least this wide (px) and at most this tall.
LINEAR_WIDTH, LINEAR_HEIGHT = 720, 96
# 2D: the crop's side is at least this (px).
MATRIX_SIDE = 280
MAX_ENLARGE = 3.0
SHARPEN_AMOUNT, SHARPEN_SIGMA = 1.5, 2.0
ALONG_BARS = 7  # px a 1D strip is averaged over along its bars before sharpening


class Crop:
    """A rectified cut of the frame (as cut, and sharpened on first use) and the homography back to the frame."""

    def __init__(self, plain: np.ndarray, to_frame: np.ndarray, linear: bool) -> None:
        self.plain, self.to_frame, self.linear = plain, to_frame, linear  # to_frame: 3x3, crop px to frame px

    @cached_property
    def sharp(self) -> np.ndarray:
        """The crop through an unsharp mask (made only when read: most crops are read once, in one version).

        A 1D strip is first smoothed along its bars, which are upright in it, and sharpened across them only: the
        sensor's noise averages out and only the edges that carry the code are steepened."""
        if not self.linear:
            blurred = cv2.GaussianBlur(self.plain, (0, 0), SHARPEN_SIGMA)
            return cv2.addWeighted(self.plain, 1 + SHARPEN_AMOUNT, blurred, -SHARPEN_AMOUNT, 0)
        smooth = cv2.blur(self.plain, (1, ALONG_BARS))
        blurred = cv2.GaussianBlur(smooth, (0, 0), sigmaX=SHARPEN_SIGMA, sigmaY=0.1)
        return cv2.addWeighted(smooth, 1 + SHARPEN_AMOUNT, blurred, -SHARPEN_AMOUNT, 0)


def _axes(quad: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Centre, unit long axis (pointing right), unit short axis, long and short side lengths of a quadrilateral."""
    sides = np.roll(quad, -1, axis=0) - quad
    lengths = np.linalg.norm(sides, axis=1)
    first = 0 if lengths[0] + lengths[2] >= lengths[1] + lengths[3] else 1
    long_axis = sides[first] - sides[first + 2]  # the two opposite sides run opposite ways round the quad
    long_axis /= np.linalg.norm(long_axis) or 1.0
    if long_axis[0] < 0:
        long_axis = -long_axis
    short_axis = np.array([-long_axis[1], long_axis[0]])
    long_len = (lengths[first] + lengths[first + 2]) / 2
    short_len = (lengths[1 - first] + lengths[3 - first]) / 2
    return quad.mean(axis=0), long_axis, short_axis, float(long_len), float(short_len)


def _cut(grey: np.ndarray, centre: np.ndarray, axes: tuple[np.ndarray, np.ndarray], span: tuple[float, float],
         size: tuple[int, int], linear: bool) -> Crop:
    """The rectangle centred on `centre` spanning `span` along the axes, warped upright to `size` (w, h)."""
    (u, v), (su, sv), (w, h) = axes, span, size
    src = np.array([centre - u * su / 2 - v * sv / 2, centre + u * su / 2 - v * sv / 2,
                    centre + u * su / 2 + v * sv / 2, centre - u * su / 2 + v * sv / 2], np.float32)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    warp = cv2.getPerspectiveTransform(src, dst)
    plain = cv2.warpPerspective(grey, warp, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return Crop(plain, np.linalg.inv(warp), linear)


def linear_crop(grey: np.ndarray, quad: np.ndarray) -> Crop | None:
    """A strip holding the 1D candidate `quad` (4x2 frame pixels), bars upright, quiet zones included."""
    centre, u, v, length, height = _axes(quad)
    if length < 8 or height < 4:
        return None
    span = (length * 1.16 + 24, height * 1.3 + 8)  # the detector's box can end at the outer bars
    scale = min(MAX_ENLARGE, max(1.0, LINEAR_WIDTH / span[0]))
    return _cut(grey, centre, (u, v), span, (int(span[0] * scale), int(min(LINEAR_HEIGHT, span[1] * scale))), True)


def matrix_crop(grey: np.ndarray, box: np.ndarray) -> Crop:
    """A square holding the 2D candidate `box` (4x2 frame pixels), turned upright, with a quiet zone."""
    centre, u, v, length, width = _axes(box)
    side = max(length, width) * 1.3 + 16
    out = int(side * min(MAX_ENLARGE, max(1.0, MATRIX_SIDE / side)))
    return _cut(grey, centre, (u, v), (side, side), (out, out), False)
