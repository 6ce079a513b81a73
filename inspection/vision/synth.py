"""Realistic test photos of parcel labels: a waybill code on a label, pasted on cardboard, seen by a camera.

A photo is drawn from a seeded numpy Generator, so a seed reproduces it; it comes with its ground truth (the
code's text and format, and where its corners landed). The scene is the label (white paper, the code, printed
text and rules) on a cluttered parcel (cardboard texture, tape, printed marks), then the camera: a perspective
view rotated up to 30 degrees, the code's module size (how many pixels one bar or cell covers), optical and
motion blur, uneven light (a gradient, a vignette, a specular spot), sensor noise and JPEG compression.

How hard a photo is, is set by `Conditions` (drawn by `draw_conditions`, or given by a test to force a hard case).
Blur is bounded by the module size (MAX_MOTION, MAX_BLUR): a blur wider than a bar leaves nothing to read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np
import zxingcpp

from inspection.vision.scene import cardboard, clutter, composite, draw_label, lighting, sensor

WIDTH, HEIGHT = 1280, 960
SYMBOLOGIES = ("Code128", "QRCode", "DataMatrix", "EAN13")
# Label-space pixels per module: the label is drawn this fine, then the camera warp scales it to the module size.
UNIT = 4
CodeState = Literal["intact", "damaged", "absent"]
_PREFIXES = ("SF", "JD", "YT", "ZTO", "STO", "EMS", "JT", "YD", "DPK", "HT")
_ALNUM = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))
# The module size (pixels per module in the photo) each symbology is drawn at: 1D codes carry ~100-230 modules
# across, 2D codes 12-33, so a 2D code covers about as much of the frame with far larger modules.
MODULE_PX = {"Code128": (1.6, 3.6), "EAN13": (1.6, 4.0), "QRCode": (2.6, 7.0), "DataMatrix": (2.6, 7.0)}
# Past these the narrowest bars and spaces merge: motion blur at most 0.8 of a module, all blur together at most
# half a module. Photos drawn past them were mostly unreadable even from a crop cut at the code's true corners, so
# they would measure the camera, not the reader; a conveyor camera's exposure is set so that a parcel moves less
# than a module while the shutter is open for the same reason.
MAX_MOTION, MAX_BLUR = 0.8, 0.5
_ZX_FORMAT = {"Code128": zxingcpp.BarcodeFormat.Code128, "QRCode": zxingcpp.BarcodeFormat.QRCode,
              "DataMatrix": zxingcpp.BarcodeFormat.DataMatrix, "EAN13": zxingcpp.BarcodeFormat.EAN13}


@dataclass(frozen=True)
class Conditions:
    """How the camera saw the label: every figure that makes a photo easy or hard."""

    module_px: float  # pixels per module in the photo
    angle_deg: float  # in-plane rotation of the label
    tilt: float  # perspective: corner displacement as a share of the label's size
    blur_sigma: float  # optical (Gaussian) blur, pixels
    motion_px: float  # motion blur length, pixels (0: none)
    motion_deg: float
    noise_sigma: float  # sensor noise, grey levels
    light_low: float  # darkest gain of the uneven lighting (1.0: even)
    spot: float  # specular spot brightness added, grey levels (0: none)
    jpeg_quality: int


@dataclass(frozen=True)
class Photo:
    """A generated photo (JPEG bytes) and its ground truth."""

    jpeg: bytes
    text: str  # "" when the photo carries no code
    format: str
    corners: tuple[tuple[float, float], ...]  # the code's four corners in the photo
    conditions: Conditions


def waybill_text(rng: np.random.Generator, symbology: str) -> str:
    """A plausible content: a waybill number (Code 128, DataMatrix), a tracking URL or number (QR), a GTIN."""
    if symbology == "EAN13":
        digits = [int(d) for d in rng.integers(0, 10, 12)]
        check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
        return "".join(map(str, digits)) + str(check)
    length = int(rng.integers(12, 17))
    if rng.random() < 0.2:  # a number with letters throughout: longer in Code 128 (no digit-pair compression)
        number = "".join(rng.choice(_ALNUM, length))
    else:
        prefix = str(rng.choice(_PREFIXES))
        number = prefix + "".join(map(str, rng.integers(0, 10, length - len(prefix))))
    if symbology == "QRCode" and rng.random() < 0.5:
        return f"https://t.courier.example/w/{number}"
    return number


def code_bitmap(symbology: str, text: str) -> np.ndarray:
    """The code at one pixel per module, with its quiet zones (0 black, 255 white); 1D codes are one row tall."""
    options = {"forceSquare": True} if symbology == "DataMatrix" else {"ecLevel": "M"} if symbology == "QRCode" else {}
    bitmap = np.asarray(zxingcpp.create_barcode(text, _ZX_FORMAT[symbology], **options).to_image(scale=1))
    if symbology in ("Code128", "EAN13"):
        bitmap = bitmap[bitmap.shape[0] // 2: bitmap.shape[0] // 2 + 1]
    if symbology == "DataMatrix":  # zxing adds one module; two more each side, as printers leave
        bitmap = cv2.copyMakeBorder(bitmap, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=255)
    return bitmap


def draw_conditions(rng: np.random.Generator, symbology: str) -> Conditions:
    """Random conditions within the measured envelope of the warehouse cameras."""
    low, high = MODULE_PX[symbology]
    module = float(rng.uniform(low, high))
    motion = float(rng.uniform(1.0, min(6.0, MAX_MOTION * module))) if rng.random() < 0.3 else 0.0
    # Optics and motion together stay under MAX_BLUR of a module (a box of length L blurs like sigma L/sqrt(12)).
    blur = min(float(rng.uniform(0.3, min(1.3, 0.45 * module))),
               float(np.sqrt(max((MAX_BLUR * module) ** 2 - motion ** 2 / 12, 0.01))))
    return Conditions(
        module_px=module, angle_deg=float(rng.uniform(-30, 30)), tilt=float(rng.uniform(0, 0.07)),
        blur_sigma=blur, motion_px=motion,
        motion_deg=float(rng.uniform(0, 180)), noise_sigma=float(rng.uniform(2, 9)),
        light_low=float(rng.uniform(0.55, 1.0)), spot=float(rng.uniform(30, 100)) if rng.random() < 0.5 else 0.0,
        jpeg_quality=int(rng.integers(55, 93)))


def hard_cases(symbology: str, angle_deg: float = 30.0) -> dict[str, Conditions]:
    """The edges of the envelope one at a time, each on a label turned `angle_deg`, the rest middling."""
    low, high = MODULE_PX[symbology]
    base = Conditions(module_px=low + (high - low) / 3, angle_deg=angle_deg, tilt=0.03, blur_sigma=0.5,
                      motion_px=0.0, motion_deg=0.0, noise_sigma=5.0, light_low=0.8, spot=0.0, jpeg_quality=75)
    blur = MAX_BLUR * base.module_px * 0.95
    motion = MAX_MOTION * base.module_px * 0.95
    return {
        "smallest modules": replace(base, module_px=low, blur_sigma=0.4),
        "most blur": replace(base, blur_sigma=blur),
        "motion across": replace(base, blur_sigma=0.3, motion_px=motion, motion_deg=angle_deg),
        "dark and glare": replace(base, light_low=0.55, spot=100.0),
        "noise and JPEG": replace(base, noise_sigma=9.0, jpeg_quality=55),
        "perspective": replace(base, tilt=0.07),
    }


def make_photo(seed: int | np.random.Generator, symbology: str, conditions: Conditions | None = None,
               text: str | None = None, code: CodeState = "intact") -> Photo:
    """One photo of a label carrying `symbology`; the same seed (and conditions) gives the same photo.

    `code` "damaged" wipes the code out across all its bars (1D) or a third of its area (2D), past what error
    correction repairs; "absent" leaves the label's code area blank. Either way no reader may read a code, and
    the photo's text and format say what must not be read ("absent": empty).
    """
    if symbology not in SYMBOLOGIES:
        raise ValueError(f"unknown symbology {symbology!r} (known: {', '.join(SYMBOLOGIES)})")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    text = text if text is not None else waybill_text(rng, symbology)
    cond = conditions if conditions is not None else draw_conditions(rng, symbology)
    label, code_box = _label(rng, symbology, text, code)
    scene = clutter(rng, cardboard(rng, HEIGHT, WIDTH))
    quad = _placement(rng, label.shape[1], label.shape[0], cond)
    homography = cv2.getPerspectiveTransform(_rect(label.shape[1], label.shape[0]), quad)
    scene = composite(scene, label, homography, float(np.linalg.norm(quad[1] - quad[0])) / label.shape[1])
    corners = cv2.perspectiveTransform(code_box.reshape(1, 4, 2), homography).reshape(4, 2)
    frame = sensor(rng, lighting(rng, scene, cond.light_low, cond.spot), cond)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, cond.jpeg_quality])
    assert ok, "JPEG encoding failed"
    truth = ("", "") if code == "absent" else (text, symbology)
    return Photo(buf.tobytes(), *truth, tuple((float(x), float(y)) for x, y in corners), cond)


def _rect(w: int, h: int) -> np.ndarray:
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)


def _label(rng: np.random.Generator, symbology: str, text: str, state: CodeState) -> tuple[np.ndarray, np.ndarray]:
    """The label in label space (BGR, UNIT pixels per module) and the code's box on it (4x2)."""
    bitmap = code_bitmap(symbology, text)
    linear = bitmap.shape[0] == 1
    code = cv2.resize(bitmap, (bitmap.shape[1] * UNIT, bitmap.shape[1] * UNIT * int(rng.integers(18, 36)) // 100
                               if linear else bitmap.shape[0] * UNIT), interpolation=cv2.INTER_NEAREST)
    if state == "damaged":
        _wipe(rng, code, linear)
    elif state == "absent":
        code[:] = 255
    return draw_label(rng, code, text if linear and state != "absent" else "", linear)


