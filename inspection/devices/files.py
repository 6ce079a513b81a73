"""What a camera's or an X-ray machine's image file says: the ScanEvent of one file, never raising.

Camera (kind = "camera"): a JPEG or PNG photo of the label. The waybill is read from the photo with
inspection.vision.read_codes: the Code 128, QR and DataMatrix codes whose text is a waybill number (EAN-13
codes are products' GTINs, never a waybill). Exactly one distinct waybill is the reading; none is
LABEL_UNREADABLE and two different ones AMBIGUOUS_CODES (never a guess): the image still goes, for a person
to read. The image goes as IMAGE_ROLE_LABEL, and also as IMAGE_ROLE_ITEM_PHOTO when the device is a goods
camera (`goods = true`), so the gateway screens it against the blocklist's image fingerprints.

X-ray (kind = "xray"): a DICOM/DICOS file, or a JPEG/PNG export. The waybill of a DICOM/DICOS file is its
Patient ID (0010,0020), which DICOS uses for the object of inspection; its time is AcquisitionDateTime, else
ContentDate + ContentTime, else the file's mtime. Findings, and the waybill of a JPEG/PNG export, come from
the sidecar `<file>.json` (written before the image, or complete when the image is):

    {"waybill": "SF1234567890", "findings": [{"category": "BATTERY", "description": "lithium cells",
                                              "confidence": 0.93, "alarm": true}]}

Every key is optional; category is 1 to 64 characters, description at most 200, confidence 0 to 1, alarm a
boolean, at most 32 findings. A waybill in both the file and the sidecar must agree (else
WAYBILL_CONFLICT); none at all is NO_WAYBILL. The image goes as IMAGE_ROLE_XRAY.

Unreadable files: OVERSIZED_IMAGE (the event's image bytes over max_image_bytes, 8 MiB by default: a goods
camera sends its photo twice; keep it under the gateway's GRPC_MAX_MESSAGE_BYTES and BLOB_MAX_BYTES),
NOT_AN_IMAGE, CORRUPT_IMAGE, BAD_SIDECAR; such a file's bytes do not go (only their SHA-256), and the file
is moved to bad/.
"""

from __future__ import annotations

import io
import json
import logging
import os
import struct
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from courier.v1 import inspection_pb2 as pb
from inspection.config import Device
from inspection.events import Unreadable, event, is_waybill, mark_unreadable

log = logging.getLogger("inspection.devices")
MAX_FINDINGS = 32
DICOM = "application/dicom"
NOT_WAYBILL_FORMATS = {"ean13"}


@dataclass(frozen=True)
class Outcome:
    """The event of one file, and whether the file was read (done/) or not (bad/)."""

    event: pb.ScanEvent
    read: bool


def file_event(device: Device, content: bytes, sidecar: bytes | None, mtime: float) -> Outcome:
    """The event of one image file and its sidecar, for a camera or an X-ray folder."""
    kind = pb.SCAN_KIND_XRAY if device.opt("kind") == "xray" else pb.SCAN_KIND_CAMERA
    ev = event(kind, device.id, device.location, at=mtime)
    copies = 2 if kind == pb.SCAN_KIND_CAMERA and device.opt("goods") else 1  # LABEL and ITEM_PHOTO
    if len(content) * copies > device.opt("max_image_bytes"):
        return _bad(ev, Unreadable("OVERSIZED_IMAGE", f"over {device.opt('max_image_bytes')} bytes"), content)
    image = _load(content)
    if isinstance(image, Unreadable):
        return _bad(ev, image, content)
    media, pixels = image
    if kind == pb.SCAN_KIND_CAMERA:
        return _camera(device, ev, content, media, pixels)
    return _xray(ev, content, media, sidecar)


