"""The Screen dry run: a consignment checked by acceptance's own rules, then turned into what screening reads.

Every part given goes through the function AcceptParcel uses for it (core/parcels.py), the sender's identity
fields through VerifySender's limits, so no screening time is spent on input acceptance would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from gateway.core.blocklist import SEAL_CONTEXTS, plausible_document, screening_canonical
from gateway.core.errors import Violations
from gateway.core.identity import DocumentType, check_organisation_code, check_phone, verify_document
from gateway.core.parcels import AddressIn, ItemIn, check_address, check_items, check_photos, check_recipient
from gateway.core.screening import Consignment, EntryKind, Item, Party

# (seal context, canonical number) -> blind-index bytes, as the repository keys entries.
BlindIndex = Callable[[str, str], bytes]


@dataclass(frozen=True)
class RecipientIn:
    """A recipient as on the waybill."""

    name: str
    phone: str
    address: AddressIn | None


@dataclass(frozen=True)
class ScreenCommand:
    """A consignment to screen; a part left empty (or None) is not screened."""

    sender_name: str = ""
    sender_document_type: DocumentType | None = None
    sender_document_number: str = ""
    sender_phone: str = ""
    sender_credit_code: str = ""
    sender_address: AddressIn | None = None
    recipient: RecipientIn | None = None
    items: tuple[ItemIn, ...] = ()
    photos: tuple[bytes, ...] = ()

    def is_empty(self) -> bool:
        """True when there is nothing at all to screen."""
        return not (self.sender_name or self.sender_document_number or self.sender_phone
                    or self.sender_credit_code or self.sender_address or self.recipient or self.items or self.photos)


def _check_sender(v: Violations, cmd: ScreenCommand, today: date) -> None:
    v.text("sender_name", cmd.sender_name, max_len=64)
    v.text("sender_document_number", cmd.sender_document_number, max_len=40)
    v.text("sender_phone", cmd.sender_phone, max_len=32)
    v.text("sender_credit_code", cmd.sender_credit_code, max_len=40)
    number = cmd.sender_document_number
    if cmd.sender_document_type is not None and not number:
        v.add("sender_document_type", "is given without sender_document_number")
    if number.strip() and not any(x.field == "sender_document_number" for x in v.items):
        if cmd.sender_document_type is not None:
            reasons = verify_document(cmd.sender_document_type, number, today=today).reasons
            if reasons:
                v.add("sender_document_number", reasons[0].message)
        elif plausible_document(number, today) is None:
            v.add("sender_document_number", "is not a valid number of any document type")
    if cmd.sender_phone.strip() and not check_phone(cmd.sender_phone).valid:
        v.add("sender_phone", "is not a valid phone number")
    if cmd.sender_credit_code.strip() and not check_organisation_code(cmd.sender_credit_code).valid:
        v.add("sender_credit_code", "is not a valid unified social credit code")


def validate_screen(cmd: ScreenCommand, today: date) -> tuple[int, ...]:
    """Checks every part as acceptance would; raises InvalidInput naming each bad field. Returns photo hashes."""
    v = Violations()
    if cmd.is_empty():
        v.add("request", "has nothing to screen: give a sender, a recipient, items or photos")
        v.raise_if_any()
    _check_sender(v, cmd, today)
    if cmd.sender_address is not None:
        check_address(v, "sender_address", cmd.sender_address)
    if cmd.recipient is not None:
        check_recipient(v, cmd.recipient.name, cmd.recipient.phone, cmd.recipient.address)
    if cmd.items:
        check_items(v, cmd.items)
    hashes = check_photos(v, cmd.photos, "photos")
    v.raise_if_any()
    return hashes


def _key(blind_index: BlindIndex, kind: EntryKind, value: str, today: date,
         document_type: DocumentType | None = None) -> str:
    canonical = screening_canonical(kind, value, today=today, document_type=document_type)
    return blind_index(SEAL_CONTEXTS[kind], canonical).hex() if canonical else ""


def screen_consignment(cmd: ScreenCommand, hashes: tuple[int, ...], blind_index: BlindIndex,
                       today: date) -> Consignment:
    """The validated command as screening's Consignment: numbers as blind-index keys, photos as hashes."""
    address = cmd.sender_address or AddressIn("", "")
    sender = Party(
        name=cmd.sender_name,
        document_key=_key(blind_index, EntryKind.DOCUMENT_NUMBER, cmd.sender_document_number, today,
                          cmd.sender_document_type),
        phone_key=_key(blind_index, EntryKind.PHONE, cmd.sender_phone, today),
        organisation_key=_key(blind_index, EntryKind.ORGANISATION_CODE, cmd.sender_credit_code, today),
        region_code=address.region_code, address=address.detail,
    )
    recipient = Party()
    if cmd.recipient is not None:
        where = cmd.recipient.address or AddressIn("", "")
        recipient = Party(name=cmd.recipient.name, phone_key=_key(blind_index, EntryKind.PHONE, cmd.recipient.phone,
                                                                  today),
                          region_code=where.region_code, address=where.detail)
    items = tuple(Item(i.description, i.quantity, i.declared_value_fen, brand=i.brand, category=i.category)
                  for i in cmd.items)
    return Consignment(sender, recipient, items, image_hashes=hashes)
