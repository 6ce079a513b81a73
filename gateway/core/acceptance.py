"""AcceptParcel: a verified sender (or contract customer), an inspected parcel, one recorded decision."""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from gateway.core.errors import AlreadyExists, FieldViolation, InvalidInput, NotFound, NotVerified, Violations
from gateway.core.identity import check_name, check_phone, mask_phone
from gateway.core.model import Actor, EventRecord, ParcelState, ReasonRecord
from gateway.core.parcels import AddressIn, ItemIn, check_address, check_items, check_photos, check_recipient
from gateway.core.verification import Verdict

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:\-]{8,64}")
WAYBILL_NO = re.compile(r"[A-Z0-9\-]{8,32}")
# The courier inspects on the spot, so an inspection time far from the call is a terminal's clock or data gone
# wrong: at most this old, and at most this far ahead (clock skew).
INSPECTION_MAX_AGE = timedelta(hours=24)
MAX_WEIGHT_G = 10**8
CLOCK_SKEW = timedelta(minutes=5)


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
    weight_g: int | None = None

    def digest(self) -> bytes:
        """A fingerprint of the whole request, to tell a retry from another request under the same key."""
        data = _plain(self)
        if self.weight_g is None:
            del data["weight_g"]  # so a retry from a client that never sends it digests as before
        if self.inspection is not None:
            data["inspection"]["photos"] = [hashlib.sha256(p).hexdigest() for p in self.inspection.photos]
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).digest()


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """dataclasses.asdict for the digest, without its deep copies of every leaf (the fields are immutable): the
    same JSON, so digests stored before still match."""
    kind = type(value)
    names = _FIELD_NAMES.get(kind)
    if names is None and is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES.setdefault(kind, tuple(f.name for f in fields(value)))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if kind is tuple or kind is list:
        return [_plain(v) for v in value]
    return value


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
    weight_g: int | None = None


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
    """What screening decided at acceptance."""

    decision: Decision
    reasons: tuple[ReasonRecord, ...] = ()
    hits: tuple[dict[str, Any], ...] = ()


class Screener(Protocol):
    """Screens a consignment before it is accepted, against the live blocklist."""

    def screen_acceptance(self, cmd: AcceptParcelCommand, sender: SenderParty, image_hashes: tuple[int, ...],
                          recipient_name: str, recipient_phone_e164: str) -> ScreeningVerdict:
        """sender.phone_e164 and the recipient's name and phone come checked and normalised (once per call)."""
        ...


def _check_inspection(v: Violations, inspection: InspectionIn | None, now: datetime) -> tuple[int, ...]:
    if inspection is None or inspection.outcome is None:
        v.add("inspection.outcome", "the courier's open-box inspection is required")
        return ()
    v.text("inspection.notes", inspection.notes, max_len=500, multiline=True)
    at = inspection.inspected_at
    if at is not None and not now - INSPECTION_MAX_AGE <= at <= now + CLOCK_SKEW:
        v.add("inspection.inspected_at", f"must lie within the {INSPECTION_MAX_AGE.total_seconds() / 3600:.0f} hours"
              f" before now ({now:%Y-%m-%dT%H:%M}Z), got {at:%Y-%m-%dT%H:%M}Z: the inspection is done on the spot")
    return check_photos(v, inspection.photos, "inspection.photos")


def validate_accept(cmd: AcceptParcelCommand, now: datetime) -> tuple[int, ...]:
    """Checks every field's limits; raises InvalidInput naming each bad field. Returns the photos' fingerprints."""
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
    check_recipient(v, cmd.recipient_name, cmd.recipient_phone, cmd.recipient_address)
    check_items(v, cmd.items)
    hashes = _check_inspection(v, cmd.inspection, now)
    v.text("terminal_id", cmd.terminal_id, max_len=64, required=True)
    if cmd.weight_g is not None:
        v.number("weight_g", cmd.weight_g, lo=1, hi=MAX_WEIGHT_G)
    v.raise_if_any()
    return hashes


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
        hashes = validate_accept(cmd, self._clock())
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
        stored = await self._shipments.insert(self._record(cmd, sender, digest, hashes), actor)
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

    def _decide(self, cmd: AcceptParcelCommand, sender: SenderParty, hashes: tuple[int, ...],
                recipient_name: str, recipient_phone_e164: str) -> ScreeningVerdict:
        assert cmd.inspection is not None
        decision, reasons = _inspection_decision(cmd.inspection)
        if decision is not Decision.ACCEPTED or self._screener is None:
            return ScreeningVerdict(decision, reasons)
        return self._screener.screen_acceptance(cmd, sender, hashes, recipient_name, recipient_phone_e164)

    def _record(self, cmd: AcceptParcelCommand, sender: SenderParty, digest: bytes,
                hashes: tuple[int, ...]) -> ShipmentRecord:
        assert cmd.inspection and cmd.sender_address and cmd.recipient_address
        # Each phone and name is parsed once per call. A verification's (or customer's) phone is stored as checked
        # E.164 already: parsing it again (a full libphonenumber parse, "+86...") would give the same number.
        if sender.phone_e164:
            phone, sender_masked = sender.phone_e164, mask_phone(sender.phone_e164)
        else:
            checked = check_phone(cmd.sender_phone)
            phone, sender_masked = checked.e164, checked.masked if checked.e164 else ""
        sender = replace(sender, phone_e164=phone)
        recipient_phone = check_phone(cmd.recipient_phone)
        recipient_name = check_name(cmd.recipient_name).normalized
        verdict = self._decide(cmd, sender, hashes, recipient_name, recipient_phone.e164)
        decision, reasons, hits = verdict.decision, verdict.reasons, verdict.hits
        state = {Decision.ACCEPTED: ParcelState.ACCEPTED, Decision.HELD: ParcelState.HELD,
                 Decision.REFUSED: ParcelState.REFUSED}[decision]
        return ShipmentRecord(
            idempotency_key=cmd.idempotency_key, waybill_no=cmd.waybill_no, request_digest=digest,
            decision=decision, state=state, hold_reason="; ".join(r.message for r in reasons),
            reasons=reasons, hits=hits, sender=sender, sender_phone_masked=sender_masked,
            sender_address=cmd.sender_address, recipient_name=recipient_name,
            recipient_phone_e164=recipient_phone.e164, recipient_phone_masked=recipient_phone.masked,
            recipient_address=cmd.recipient_address, items=cmd.items, inspection=cmd.inspection,
            terminal_id=cmd.terminal_id, events=acceptance_events(decision, reasons),
            image_hashes=hashes, weight_g=cmd.weight_g,
        )
