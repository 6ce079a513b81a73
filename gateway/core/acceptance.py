"""AcceptParcel: a verified sender (or contract customer), an inspected parcel, one recorded decision."""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from gateway.core.errors import AlreadyExists, FieldViolation, InvalidInput, NotFound, NotVerified, Violations
from gateway.core.identity import check_name, check_phone, is_known_region
from gateway.core.model import Actor, EventRecord, ParcelState, ReasonRecord
from gateway.core.verification import Verdict

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:\-]{8,64}")
WAYBILL_NO = re.compile(r"[A-Z0-9\-]{8,32}")
REGION_CODE = re.compile(r"\d{6}")
MAX_ITEMS = 50
MAX_PHOTOS = 4
MAX_PHOTO_BYTES = 2 * 1024 * 1024
MAX_DECLARED_FEN = 10**11


class Decision(enum.Enum):
    """Whether the parcel entered the network; names match the proto's ACCEPT_DECISION_* values."""

    ACCEPTED = "ACCEPTED"
    HELD = "HELD"
    REFUSED = "REFUSED"


class InspectionOutcome(enum.Enum):
    """What the courier's open-box check found."""

    INSPECTED = "INSPECTED"
    REFUSED_BY_SENDER = "REFUSED_BY_SENDER"
    PROHIBITED_FOUND = "PROHIBITED_FOUND"


@dataclass(frozen=True)
class AddressIn:
    """An address with its 6-digit division code."""

    region_code: str
    detail: str


@dataclass(frozen=True)
class ItemIn:
    """One line of the goods."""

    description: str
    quantity: int
    declared_value_fen: int
    category: str = ""
    brand: str = ""


@dataclass(frozen=True)
class InspectionIn:
    """The courier's open-box inspection."""

    outcome: InspectionOutcome | None
    notes: str = ""
    photos: tuple[bytes, ...] = ()
    inspected_at: datetime | None = None


@dataclass(frozen=True)
class AcceptParcelCommand:
    """A parcel handed over at acceptance."""

    idempotency_key: str
    waybill_no: str
    sender_ref: str
    contract_customer_id: str
    sender_address: AddressIn | None
    sender_phone: str
    recipient_name: str
    recipient_phone: str
    recipient_address: AddressIn | None
    items: tuple[ItemIn, ...]
    inspection: InspectionIn | None
    terminal_id: str

    def digest(self) -> bytes:
        """A fingerprint of the whole request, to tell a retry from another request under the same key."""
        data = asdict(self)
        if self.inspection is not None:
            data["inspection"]["photos"] = [hashlib.sha256(p).hexdigest() for p in self.inspection.photos]
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).digest()


@dataclass(frozen=True)
class SenderParty:
    """The resolved sender: from a verification or a contract customer (keys are blind-index bytes)."""

    name: str
    phone_e164: str
    document_key: bytes | None
    verification_id: int | None = None
    contract_customer_id: str | None = None
    organisation_key: bytes | None = None
    recent_recipients: int | None = None


@dataclass(frozen=True)
class ShipmentRecord:
    """Everything written at acceptance, in one transaction; the repository seals the phones."""

    idempotency_key: str
    waybill_no: str
    request_digest: bytes
    decision: Decision
    state: ParcelState
    hold_reason: str
    reasons: tuple[ReasonRecord, ...]
    hits: tuple[dict[str, Any], ...]
    sender: SenderParty
    sender_phone_masked: str
    sender_address: AddressIn
    recipient_name: str
    recipient_phone_e164: str
    recipient_phone_masked: str
    recipient_address: AddressIn
    items: tuple[ItemIn, ...]
    inspection: InspectionIn
    terminal_id: str
    events: tuple[EventRecord, ...]
    image_hashes: tuple[int, ...] = ()


@dataclass(frozen=True)
class AcceptResult:
    """The answer to AcceptParcel, first time or replayed."""

    decision: Decision
    shipment_id: str
    waybill_no: str
    reasons: tuple[ReasonRecord, ...]
    hits: tuple[dict[str, Any], ...]
    recorded_at: datetime
    state: ParcelState
    masked_recipient_phone: str
    masked_sender_name: str
    replayed: bool = False
    request_digest: bytes = field(default=b"", repr=False)


class ShipmentRepository(Protocol):
    """Writes acceptances and finds them again by idempotency key."""

    async def insert(self, record: ShipmentRecord, actor: Actor) -> AcceptResult | None: ...

    async def find_by_idempotency_key(self, key: str) -> AcceptResult | None: ...


class SenderDirectory(Protocol):
    """Resolves a sender_ref or a contract customer id into the sender's party."""

    async def sender_by_ref(self, sender_ref: str) -> tuple[Verdict, datetime | None, SenderParty] | None: ...

    async def contract_customer(self, customer_id: str) -> SenderParty | None: ...


@dataclass(frozen=True)
class ScreeningVerdict:
    """What screening decided at acceptance, and the photos' fingerprints to keep for later re-screening."""

    decision: Decision
    reasons: tuple[ReasonRecord, ...] = ()
    hits: tuple[dict[str, Any], ...] = ()
    image_hashes: tuple[int, ...] = ()


