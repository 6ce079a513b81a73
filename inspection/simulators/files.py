"""X-ray and camera simulators: they write real image files (and sidecars) into a watched folder.

X-ray: a DICOS Digital X-Ray image (DICOM file format, 16-bit grey) whose Patient ID (0010,0020) is the
waybill, or a PNG/JPEG export whose waybill is in the sidecar; the sidecar `<file>.json` holds the
machine's findings. Camera: a label photo from inspection.vision.synth, so the waybill is really read back.
Every file is written under a hidden temporary name and renamed into place, as the real machines do.

Bad output on demand: "corrupt" (a DICOM file cut in half; a JPEG/PNG signature, then noise), "not-image"
(text under an image name), "bad-sidecar" (a sidecar that is not JSON), "oversized" (9 MiB past the file,
over the adapter's default 8 MiB limit).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

BAD_KINDS = ("corrupt", "not-image", "bad-sidecar", "oversized")


def xray_pixels(seed: int, size: int = 128) -> np.ndarray:
    """A plausible 16-bit X-ray: a parcel's box with a few dense objects inside."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 60000, np.uint16)
    img[size // 8: -size // 8, size // 8: -size // 8] = 42000
    for _ in range(3):
        x, y = rng.integers(size // 4, 3 * size // 4, 2)
        img[y: y + size // 10, x: x + size // 6] = int(rng.integers(5000, 20000))
    return img


def dicos_bytes(waybill: str, pixels: np.ndarray) -> bytes:
    """A DICOS Digital X-Ray image in the DICOM file format, the waybill as its Patient ID."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.501.2.1"  # DICOS DX Image Storage - For Presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientID = waybill  # DICOS: the object of inspection's id
    ds.Modality = "DX"
    ds.AcquisitionDateTime = "20261201103000"
    ds.set_pixel_data(pixels, "MONOCHROME2", 16)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def export_bytes(pixels: np.ndarray, fmt: str) -> bytes:
    """An 8-bit PNG or JPEG export of an X-ray."""
    grey = (pixels >> 8).astype(np.uint8)
    ok, buf = cv2.imencode(".png" if fmt == "png" else ".jpg", grey)
    assert ok, "encoding failed"
    return buf.tobytes()


def write_atomically(path: Path, content: bytes) -> None:
    """Writes under a hidden temporary name, then renames into place (a watcher never sees half a file)."""
    temp = path.with_name(f".{path.name}.tmp")
    with temp.open("wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)


def write_xray(folder: Path, name: str, waybill: str, fmt: str = "dicom", findings: list[dict[str, Any]] | None = None,
               bad: str = "", seed: int = 0) -> Path:
    """Writes one X-ray file (sidecar first), as the machine would; returns the image's path."""
    pixels = xray_pixels(seed)
    content = dicos_bytes(waybill, pixels) if fmt == "dicom" else export_bytes(pixels, fmt)
    path = folder / f"{name}.{'dcm' if fmt == 'dicom' else fmt}"
    sidecar: dict[str, Any] = {"findings": findings or []}
    if fmt != "dicom":
        sidecar["waybill"] = waybill
    side = json.dumps(sidecar).encode() if bad != "bad-sidecar" else b"{not json"
    write_atomically(folder / f"{path.name}.json", side)
    write_atomically(path, spoil(content, bad))
    return path


def write_camera(folder: Path, name: str, waybill: str, bad: str = "", seed: int = 0,
                 symbology: str = "Code128") -> Path:
    """Writes one label photo of the waybill (made by inspection.vision.synth); returns its path."""
    from inspection.vision.synth import make_photo

    photo = make_photo(seed, symbology, conditions=easy_conditions(symbology), text=waybill)
    path = folder / f"{name}.jpg"
    write_atomically(path, spoil(photo.jpeg, bad))
    return path


def easy_conditions(symbology: str) -> Any:
    """Well-lit, sharp conditions: the simulator's photos are meant to be read."""
    from inspection.vision.synth import MODULE_PX, Conditions

    return Conditions(module_px=MODULE_PX[symbology][1], angle_deg=5.0, tilt=0.02, blur_sigma=0.4, motion_px=0.0,
                      motion_deg=0.0, noise_sigma=2.0, light_low=0.95, spot=0.0, jpeg_quality=92)


def spoil(content: bytes, bad: str) -> bytes:
    """The bad output named, made from a good file."""
    if bad == "corrupt" and content[128:132] == b"DICM":
        return content[: len(content) // 2]  # the header survives, the pixel data is cut short
    if bad == "corrupt":  # the signature survives, the rest is noise: it looks like an image, and is none
        noise = np.random.default_rng(len(content)).integers(0, 256, len(content) // 2, dtype=np.uint8)
        return content[:64] + noise.tobytes()
    if bad == "not-image":
        return b"this is a log file, not an image\n" * 20
    if bad == "oversized":
        return content + b"\0" * (9 * 1024 * 1024)
    if bad and bad != "bad-sidecar":
        raise ValueError(f"unknown bad output {bad!r} (known: {', '.join(BAD_KINDS)})")
    return content