def oversized(device: Device, digest: str, size: int, limit: int, mtime: float) -> Outcome:
    """The event of a file too large to send (or to hold: only its hash was read)."""
    kind = pb.SCAN_KIND_XRAY if device.opt("kind") == "xray" else pb.SCAN_KIND_CAMERA
    ev = event(kind, device.id, device.location, at=mtime)
    why = Unreadable("OVERSIZED_IMAGE", f"over {limit} bytes")
    return Outcome(mark_unreadable(ev, why, b"", digest=digest, size=size), read=False)


def _bad(ev: pb.ScanEvent, why: Unreadable, raw: bytes) -> Outcome:
    return Outcome(mark_unreadable(ev, why, raw), read=False)


def _load(content: bytes) -> tuple[str, Any] | Unreadable:
    from inspection.vision.load import ImageUnreadable, load_image, media_type

    media = media_type(content)
    if not media:
        return Unreadable("NOT_AN_IMAGE", "neither JPEG, PNG nor DICOM")
    try:
        return media, load_image(content)
    except ImageUnreadable as err:
        return Unreadable("CORRUPT_IMAGE", str(err.reason)[:150])
    # The decoders under load_image (OpenCV, pydicom) can raise other types on hostile bytes; that is a bug
    # there, logged with its traceback, and the file is still unreadable (bad/) rather than retried forever.
    except Exception as err:
        log.exception("image decoder failed on a %s file", media)
        return Unreadable("CORRUPT_IMAGE", f"the decoder failed ({type(err).__name__})")


def _camera(device: Device, ev: pb.ScanEvent, content: bytes, media: str, pixels: Any) -> Outcome:
    from inspection.vision.reader import read_codes

    ev.images.append(pb.ScanImage(role=pb.IMAGE_ROLE_LABEL, content=content, media_type=media))
    if device.opt("goods"):
        ev.images.append(pb.ScanImage(role=pb.IMAGE_ROLE_ITEM_PHOTO, content=content, media_type=media))
    waybills = sorted({c.text for c in read_codes(pixels) if _format(c.format) not in NOT_WAYBILL_FORMATS
                       and is_waybill(c.text)})
    if len(waybills) == 1:
        ev.waybill_no = waybills[0]
    elif waybills:
        mark_unreadable(ev, Unreadable("AMBIGUOUS_CODES", f"{len(waybills)} different waybill codes"), content)
    else:
        mark_unreadable(ev, Unreadable("LABEL_UNREADABLE", "no waybill code read from the photo"), content)
    return Outcome(ev, read=True)


def _format(name: object) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum()).removeprefix("barcodeformat")


def _xray(ev: pb.ScanEvent, content: bytes, media: str, sidecar: bytes | None) -> Outcome:
    side = parse_sidecar(sidecar) if sidecar is not None else ({}, [])
    if isinstance(side, Unreadable):
        return _bad(ev, side, sidecar or b"")
    waybill, findings = side
    if media == DICOM:
        tags = dicom_tags(content)
        if isinstance(tags, Unreadable):
            return _bad(ev, tags, content)
        file_waybill, at = tags
        if at is not None:
            ev.device_time.FromDatetime(at)
        if file_waybill and waybill.get("waybill") and file_waybill != waybill["waybill"]:
            ev.images.append(pb.ScanImage(role=pb.IMAGE_ROLE_XRAY, content=content, media_type=media))
            mark_unreadable(ev, Unreadable("WAYBILL_CONFLICT", "the file and its sidecar name different waybills"),
                            content)
            return Outcome(ev, read=True)
        waybill.setdefault("waybill", file_waybill)
    ev.images.append(pb.ScanImage(role=pb.IMAGE_ROLE_XRAY, content=content, media_type=media))
    ev.findings.extend(findings)
    ev.waybill_no = waybill.get("waybill") or ""
    if not ev.waybill_no:
        mark_unreadable(ev, Unreadable("NO_WAYBILL", "neither the file nor a sidecar names a waybill"), content)
    return Outcome(ev, read=True)


