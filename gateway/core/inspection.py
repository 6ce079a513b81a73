"""Inspections after acceptance: what a scan is, the rules it must pass, and what it decides for the line.

A scan is checked, its images fingerprinted and screened, and then recorded against the parcel's state
as the database holds it at that moment (the repository locks the parcel and calls `decide`), so a
decision never rests on a state that changed meanwhile.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from gateway.core.errors import FieldViolation, Violations
from gateway.core.model import ParcelState, ReasonRecord

EVENT_ID = re.compile(r"[A-Za-z0-9_.:\-]{8,64}")
WAYBILL_NO = re.compile(r"[A-Z0-9\-]{8,32}")
MAX_IMAGES, MAX_FINDINGS = 8, 32
MAX_WEIGHT_G, MAX_LENGTH_MM = 10**8, 10**5


class ScanKind(enum.Enum):
    """The device or check behind a result; names match the proto's SCAN_KIND_* values."""

    MANUAL = "MANUAL"
    HANDHELD = "HANDHELD"
    XRAY = "XRAY"
    DWS = "DWS"
    SCALE = "SCALE"
    CAMERA = "CAMERA"


class ImageRole(enum.Enum):
    """What an image shows; only item photos are screened against image fingerprints."""

    UNSPECIFIED = "UNSPECIFIED"
    ITEM_PHOTO = "ITEM_PHOTO"
    LABEL = "LABEL"
    XRAY = "XRAY"


class Routing(enum.Enum):
    """What the sorting line does; names match the proto's ROUTING_DECISION_* values."""

    PASS = "PASS"
    DIVERT_TO_HOLD = "DIVERT_TO_HOLD"
    REJECT = "REJECT"


@dataclass(frozen=True)
class ScanImage:
    """One image of a scan."""

    role: ImageRole
    content: bytes
    media_type: str = ""


@dataclass(frozen=True)
class Finding:
    """One finding of the device's own detector."""

    category: str
    description: str = ""
    confidence: float = 0.0
    alarm: bool = False


@dataclass(frozen=True)
class ScanCommand:
    """One inspection result, from a scanner's stream or a single RecordInspection."""

    event_id: str
    device_id: str
    kind: ScanKind | None
    waybill_no: str = ""
    weight_g: int = 0
    length_mm: int = 0
    width_mm: int = 0
    height_mm: int = 0
    images: tuple[ScanImage, ...] = ()
    findings: tuple[Finding, ...] = ()
    device_time: datetime | None = None
    location: str = ""
    unreadable: str = ""
    raw_sha256: str = ""
    terminal_id: str = ""
    prohibited_found: bool = False
    notes: str = ""


@dataclass(frozen=True)
class ParcelAtScan:
    """The parcel as the database holds it while the scan is recorded (locked)."""

    shipment_id: str
    waybill_no: str
    state: ParcelState
    hold_reason: str
    weight_g: int | None


@dataclass(frozen=True)
class WeightPolicy:
    """How far a measured weight may be from the one recorded at acceptance before it is a hint."""

    share: float = 0.2
    grams: int = 200

    def far(self, recorded: int, measured: int) -> bool:
        """True when the two weights differ by more than both the share and the grams allow."""
        return abs(measured - recorded) > max(self.share * recorded, self.grams)


@dataclass(frozen=True)
class PreparedScan:
    """A checked scan with what does not depend on the parcel: image hashes (sha256 hex) and screening hits."""

    command: ScanCommand
    image_sha256: tuple[str, ...]
    image_hits: tuple[dict[str, Any], ...] = ()
    reasons: tuple[ReasonRecord, ...] = ()  # found before the parcel was looked at (unreadable images)


@dataclass(frozen=True)
class ScanOutcome:
    """What a scan decided, and whether it holds the parcel now."""

    routing: Routing
    reasons: tuple[ReasonRecord, ...]
    hits: tuple[dict[str, Any], ...]
    hold: bool = False


