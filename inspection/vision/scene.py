"""The parts of a generated photo (inspection.vision.synth): the label, the parcel behind it, light and sensor.

Everything draws from the numpy Generator it is given, never from a global one, so a seed reproduces a photo.
The parcel is drawn in 8-bit BGR (OpenCV draws text on 8-bit images only); from the label's compositing on, the
scene is float32 in grey levels 0..255 until the sensor turns it back into 8-bit pixels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from inspection.vision.synth import Conditions

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WORDS = ("FROM", "TO", "SHENZHEN", "BEIJING", "GUANGZHOU", "HANGZHOU", "CHENGDU", "ROAD", "NO.", "BLDG", "TEL",
          "WEIGHT", "KG", "PCS", "DATE", "STANDARD", "EXPRESS", "COD", "ZONE", "ROUTE", "DEPOT", "SORT", "PAID")
_MARKS = ("FRAGILE", "THIS SIDE UP", "KEEP DRY", "HANDLE WITH CARE", "MADE IN CHINA", "NET WT 12KG", "LOT 0412",
          "BOX 3 OF 5", "RECYCLABLE", "DO NOT STACK")
_INKS = ((20, 20, 20), (90, 40, 20), (30, 30, 150), (40, 90, 30))  # black, blue, red, green (BGR)


def _line_of_words(rng: np.random.Generator) -> str:
    words = [str(rng.choice(_WORDS)) for _ in range(int(rng.integers(2, 5)))]
    words.insert(int(rng.integers(0, len(words))), str(int(rng.integers(1, 99999))))
    return " ".join(words)


def _put_text(img: np.ndarray, text: str, x: int, y: int, height: float, colour: tuple[float, ...] | float,
              max_width: int | None = None) -> None:
    """Text whose capitals stand `height` pixels tall with its baseline at y, shrunk to fit max_width."""
    scale = height / 22.0  # FONT_HERSHEY_SIMPLEX capitals are about 22 px tall at scale 1
    if max_width is not None:
        width = cv2.getTextSize(text, _FONT, scale, 1)[0][0]
        scale *= min(1.0, max_width / max(width, 1))
    cv2.putText(img, text, (x, y), _FONT, scale, colour, max(1, round(scale * 1.6)), cv2.LINE_AA)


def draw_label(rng: np.random.Generator, code: np.ndarray, hrt: str, linear: bool) -> tuple[np.ndarray, np.ndarray]:
    """A paper label around `code` (grey, 0 ink, 255 paper): the label (BGR uint8) and the code's box on it."""
    ch, cw = code.shape
    line = max(12, int(cw * rng.uniform(0.045, 0.07))) if linear else max(12, int(ch * rng.uniform(0.09, 0.14)))
    margin = int(line * rng.uniform(1.0, 1.8))
    if linear:
        above, below = int(rng.integers(1, 3)), int(rng.integers(1, 4))
        w, h = cw + 2 * margin, ch + 2 * margin + (above + below + 1) * line * 2
        x0, y0 = margin, margin + above * line * 2
    else:
        w, h = int(cw * rng.uniform(1.8, 2.6)), int(ch * rng.uniform(1.15, 1.5))
        x0, y0 = margin, (h - ch) // 2
    grey = np.full((h, w), 255, np.uint8)
    grey[y0:y0 + ch, x0:x0 + cw] = code
    _label_print(rng, grey, (x0, y0, cw, ch), line, hrt, linear)
    ink, paper = rng.uniform(15, 60), rng.uniform(215, 250) - rng.uniform(0, 12, 3)
    shade = grey.astype(np.float32)[..., None] / 255.0
    label = (ink + (paper - ink) * shade).astype(np.uint8)
    box = np.array([[x0, y0], [x0 + cw, y0], [x0 + cw, y0 + ch], [x0, y0 + ch]], dtype=np.float32)
    return label, box