class Screener(Protocol):
    """Screens a consignment before it is accepted, against the live blocklist."""

    def screen_acceptance(self, cmd: AcceptParcelCommand, sender: SenderParty) -> ScreeningVerdict: ...


def check_address(v: Violations, name: str, address: AddressIn | None) -> None:
    """Checks an address: a known 6-digit division code and a detail of 1 to 200 characters."""
    if address is None:
        v.add(name, "is required")
        return
    if not REGION_CODE.fullmatch(address.region_code):
        v.add(f"{name}.region_code", "must be 6 digits")
    elif not is_known_region(address.region_code):
        v.add(f"{name}.region_code", f"{address.region_code} is not in the division table")
    v.text(f"{name}.detail", address.detail, max_len=200, required=True)


def _check_items(v: Violations, items: tuple[ItemIn, ...]) -> None:
    if not 1 <= len(items) <= MAX_ITEMS:
        v.add("items", f"must have 1 to {MAX_ITEMS} lines, got {len(items)}")
    for i, item in enumerate(items[:MAX_ITEMS]):
        v.text(f"items[{i}].description", item.description, max_len=200, required=True)
        v.text(f"items[{i}].category", item.category, max_len=64)
        v.text(f"items[{i}].brand", item.brand, max_len=64)
        v.number(f"items[{i}].quantity", item.quantity, lo=1, hi=100_000)
        v.number(f"items[{i}].declared_value_fen", item.declared_value_fen, lo=0, hi=MAX_DECLARED_FEN)


def _check_inspection(v: Violations, inspection: InspectionIn | None) -> None:
    if inspection is None or inspection.outcome is None:
        v.add("inspection.outcome", "the courier's open-box inspection is required")
        return
    v.text("inspection.notes", inspection.notes, max_len=500)
    if len(inspection.photos) > MAX_PHOTOS:
        v.add("inspection.photos", f"at most {MAX_PHOTOS} photos")
    for i, photo in enumerate(inspection.photos):
        if len(photo) > MAX_PHOTO_BYTES:
            v.add(f"inspection.photos[{i}]", f"must be at most {MAX_PHOTO_BYTES} bytes")


def validate_accept(cmd: AcceptParcelCommand) -> None:
    """Checks every field's limits; raises InvalidInput naming each bad field."""
    v = Violations()
    if not IDEMPOTENCY_KEY.fullmatch(cmd.idempotency_key):
        v.add("idempotency_key", "must be 8 to 64 characters of A-Z a-z 0-9 _ . : -")
    if not WAYBILL_NO.fullmatch(cmd.waybill_no):
        v.add("waybill_no", "must be 8 to 32 characters of A-Z 0-9 -")
    if bool(cmd.sender_ref) == bool(cmd.contract_customer_id):
        v.add("sender", "exactly one of sender_ref and contract_customer_id is required")
    v.text("sender_ref", cmd.sender_ref, max_len=64)
    v.text("contract_customer_id", cmd.contract_customer_id, max_len=64)
    check_address(v, "sender_address", cmd.sender_address)
    if cmd.sender_phone and not check_phone(cmd.sender_phone).valid:
        v.add("sender_phone", "is not a valid phone number")
    for reason in check_name(cmd.recipient_name).reasons:
        v.add("recipient.name", reason.message)
    if not check_phone(cmd.recipient_phone).valid:
        v.add("recipient.phone", "is not a valid phone number")
    check_address(v, "recipient.address", cmd.recipient_address)
    _check_items(v, cmd.items)
    _check_inspection(v, cmd.inspection)
    v.text("terminal_id", cmd.terminal_id, max_len=64, required=True)
    v.raise_if_any()


def normalise_command(cmd: AcceptParcelCommand) -> AcceptParcelCommand:
    """Upper-cases the waybill number and trims free text, so that retries compare equal."""
    return replace(cmd, waybill_no=cmd.waybill_no.strip().upper(), recipient_name=cmd.recipient_name.strip())


def _inspection_decision(inspection: InspectionIn) -> tuple[Decision, tuple[ReasonRecord, ...]]:
    if inspection.outcome is InspectionOutcome.REFUSED_BY_SENDER:
        reason = ReasonRecord("INSPECTION_REFUSED_BY_SENDER", "the sender refused the open-box inspection",
                              "inspection.outcome")
        return Decision.REFUSED, (reason,)
    if inspection.outcome is InspectionOutcome.PROHIBITED_FOUND:
        reason = ReasonRecord("INSPECTION_PROHIBITED_FOUND", "the inspection found prohibited or undeclared goods",
                              "inspection.outcome")
        return Decision.REFUSED, (reason,)
    return Decision.ACCEPTED, ()