@dataclass(frozen=True)
class ScanResult:
    """The answer to one scan (first time or replayed)."""

    event_id: str
    routing: Routing
    reasons: tuple[ReasonRecord, ...]
    hits: tuple[dict[str, Any], ...] = ()
    waybill_no: str = ""
    state: ParcelState | None = None
    event_seq: int = 0
    recorded_at: datetime | None = None
    replayed: bool = False
    image_sha256: tuple[str, ...] = field(default=())


def _check_numbers(v: Violations, cmd: ScanCommand) -> None:
    v.number("measurements.weight_g", cmd.weight_g, lo=0, hi=MAX_WEIGHT_G)
    for name in ("length_mm", "width_mm", "height_mm"):
        v.number(f"measurements.{name}", getattr(cmd, name), lo=0, hi=MAX_LENGTH_MM)


def _check_findings(v: Violations, findings: tuple[Finding, ...]) -> None:
    if len(findings) > MAX_FINDINGS:
        v.add("findings", f"at most {MAX_FINDINGS}, got {len(findings)}")
    for i, f in enumerate(findings[:MAX_FINDINGS]):
        v.text(f"findings[{i}].category", f.category, max_len=64, required=True)
        v.text(f"findings[{i}].description", f.description, max_len=200)
        if not 0.0 <= f.confidence <= 1.0:
            v.add(f"findings[{i}].confidence", f"must be between 0 and 1, got {f.confidence}")


def scan_violations(cmd: ScanCommand, *, max_image_bytes: int) -> list[FieldViolation]:
    """Every field of a scan that breaks its limits (the stream answers them in an ack, not by failing)."""
    v = Violations()
    if not EVENT_ID.fullmatch(cmd.event_id):
        v.add("event_id", "must be 8 to 64 characters of A-Z a-z 0-9 _ . : -")
    v.text("device_id", cmd.device_id, max_len=64, required=not cmd.terminal_id)
    if cmd.kind is None:
        v.add("kind", "is required")
    if cmd.waybill_no and not WAYBILL_NO.fullmatch(cmd.waybill_no):
        v.add("waybill_no", "must be 8 to 32 characters of A-Z 0-9 - (or empty when the label was unreadable)")
    _check_numbers(v, cmd)
    if len(cmd.images) > MAX_IMAGES:
        v.add("images", f"at most {MAX_IMAGES}, got {len(cmd.images)}")
    for i, image in enumerate(cmd.images[:MAX_IMAGES]):
        v.text(f"images[{i}].media_type", image.media_type, max_len=64)
        if not image.content:
            v.add(f"images[{i}].content", "is empty")
        elif len(image.content) > max_image_bytes:
            v.add(f"images[{i}].content", f"must be at most {max_image_bytes} bytes, got {len(image.content)}")
    _check_findings(v, cmd.findings)
    v.text("location", cmd.location, max_len=64)
    v.text("unreadable", cmd.unreadable, max_len=200)
    v.text("raw_sha256", cmd.raw_sha256, max_len=64)
    v.text("terminal_id", cmd.terminal_id, max_len=64)
    v.text("notes", cmd.notes, max_len=500, multiline=True)
    return v.items


def normalise_scan(cmd: ScanCommand) -> ScanCommand:
    """Upper-cases the waybill number as acceptance stores it (the same command when it already is)."""
    waybill_no = cmd.waybill_no.strip().upper()
    return cmd if waybill_no == cmd.waybill_no else replace(cmd, waybill_no=waybill_no)


def _alarm_hits(cmd: ScanCommand) -> list[dict[str, Any]]:
    return [{
        "entry_id": 0, "kind": f"{cmd.kind.value if cmd.kind else 'DEVICE'}_ALARM", "action": "HOLD",
        "field": f"findings[{i}]", "matched": f.category, "score": round(f.confidence, 4), "threshold": 0.0,
        "explanation": f"device {cmd.device_id or cmd.terminal_id} raised an alarm: {f.category}"
                       + (f" ({f.description})" if f.description else "") + f", confidence {f.confidence:.2f}",
        "entry_action": "",
    } for i, f in enumerate(cmd.findings) if f.alarm]


