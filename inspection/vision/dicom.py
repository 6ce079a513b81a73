"""DICOM and DICOS (the security-screening standard built on DICOM) images as grey uint8, first frame only.

X-ray machines write 12 to 16 bits per pixel, sometimes MONOCHROME1 (low values white), with a rescale and a window
in the header saying which values matter. The pixels go through the modality rescale, then the window (or VOI LUT)
when there is one, whose output range becomes 0..255; without one, the range the values span (less the outermost
half per cent at each end) is stretched to 0..255. MONOCHROME1 is then turned over, so that what is displayed dark comes
out dark. Eight-bit grey without a rescale or window is kept as written; colour becomes grey.

The header is read first, without the pixels: no Rows/Columns, or more pixels than the limit, is refused before
any decoding. JPEG-compressed pixel data that pydicom has no decoder for here is handed to OpenCV's.
"""

from __future__ import annotations

import struct
import warnings
from io import BytesIO
from typing import Any

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import pixel_array

from inspection.vision.load import ImageUnreadable, check_pixels

# Transfer syntaxes whose pixel data is a JPEG or JPEG 2000 stream OpenCV can decode.
_OPENCV_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.90",
                    "1.2.840.10008.1.2.4.91"}


def load_dicom(data: bytes, max_pixels: int) -> np.ndarray:
    """The first frame of a DICOM/DICOS file as a 2D uint8 grey array."""
    try:
        return _load(data, max_pixels)
    except (BytesLengthException, NotImplementedError, OverflowError, TypeError, ValueError) as exc:
        # pydicom parses element values only when they are read, so a mangled header (a length that does not
        # fit its type, an encoding it has no reader for, Rows read as several values) raises here rather
        # than in dcmread.
        raise ImageUnreadable(f"corrupt DICOM header: {_plain(exc)}") from None


def _load(data: bytes, max_pixels: int) -> np.ndarray:
    header = _read(data, stop_before_pixels=True)
    rows, columns = header.get("Rows"), header.get("Columns")
    if rows is None or columns is None:
        raise ImageUnreadable("DICOM file holds no image (no Rows and Columns)")
    check_pixels(int(columns), int(rows), max_pixels, "DICOM image")
    ds = _read(data, stop_before_pixels=False)
    if "PixelData" not in ds:
        raise ImageUnreadable("DICOM file holds no pixel data")
    frame = _first_frame(ds)
    if frame.shape[:2] != (int(rows), int(columns)):
        raise ImageUnreadable(f"corrupt DICOM: the header says {columns}x{rows}, the pixels are "
                              f"{frame.shape[1]}x{frame.shape[0]}")
    return _to_grey(frame, ds)


def _read(data: bytes, *, stop_before_pixels: bool) -> Dataset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about every small deviation from the standard
            return pydicom.dcmread(BytesIO(data), stop_before_pixels=stop_before_pixels)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError, struct.error) as exc:
        # struct.error: a file cut inside its meta group (at byte 152 of a real file), found by the fuzzer
        raise ImageUnreadable(f"corrupt DICOM: {_plain(exc)}") from None


def _first_frame(ds: Dataset) -> np.ndarray:
    """Frame 0 as decoded by pydicom, or by OpenCV for JPEG data pydicom has no decoder for."""
    syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", ""))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(pixel_array(ds, index=0))
    except (RuntimeError, NotImplementedError) as exc:
        if syntax in _OPENCV_SYNTAXES:
            return _opencv_frame(ds)
        raise ImageUnreadable(f"DICOM pixel data that cannot be decoded here ({_syntax_name(syntax)}): "
                              f"{_plain(exc)}") from None
    except (ValueError, KeyError, AttributeError, TypeError, IndexError, EOFError) as exc:
        raise ImageUnreadable(f"corrupt DICOM pixel data: {_plain(exc)}") from None


def _opencv_frame(ds: Dataset) -> np.ndarray:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    try:
        stream = pydicom.encaps.get_frame(ds.PixelData, 0, number_of_frames=frames)
    except (ValueError, KeyError, IndexError) as exc:
        raise ImageUnreadable(f"corrupt DICOM pixel data: {_plain(exc)}") from None
    image = cv2.imdecode(np.frombuffer(stream, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageUnreadable("corrupt DICOM pixel data: its JPEG stream could not be decoded")
    return image


def _to_grey(frame: np.ndarray, ds: Dataset) -> np.ndarray:
    """Rescaled, windowed, stretched to uint8, MONOCHROME1 turned over, colour made grey."""
    if frame.ndim == 3:  # colour: pydicom gives RGB, YBR data included
        rgb = frame if frame.dtype == np.uint8 else _stretch(frame.astype(np.float64), None)
        return np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    windowed = ("WindowCenter" in ds and "WindowWidth" in ds) or "VOILUTSequence" in ds
    rescaled = float(ds.get("RescaleSlope", 1) or 1) != 1 or float(ds.get("RescaleIntercept", 0) or 0) != 0
    if frame.dtype == np.uint8 and not windowed and not rescaled:
        grey = frame  # eight bits as the device wrote them
    elif windowed:
        values = np.asarray(apply_voi_lut(apply_modality_lut(frame, ds), ds), dtype=np.float64)
        grey = _stretch(values, _voi_range(ds))  # the window's output range is the display's black to white
    else:
        grey = _stretch(np.asarray(apply_modality_lut(frame, ds), dtype=np.float64), None)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        grey = 255 - grey
    return np.ascontiguousarray(grey, dtype=np.uint8)


def _voi_range(ds: Dataset) -> tuple[float, float]:
    """What pydicom's VOI step outputs: a VOI LUT's entries (0..2**bits-1), or a window's range of BitsStored."""
    if "VOILUTSequence" in ds:
        return 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    bits = int(ds.get("BitsStored", 8) or 8)
    if int(ds.get("PixelRepresentation", 0) or 0):
        return -float(2 ** (bits - 1)), float(2 ** (bits - 1) - 1)
    return 0.0, float(2 ** bits - 1)


def _stretch(values: np.ndarray, span: tuple[float, float] | None) -> np.ndarray:
    """Values mapped linearly onto 0..255: over span, or else over the 0.5th to the 99.5th percentile of a
    sample of them, so that a few hot or dead pixels do not flatten everything else."""
    if span is None:
        sample = values[:: max(1, values.shape[0] // 512), :: max(1, values.shape[1] // 512)]
        low, high = (float(p) for p in np.percentile(sample, (0.5, 99.5)))
    else:
        low, high = span
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return np.clip((values - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)


def _syntax_name(uid: str) -> str:
    name: Any = getattr(pydicom.uid.UID(uid), "name", "") if uid else ""
    return str(name or uid or "unknown transfer syntax")


def _plain(exc: BaseException) -> str:
    """An exception's message on one short line (pydicom's can run to paragraphs)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