def _wipe(rng: np.random.Generator, code: np.ndarray, linear: bool) -> None:
    """Damage past repair: a band across every bar of a 1D code, a third of a 2D code's area painted over."""
    h, w = code.shape
    if linear:
        x = int(rng.uniform(0.3, 0.6) * w)
        code[:, x: x + w // 6] = 0 if rng.random() < 0.5 else 255
    else:
        y = int(rng.uniform(0.2, 0.45) * h)
        code[y: y + h // 3 + UNIT, :] = 255


def _placement(rng: np.random.Generator, w: int, h: int, cond: Conditions) -> np.ndarray:
    """Where the label's corners land in the photo: scaled to the module size, rotated, tilted, inside the frame."""
    scale = cond.module_px / UNIT
    size = np.array([w, h], dtype=np.float64) * scale
    fit = min(1.0, 0.9 * WIDTH / size[0], 0.9 * HEIGHT / size[1])  # a label larger than the frame is backed away
    size *= fit
    theta = np.deg2rad(cond.angle_deg)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    half = (_rect(1, 1).astype(np.float64) - 0.5) * size
    jitter = rng.uniform(-cond.tilt, cond.tilt, (4, 2)) * size
    quad = (half + jitter) @ rot.T
    span = quad.max(axis=0) - quad.min(axis=0)
    room = np.maximum(np.array([WIDTH, HEIGHT]) - span, 0) / 2
    centre = np.array([WIDTH, HEIGHT]) / 2 + rng.uniform(-1, 1, 2) * room * 0.9
    return np.asarray(quad - (quad.max(axis=0) + quad.min(axis=0)) / 2 + centre, dtype=np.float32)