def _label_print(rng: np.random.Generator, grey: np.ndarray, code_at: tuple[int, int, int, int], line: int,
                 hrt: str, linear: bool) -> None:
    """The printed text and rules around the code: address lines, the number under a barcode, a border."""
    h, w = grey.shape
    x0, y0, cw, ch = code_at
    cv2.rectangle(grey, (line // 3, line // 3), (w - 1 - line // 3, h - 1 - line // 3), 0, max(2, line // 8))
    if linear:
        _put_text(grey, " ".join(hrt), x0 + cw // 6, y0 + ch + int(line * 1.6), line, 0, cw * 2 // 3)
        rows = [y for y in range(line * 2, h - line // 2, line * 2) if not y0 - line < y < y0 + ch + line * 2]
        left, room = x0, cw
    else:
        rows = list(range(y0 + line, y0 + ch, int(line * 1.8)))
        left, room = x0 + cw + line, w - (x0 + cw + line) - line
    for y in rows:
        _put_text(grey, _line_of_words(rng), left, y, line * rng.uniform(0.7, 1.0), 0, room)
    for _ in range(int(rng.integers(0, 3))):  # rules between blocks, clear of the code and its quiet zone
        y = int(rng.choice(rows)) + line // 2 if rows else h - line
        cv2.line(grey, (left, y), (left + room, y), 0, max(1, line // 10))


def cardboard(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Corrugated cardboard: a brown of its own, blotches, fibres, sometimes the flutes showing through."""
    full = (w, h)
    h, w = h // 2, w // 2  # drawn at half size and enlarged: its texture is coarser than a pixel anyway
    base = np.array([rng.uniform(55, 100), rng.uniform(105, 150), rng.uniform(150, 205)], np.float32)
    blotch = cv2.resize(rng.standard_normal((h // 48 + 2, w // 48 + 2), np.float32), (w, h),
                        interpolation=cv2.INTER_CUBIC) * rng.uniform(5, 14)
    fibre = cv2.GaussianBlur(rng.standard_normal((h, w), np.float32), (0, 0), rng.uniform(1.5, 4), sigmaY=0.5)
    shade = blotch + fibre * (rng.uniform(4, 9) / (fibre.std() + 1e-6))
    if rng.random() < 0.5:
        yy, xx = _grid(h, w)
        phi, period = rng.uniform(0, np.pi), rng.uniform(7, 15)
        shade += np.sin((xx * np.cos(phi) + yy * np.sin(phi)) * np.float32(2 * np.pi / period)) * rng.uniform(2, 5)
    board = (1 + shade[..., None] * np.float32(2 / 255)) * base + shade[..., None] * np.float32(0.3)
    return cv2.resize(_to_uint8(board), full, interpolation=cv2.INTER_LINEAR)


def _to_uint8(scene: np.ndarray) -> np.ndarray:
    return np.clip(scene, 0, 255, out=scene).astype(np.uint8)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates that broadcast to (h, w) without building two full planes."""
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def clutter(rng: np.random.Generator, scene: np.ndarray) -> np.ndarray:
    """Printed marks, stripes and tape on the parcel: what a locator must not take for a code."""
    h, w = scene.shape[:2]
    for _ in range(int(rng.integers(3, 9))):
        colour = tuple(float(c) for c in _INKS[int(rng.integers(0, len(_INKS)))])
        x, y = int(rng.integers(0, w - 100)), int(rng.integers(30, h))
        kind = rng.random()
        if kind < 0.5:
            _put_text(scene, str(rng.choice(_MARKS)), x, y, rng.uniform(14, 60), colour)
        elif kind < 0.7:  # a block of stripes (a logo, a hatch): bar-like, and no code
            pitch, size = int(rng.integers(4, 14)), int(rng.integers(40, 160))
            for k in range(0, size, pitch):
                cv2.line(scene, (x + k, y - size // 2), (x + k, y), colour, max(1, pitch // 3))
        elif kind < 0.85:
            cv2.rectangle(scene, (x, y - 60), (x + int(rng.integers(40, 200)), y), colour, int(rng.integers(1, 5)))
        else:
            cv2.arrowedLine(scene, (x, y), (x + int(rng.integers(-90, 90)), y - 80), colour, int(rng.integers(2, 7)))
    if rng.random() < 0.7:
        _tape(rng, scene)
    return scene


def _tape(rng: np.random.Generator, scene: np.ndarray) -> None:
    """A band of packing tape across the parcel, brown or clear, with its glossy edge."""
    h, w = scene.shape[:2]
    phi, width = rng.uniform(-0.4, 0.4) + (np.pi / 2 if rng.random() < 0.5 else 0), rng.uniform(60, 150)
    centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    along, across = np.array([np.cos(phi), np.sin(phi)]), np.array([-np.sin(phi), np.cos(phi)])
    span = 2 * (w + h)
    band = np.array([centre + s * along * span + t * across * width / 2 for s, t in ((-1, -1), (1, -1), (1, 1),
                                                                                   (-1, 1))], np.int32)
    mask = np.zeros((h, w), np.float32)
    cv2.fillPoly(mask, [band], 1.0)
    colour = np.array((70, 140, 190) if rng.random() < 0.5 else (215, 220, 220), np.float32)
    alpha = rng.uniform(0.25, 0.55) * mask[..., None]
    scene[:] = np.clip(scene * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)
    cv2.line(scene, tuple(band[0].tolist()), tuple(band[1].tolist()), (235, 235, 235), 2, cv2.LINE_AA)


def composite(board: np.ndarray, label: np.ndarray, homography: np.ndarray, scale: float) -> np.ndarray:
    """The label pasted through the camera's homography, with a soft shadow (float32); scale: photo px per label px."""
    scene = board.astype(np.float32)
    if scale < 1:  # what the lens does before the pixels sample it: no aliasing from drawing big and shrinking
        label = cv2.GaussianBlur(label, (0, 0), 0.45 / scale)
    x0, y0, x1, y1 = _footprint(label, homography, board.shape[1], board.shape[0], pad=24)
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ homography  # warp into the footprint only
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpPerspective(label, shift, size, flags=cv2.INTER_LINEAR).astype(np.float32)
    ones = np.full(label.shape[:2], 255, np.uint8)
    alpha = cv2.warpPerspective(ones, shift, size, flags=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    shadow = cv2.GaussianBlur(np.roll(alpha, (6, 4), axis=(0, 1)), (0, 0), 6)
    roi = scene[y0:y1, x0:x1]
    roi *= 1 - 0.35 * shadow[..., None]
    roi[:] = roi * (1 - alpha[..., None]) + warped * alpha[..., None]
    return scene


def _footprint(label: np.ndarray, homography: np.ndarray, w: int, h: int, pad: int) -> tuple[int, int, int, int]:
    """The part of the frame the warped label (and its shadow) covers: x0, y0, x1, y1."""
    lh, lw = label.shape[:2]
    corners = np.array([[[0, 0], [lw, 0], [lw, lh], [0, lh]]], np.float32)
    quad = cv2.perspectiveTransform(corners, homography)[0]
    x0, y0 = np.maximum(np.floor(quad.min(axis=0)) - pad, 0).astype(int)
    x1, y1 = np.minimum(np.ceil(quad.max(axis=0)) + pad, (w, h)).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def lighting(rng: np.random.Generator, scene: np.ndarray, low: float, spot: float) -> np.ndarray:
    """Uneven light: a gradient and a vignette down to `low` of full gain, and a specular spot `spot` bright."""
    h, w = scene.shape[:2]
    yy, xx = _grid(h, w)
    phi = rng.uniform(0, 2 * np.pi)
    ramp = (xx / w - 0.5) * np.cos(phi) + (yy / h - 0.5) * np.sin(phi) + 0.5  # 0..1 across the frame
    radius = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2  # 0 centre .. 1 corner
    vignette = rng.uniform(0, 0.5)
    gain = low + (1 - low) * np.clip(ramp * (1 - vignette * radius), 0, 1)
    gain *= rng.uniform(0.95, 1.1)
    out = cv2.multiply(scene, cv2.merge([gain.astype(np.float32)] * 3))
    if spot > 0:  # separable: a Gaussian spot is the outer product of two 1D Gaussians
        cx, cy, sigma = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(30, 120)
        bump = np.exp(-((yy - cy) ** 2) / (2 * sigma * sigma)) * np.exp(-((xx - cx) ** 2) / (2 * sigma * sigma))
        out = out + cv2.merge([(spot * bump).astype(np.float32)] * 3)
    return out


def sensor(rng: np.random.Generator, scene: np.ndarray, cond: Conditions) -> np.ndarray:
    """The camera's blur (optics, motion), then its noise, as 8-bit BGR."""
    out = cv2.GaussianBlur(scene, (0, 0), cond.blur_sigma) if cond.blur_sigma > 0 else scene
    if cond.motion_px >= 1:
        size = int(np.ceil(cond.motion_px)) | 1
        kernel = np.zeros((size, size), np.float32)
        c, t = size // 2, np.deg2rad(cond.motion_deg)
        dx, dy = np.cos(t) * cond.motion_px / 2, np.sin(t) * cond.motion_px / 2
        cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA)
        out = cv2.filter2D(out, -1, kernel / kernel.sum())
    h, w = out.shape[:2]
    # Luminance noise per pixel; colour noise coarser, as demosaicing spreads it over neighbouring pixels.
    luma = rng.standard_normal((h, w), np.float32) * np.float32(cond.noise_sigma * 0.8)
    chroma = cv2.resize(rng.standard_normal((h // 2, w // 2, 3), np.float32), (w, h)) * (cond.noise_sigma * 0.5)
    noise = cv2.merge([luma] * 3) + chroma
    brightness = cv2.sqrt(np.maximum(out, 0) * np.float32(1 / 255))
    noise *= 0.6 + 0.4 * brightness  # shot noise grows with the signal
    return _to_uint8(out + noise)