def dicom_tags(content: bytes) -> tuple[str, datetime | None] | Unreadable:
    """The Patient ID (the DICOS object of inspection) and the acquisition time of a DICOM/DICOS file."""
    import pydicom
    from pydicom.errors import BytesLengthException, InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns on bad files too; the outcome below says it once
            ds = pydicom.dcmread(io.BytesIO(content), stop_before_pixels=True)
        patient_id = str(ds.get("PatientID", "") or "").strip()
        stamp = str(ds.get("AcquisitionDateTime", "") or "") or (
            str(ds.get("ContentDate", "") or "") + str(ds.get("ContentTime", "") or ""))
    # pydicom raises several types on bad bytes (InvalidDicomError, struct.error, ValueError, EOFError...).
    except (InvalidDicomError, BytesLengthException, NotImplementedError, ValueError, EOFError, OSError, KeyError,
            TypeError, OverflowError, struct.error) as err:
        return Unreadable("CORRUPT_IMAGE", f"DICOM header: {type(err).__name__}")
    if patient_id and not is_waybill(patient_id):
        return Unreadable("BAD_WAYBILL", "the Patient ID is not a waybill number")
    return patient_id, _dicom_time(stamp)


def _dicom_time(stamp: str) -> datetime | None:
    digits = "".join(ch for ch in stamp.split(".")[0] if ch.isdigit())[:14]
    try:
        return datetime.strptime(digits, "%Y%m%d%H%M%S") if len(digits) == 14 else None
    except ValueError:
        return None


def parse_sidecar(raw: bytes) -> tuple[dict[str, str], list[pb.DetectorFinding]] | Unreadable:
    """The sidecar's waybill and findings, validated strictly; never raises."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return Unreadable("BAD_SIDECAR", "not a JSON document")
    if not isinstance(doc, dict) or set(doc) - {"waybill", "findings"}:
        return Unreadable("BAD_SIDECAR", "not an object of waybill and findings")
    waybill = doc.get("waybill", "")
    if not isinstance(waybill, str) or (waybill and not is_waybill(waybill)):
        return Unreadable("BAD_SIDECAR", "waybill is not a waybill number")
    found = doc.get("findings", [])
    if not isinstance(found, list) or len(found) > MAX_FINDINGS:
        return Unreadable("BAD_SIDECAR", f"findings must be a list of at most {MAX_FINDINGS}")
    findings = [_finding(f) for f in found]
    bad = next((f for f in findings if isinstance(f, Unreadable)), None)
    if bad is not None:
        return bad
    return ({"waybill": waybill} if waybill else {}), findings  # type: ignore[return-value]


def _finding(raw: Any) -> pb.DetectorFinding | Unreadable:
    if not isinstance(raw, dict) or set(raw) - {"category", "description", "confidence", "alarm"}:
        return Unreadable("BAD_SIDECAR", "a finding is not an object of category, description, confidence, alarm")
    category, description = raw.get("category"), raw.get("description", "")
    confidence, alarm = raw.get("confidence", 0.0), raw.get("alarm", False)
    if not isinstance(category, str) or not 1 <= len(category) <= 64 or not category.isprintable():
        return Unreadable("BAD_SIDECAR", "a finding's category must be 1 to 64 printable characters")
    if not isinstance(description, str) or len(description) > 200 or not description.isprintable():
        return Unreadable("BAD_SIDECAR", "a finding's description must be at most 200 printable characters")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        return Unreadable("BAD_SIDECAR", "a finding's confidence must be a number from 0 to 1")
    if not isinstance(alarm, bool):
        return Unreadable("BAD_SIDECAR", "a finding's alarm must be true or false")
    return pb.DetectorFinding(category=category, description=description, confidence=float(confidence), alarm=alarm)


def sidecar_of(path: os.PathLike[str] | str) -> str:
    """The sidecar's file name of an image file."""
    return f"{os.fspath(path)}.json"