def acceptance_events(decision: Decision, reasons: tuple[ReasonRecord, ...]) -> tuple[EventRecord, ...]:
    """The first events of a shipment's history for a decision."""
    note = "; ".join(r.message for r in reasons)
    if decision is Decision.REFUSED:
        return (EventRecord("REFUSED", None, ParcelState.REFUSED, note=note),)
    accepted = EventRecord("ACCEPTED", None, ParcelState.ACCEPTED)
    if decision is Decision.HELD:
        return accepted, EventRecord("HELD", ParcelState.ACCEPTED, ParcelState.HELD, note=note)
    return (accepted,)


class AcceptanceService:
    """The AcceptParcel use case."""

    def __init__(
        self, shipments: ShipmentRepository, senders: SenderDirectory,
        *, clock: Callable[[], datetime], screener: Screener | None = None,
    ) -> None:
        self._shipments = shipments
        self._senders = senders
        self._clock = clock
        self._screener = screener

    async def accept_parcel(self, cmd: AcceptParcelCommand, actor: Actor) -> AcceptResult:
        """Validates, resolves the sender, decides, and records the parcel in one transaction.

        The insert comes first and a retry is recognised by its conflict, so a first call costs no
        look-up of its key; a retry whose sender_ref has expired since still gets its first answer.
        """
        cmd = normalise_command(cmd)
        validate_accept(cmd)
        digest = cmd.digest()
        try:
            sender = await self._resolve_sender(cmd)
        except (NotVerified, NotFound):
            earlier = await self._replay(cmd, digest)
            if earlier is not None:
                return earlier
            raise
        if not sender.phone_e164 and not cmd.sender_phone:
            raise InvalidInput([FieldViolation("sender_phone", "is required: VerifySender was given no phone")])
        stored = await self._shipments.insert(self._record(cmd, sender, digest), actor)
        if stored is not None:
            return stored
        # The key or the waybill was taken: by this very request earlier (a retry), or by another.
        earlier = await self._replay(cmd, digest)
        if earlier is not None:
            return earlier
        raise AlreadyExists(f"waybill {cmd.waybill_no} was already accepted", field="waybill_no")

    async def _replay(self, cmd: AcceptParcelCommand, digest: bytes) -> AcceptResult | None:
        earlier = await self._shipments.find_by_idempotency_key(cmd.idempotency_key)
        if earlier is None:
            return None
        if earlier.request_digest != digest:
            raise AlreadyExists("idempotency_key was already used for a different request",
                                field="idempotency_key")
        return earlier

    async def _resolve_sender(self, cmd: AcceptParcelCommand) -> SenderParty:
        if cmd.contract_customer_id:
            customer = await self._senders.contract_customer(cmd.contract_customer_id)
            if customer is None:
                raise NotFound("no such contract customer", field="contract_customer_id")
            return customer
        found = await self._senders.sender_by_ref(cmd.sender_ref)
        if found is None:
            raise NotVerified("unknown sender_ref: verify the sender first", field="sender_ref")
        verdict, expires_at, party = found
        if verdict is not Verdict.VERIFIED:
            raise NotVerified(f"the sender was not verified ({verdict.value})", field="sender_ref")
        if expires_at is None or expires_at <= self._clock():
            raise NotVerified("sender_ref has expired: verify the sender again", field="sender_ref")
        return party

    def _decide(self, cmd: AcceptParcelCommand, sender: SenderParty) -> ScreeningVerdict:
        assert cmd.inspection is not None
        decision, reasons = _inspection_decision(cmd.inspection)
        if decision is not Decision.ACCEPTED or self._screener is None:
            return ScreeningVerdict(decision, reasons)
        return self._screener.screen_acceptance(cmd, sender)

    def _record(self, cmd: AcceptParcelCommand, sender: SenderParty, digest: bytes) -> ShipmentRecord:
        assert cmd.inspection and cmd.sender_address and cmd.recipient_address
        phone = sender.phone_e164 or check_phone(cmd.sender_phone).e164
        recipient_phone = check_phone(cmd.recipient_phone)
        verdict = self._decide(cmd, sender)
        decision, reasons, hits = verdict.decision, verdict.reasons, verdict.hits
        state = {Decision.ACCEPTED: ParcelState.ACCEPTED, Decision.HELD: ParcelState.HELD,
                 Decision.REFUSED: ParcelState.REFUSED}[decision]
        return ShipmentRecord(
            idempotency_key=cmd.idempotency_key, waybill_no=cmd.waybill_no, request_digest=digest,
            decision=decision, state=state, hold_reason="; ".join(r.message for r in reasons),
            reasons=reasons, hits=hits, sender=replace(sender, phone_e164=phone),
            sender_phone_masked=check_phone(phone).masked if phone else "",
            sender_address=cmd.sender_address, recipient_name=check_name(cmd.recipient_name).normalized,
            recipient_phone_e164=recipient_phone.e164, recipient_phone_masked=recipient_phone.masked,
            recipient_address=cmd.recipient_address, items=cmd.items, inspection=cmd.inspection,
            terminal_id=cmd.terminal_id, events=acceptance_events(decision, reasons),
            image_hashes=verdict.image_hashes,
        )
