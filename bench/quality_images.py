"""The photographs of the image-fingerprint quality set and the perturbations a re-taken photo goes through.

A sender's photo of a listed item is never the listed file: it is scaled, re-encoded, brighter or darker, a little
cropped or turned. Each perturbation here is what OpenCV does to a real photograph (tests/fixtures/screening/images/),
and the quality set hashes the result with the gateway's own perceptual_hash.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from gateway.core.screening import perceptual_hash
from gateway.core.screening.images import listing_fingerprints

Image = NDArray[Any]


def _jpeg(image: Image, quality: int) -> Image:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_UNCHANGED))


def _crop(image: Image, share: float) -> Image:
    h, w = image.shape[:2]
    dy, dx = round(h * share), round(w * share)
    return image[dy:h - dy, dx:w - dx]


def _brightness(image: Image, delta: int) -> Image:
    return np.clip(image.astype(np.int16) + delta, 0, 255).astype(np.uint8)


def _scale(image: Image, factor: float) -> Image:
    method = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(image, None, fx=factor, fy=factor, interpolation=method))


def _rotate(image: Image, degrees: float) -> Image:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return np.asarray(cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT))


PERTURBATIONS: dict[str, Callable[[Image], Image]] = {
    "original": lambda im: im,
    "half": lambda im: _scale(im, 0.5),
    "upscale": lambda im: _scale(im, 1.6),
    "jpeg30": lambda im: _jpeg(im, 30),
    "jpeg60": lambda im: _jpeg(im, 60),
    "brighter": lambda im: _brightness(im, 30),
    "darker": lambda im: _brightness(im, -30),
    "contrast": lambda im: np.asarray(cv2.convertScaleAbs(im, alpha=1.3, beta=-20)),
    "grey": lambda im: np.asarray(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)),
    "blur": lambda im: np.asarray(cv2.GaussianBlur(im, (5, 5), 1.2)),
    "rotate2": lambda im: _rotate(im, 2.0),
    "crop3": lambda im: _crop(im, 0.03),
    "crop5": lambda im: _crop(im, 0.05),
    "combined": lambda im: _jpeg(_brightness(_scale(_crop(im, 0.03), 0.7), 20), 50),
}


@functools.cache
def _photo(path: Path) -> Image:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return np.asarray(image)


def fingerprint(folder: Path, name: str, perturbation: str = "original") -> int:
    """The perceptual hash of a fixture photo after a named perturbation."""
    if perturbation not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {perturbation!r} (known: {', '.join(PERTURBATIONS)})")
    return perceptual_hash(PERTURBATIONS[perturbation](_photo(folder / name)))


def listing_aliases(folder: Path, name: str) -> tuple[str, ...]:
    """The alias fingerprints (16 hex digits) a listed photo would carry: its cropped and padded frames."""
    return tuple(f"{value:016x}" for value in listing_fingerprints(_photo(folder / name))[1:])