def _weight_hit(cmd: ScanCommand, parcel: ParcelAtScan, policy: WeightPolicy) -> dict[str, Any] | None:
    if not cmd.weight_g or not parcel.weight_g or not policy.far(parcel.weight_g, cmd.weight_g):
        return None
    return {
        "entry_id": 0, "kind": "WEIGHT_MISMATCH", "action": "REVIEW", "field": "measurements.weight_g",
        "matched": f"{cmd.weight_g} g", "score": round(abs(cmd.weight_g - parcel.weight_g) / parcel.weight_g, 4),
        "threshold": policy.share, "entry_action": "",
        "explanation": f"{cmd.device_id} weighed {cmd.weight_g} g; {parcel.weight_g} g was recorded at acceptance",
    }


def _reason(code: str, message: str, field_name: str = "") -> ReasonRecord:
    return ReasonRecord(code, message, field_name)


def _unresolved(prepared: PreparedScan) -> ScanOutcome:
    cmd = prepared.command
    if cmd.unreadable:
        why = _reason("DEVICE_OUTPUT_UNREADABLE", f"the device's output could not be read: {cmd.unreadable}")
    elif not cmd.waybill_no:
        why = _reason("LABEL_UNREADABLE", "no waybill number was read from the label", "waybill_no")
    else:
        why = _reason("UNKNOWN_WAYBILL", f"no parcel with waybill {cmd.waybill_no}", "waybill_no")
    return ScanOutcome(Routing.DIVERT_TO_HOLD, (*prepared.reasons, why), prepared.image_hits)


def decide(prepared: PreparedScan, parcel: ParcelAtScan | None, policy: WeightPolicy) -> ScanOutcome:
    """The sorting line's decision for a scan, given the parcel as it stands (None: none was found)."""
    cmd = prepared.command
    if parcel is None or cmd.unreadable:
        return _unresolved(prepared)
    hits = [*prepared.image_hits, *_alarm_hits(cmd)]
    weight = _weight_hit(cmd, parcel, policy)
    holding = [h for h in hits if h["action"] in ("HOLD", "REFUSE")]
    reasons = list(prepared.reasons)
    if cmd.prohibited_found:
        reasons.append(_reason("PROHIBITED_FOUND", "the manual check found prohibited, undeclared or suspect goods"))
    reasons += [_reason(h["kind"] if h["entry_id"] == 0 else f"SCREENING_{h['kind']}", h["explanation"], h["field"])
                for h in holding]
    if weight is not None:
        reasons.append(_reason("WEIGHT_MISMATCH", weight["explanation"], weight["field"]))
        hits.append(weight)
    if parcel.state is ParcelState.REFUSED:
        reasons.insert(0, _reason("PARCEL_REFUSED", f"the parcel was refused ({parcel.hold_reason or 'not accepted'})"))
        return ScanOutcome(Routing.REJECT, tuple(reasons), tuple(hits))
    if parcel.state is ParcelState.HELD:
        reasons.insert(0, _reason("PARCEL_HELD", f"the parcel is held ({parcel.hold_reason or 'pending review'})"))
        return ScanOutcome(Routing.DIVERT_TO_HOLD, tuple(reasons), tuple(hits))
    # A hit or a manual finding holds the parcel (where custody allows: not once dispatched); an image that
    # could not be read only takes it off the line for a person to look.
    holds = bool(holding) or cmd.prohibited_found
    if holds or prepared.reasons:
        can_hold = parcel.state in (ParcelState.ACCEPTED, ParcelState.STORED)
        return ScanOutcome(Routing.DIVERT_TO_HOLD, tuple(reasons), tuple(hits), hold=holds and can_hold)
    return ScanOutcome(Routing.PASS, tuple(reasons), tuple(hits))


def hold_reason(outcome: ScanOutcome) -> str:
    """The hold reason a scan writes on the parcel: its reasons that stop it."""
    return "; ".join(r.message for r in outcome.reasons if r.code != "WEIGHT_MISMATCH")


def event_kind(cmd: ScanCommand) -> str:
    """The kind of the history event a scan is recorded as."""
    return "INSPECTED" if cmd.kind is ScanKind.MANUAL else f"SCANNED_{cmd.kind.value if cmd.kind else 'DEVICE'}"
