"""The blocklist's entries: the rules an entry must pass (the use cases are in blocklist_service).

Numbers (documents, phones, organisation codes) leave this module in plaintext canonical form only so that
the repository can seal them and compute their blind index; what anyone reads back is the masked form.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.core.errors import FieldViolation, InvalidInput, Violations
from gateway.core.identity import (
    DocumentCheck,
    DocumentType,
    check_organisation_code,
    check_phone,
    is_known_region,
    verify_document,
)
from gateway.core.identity.common import canonical_number
from gateway.core.photos import MAX_IMAGE_PIXELS, listing_of
from gateway.core.screening import Action, EntryKind, Outcome, normalize_text
from gateway.core.screening import Entry as ScreeningEntry
from gateway.core.screening.exclusions import inert_exclusions
from gateway.core.screening.nameforms import parse_name

log = logging.getLogger(__name__)

MAX_VALUE, MAX_KEYWORD, MAX_AGENCY, MAX_CASE_NO, MAX_LEGAL_BASIS = 256, 64, 128, 64, 256
MAX_ALIASES, MAX_ALIAS, MAX_REASON = 20, 64, 500
MAX_PRICE_FLOOR_FEN = 10**10
MAX_IMAGE_BYTES = 4 * 1024 * 1024
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
IMPORT_BATCH = 500
# An import answers every rejection up to this many; beyond, only the count (the answer must fit a message).
MAX_LISTED_REJECTIONS = 1000

# The Sealer context of each number kind: the same ones the verification and shipment records use, so an
# entry's blind index equals a sender's.
SEAL_CONTEXTS = {EntryKind.DOCUMENT_NUMBER: "document", EntryKind.PHONE: "phone",
                 EntryKind.ORGANISATION_CODE: "organisation"}
ALIAS_KINDS = frozenset({EntryKind.PERSON_NAME, EntryKind.ORGANISATION_NAME, EntryKind.ADDRESS,
                         EntryKind.GOODS_KEYWORD, EntryKind.BRAND_PRICE_FLOOR})
# Resident ID first: it is by far the most common, and its canonical form (legacy numbers upgraded) is the
# one verifications store. Passport last: it accepts almost any 5 to 17 letters and digits.
DOCUMENT_ORDER = (
    DocumentType.RESIDENT_ID, DocumentType.RESIDENCE_PERMIT_HMT, DocumentType.FOREIGN_PERMANENT_RESIDENT,
    DocumentType.TRAVEL_PERMIT_HK_MO, DocumentType.TRAVEL_PERMIT_TW, DocumentType.MILITARY_ID,
    DocumentType.ARMED_POLICE_ID, DocumentType.PASSPORT,
)
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
_REGION = re.compile(r"\d{6}")


@dataclass(frozen=True)
class EntrySource:
    """Who asked for an entry and on what grounds."""

    agency: str
    case_no: str = ""
    legal_basis: str = ""


@dataclass(frozen=True)
class AddEntryCommand:
    """A new entry as a caller gave it; unknown enum values arrive as None."""

    kind: EntryKind | None
    value: str
    action: Action | None
    agency: str = ""
    case_no: str = ""
    legal_basis: str = ""
    expires_at: datetime | None = None
    aliases: tuple[str, ...] = ()
    price_floor_fen: int | None = None
    image: bytes = b""
    exclusions: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckedEntry:
    """An entry that passed every rule, in canonical form; number kinds carry the plaintext to seal."""

    kind: EntryKind
    canonical: str
    display: str
    dedup_key: str  # empty for number kinds: the repository uses the blind index
    action: Action
    aliases: tuple[str, ...]
    price_floor_fen: int | None
    source: EntrySource
    expires_at: datetime | None
    exclusions: tuple[str, ...] = ()

    @property
    def seal_context(self) -> str | None:
        """The Sealer context of a number kind, None for the rest."""
        return SEAL_CONTEXTS.get(self.kind)


@dataclass(frozen=True)
class StoredEntry:
    """An entry as stored: masked value, provenance, and whether it still applies."""

    id: int
    kind: EntryKind
    display_value: str
    action: Action
    source: EntrySource
    aliases: tuple[str, ...]
    price_floor_fen: int | None
    added_by: str
    added_at: datetime
    expires_at: datetime | None
    active: bool
    retired_by: str
    retired_at: datetime | None
    retire_reason: str
    version: int
    exclusions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListQuery:
    """Filters of a listing; before_id is the keyset position decoded from a page token."""

    kind: EntryKind | None = None
    agency: str = ""
    active: bool | None = None
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class EntryPage:
    """A page of entries, newest first, and the token of the next page (empty at the end)."""

    entries: tuple[StoredEntry, ...]
    next_page_token: str


@dataclass(frozen=True)
class ImportLine:
    """An import item with its position (a line number for files), or why it could not even be read."""

    position: int
    command: AddEntryCommand | None
    problem: FieldViolation | None = None


@dataclass(frozen=True)
class ImportRejection:
    """One entry an import refused."""

    position: int
    field: str
    reason: str


@dataclass(frozen=True)
class ImportSummary:
    """What an import did; rejected lists at most MAX_LISTED_REJECTIONS, rejected_count counts all."""

    added: int
    duplicates: int
    rejected: tuple[ImportRejection, ...]
    rejected_count: int
    version: int


@dataclass(frozen=True)
class BatchWritten:
    """One import batch's result: each entry's new id, or None for a duplicate; the version after it."""

    ids: list[int | None]
    version: int


@dataclass(frozen=True)
class DryRun:
    """A screening answer (hits as hit records) and the list version it was screened against."""

    outcome: Outcome
    hits: tuple[dict[str, Any], ...]
    version: int


def _check_common(v: Violations, cmd: AddEntryCommand, now: datetime) -> None:
    if cmd.kind is None:
        v.add("kind", "must be one of " + ", ".join(k.value for k in EntryKind))
    if cmd.action is None:
        v.add("action", "must be HOLD or REFUSE")
    v.text("source.agency", cmd.agency, min_len=1, max_len=MAX_AGENCY, required=True)
    v.text("source.case_no", cmd.case_no, max_len=MAX_CASE_NO)
    v.text("source.legal_basis", cmd.legal_basis, max_len=MAX_LEGAL_BASIS, multiline=True)
    if cmd.expires_at is not None:
        if cmd.expires_at.tzinfo is None:
            v.add("expires_at", "must carry a time zone")
        elif cmd.expires_at <= now:
            v.add("expires_at", "must be in the future")


def _check_extras(v: Violations, cmd: AddEntryCommand) -> tuple[str, ...]:
    """Aliases and the price floor, which only some kinds take; returns the aliases, stripped and unique."""
    if cmd.aliases and cmd.kind is not None and cmd.kind not in ALIAS_KINDS:
        # A number's alias would be stored unsealed, so number kinds take none.
        v.add("aliases", f"{cmd.kind.value} entries take no aliases")
    if len(cmd.aliases) > MAX_ALIASES:
        v.add("aliases", f"at most {MAX_ALIASES}, got {len(cmd.aliases)}")
    for i, alias in enumerate(cmd.aliases[:MAX_ALIASES]):
        v.text(f"aliases[{i}]", alias, max_len=MAX_ALIAS, required=True)
        if alias.strip() and not normalize_text(alias):
            v.add(f"aliases[{i}]", "is empty once spaces and dots are removed")
    if cmd.kind is EntryKind.BRAND_PRICE_FLOOR:
        if cmd.price_floor_fen is None:
            v.add("price_floor_fen", "is required for BRAND_PRICE_FLOOR")
        else:
            v.number("price_floor_fen", cmd.price_floor_fen, lo=1, hi=MAX_PRICE_FLOOR_FEN)
    elif cmd.price_floor_fen is not None:
        v.add("price_floor_fen", "is only for BRAND_PRICE_FLOOR")
    if cmd.image and cmd.kind is not EntryKind.IMAGE_FINGERPRINT:
        v.add("image", "is only for IMAGE_FINGERPRINT")
    return tuple(dict.fromkeys(a.strip() for a in cmd.aliases))


def _check_exclusions(v: Violations, cmd: AddEntryCommand, aliases: tuple[str, ...]) -> tuple[str, ...]:
    """A keyword's own exclusion contexts: each must contain the keyword (or an alias), or it could never apply."""
    if not cmd.exclusions:
        return ()
    if cmd.kind is not EntryKind.GOODS_KEYWORD:
        v.add("exclusions", "only GOODS_KEYWORD entries take exclusions")
        return ()
    if len(cmd.exclusions) > MAX_ALIASES:
        v.add("exclusions", f"at most {MAX_ALIASES}, got {len(cmd.exclusions)}")
    found = tuple(dict.fromkeys(e.strip() for e in cmd.exclusions[:MAX_ALIASES]))
    for i, text in enumerate(cmd.exclusions[:MAX_ALIASES]):
        v.text(f"exclusions[{i}]", text, min_len=2, max_len=MAX_ALIAS, required=True)
    probe = ScreeningEntry(0, EntryKind.GOODS_KEYWORD, cmd.value.strip(), Action.HOLD, aliases, exclusions=found)
    inert = set(inert_exclusions(probe)) if cmd.value.strip() else set()
    for i, text in enumerate(cmd.exclusions[:MAX_ALIASES]):
        if text.strip() in inert:
            v.add(f"exclusions[{i}]", f"{text.strip()!r} does not contain the keyword or an alias, so it could"
                  " never cancel a match")
    return found


def plausible_document(number: str, today: date) -> DocumentCheck | None:
    """The first document type whose rules accept the number (canonical form in .number), or None."""
    for document_type in DOCUMENT_ORDER:
        check = verify_document(document_type, number, today=today)
        if check.valid:
            return check
    return None


def _document(v: Violations, value: str, today: date) -> tuple[str, str] | None:
    check = plausible_document(value, today)
    if check is None:
        why = verify_document(DocumentType.RESIDENT_ID, value, today=today).reasons
        v.add("value", "is not a valid number of any document type"
              + (f" (as a resident ID: {why[0].message})" if why else ""))
        return None
    return check.number, check.masked


def _phone(v: Violations, value: str) -> tuple[str, str] | None:
    check = check_phone(value)
    if not check.valid:
        v.add("value", check.reasons[0].message if check.reasons else "is not a valid phone number")
        return None
    return check.e164, check.masked


def _organisation(v: Violations, value: str) -> tuple[str, str] | None:
    check = check_organisation_code(value)
    if not check.valid:
        v.add("value", check.reasons[0].message if check.reasons else "is not a valid credit code")
        return None
    return check.code, check.masked


def _address(v: Violations, value: str) -> tuple[str, str] | None:
    region, sep, text = value.partition("|")
    region, text = region.strip(), text.strip()
    if not sep or not _REGION.fullmatch(region) or not text:
        v.add("value", "must be '<6-digit region code>|<address>'")
        return None
    if not is_known_region(region):
        v.add("value", f"region {region} is not in the division table")
        return None
    return f"{region}|{text}", f"{region}|{normalize_text(text)}"


def _text(v: Violations, kind: EntryKind, value: str) -> tuple[str, str] | None:
    text = value.strip()
    if kind is EntryKind.GOODS_KEYWORD and len(text) > MAX_KEYWORD:
        v.add("value", f"a keyword has at most {MAX_KEYWORD} characters, got {len(text)}")
        return None
    key = normalize_text(text)
    if not key:
        v.add("value", "is empty once spaces and dots are removed")
        return None
    if kind in (EntryKind.PERSON_NAME, EntryKind.ORGANISATION_NAME):
        if parse_name(text, kind is EntryKind.ORGANISATION_NAME) is None:
            v.add("value", "has nothing a name can be compared by")
            return None
    return text, key


def _fingerprint(v: Violations, cmd: AddEntryCommand) -> tuple[str, tuple[str, ...]] | None:
    """The fingerprint (hex) and, for an entry given as a photo, the fingerprints of its frames as aliases."""
    if cmd.image and cmd.value:
        v.add("value", "give 16 hex digits or an image, not both")
        return None
    if cmd.image:
        if len(cmd.image) > MAX_IMAGE_BYTES:
            v.add("image", f"must be at most {MAX_IMAGE_BYTES} bytes")
            return None
        found = listing_of(cmd.image)
        if found is None:
            v.add("image", f"is not a readable JPEG or PNG of at most {MAX_IMAGE_PIXELS} pixels")
            return None
        own, *frames = (f"{h:016x}" for h in found)
        return own, tuple(frames)
    if not _HEX16.fullmatch(cmd.value.strip()):
        v.add("value", "must be 16 hex digits (a 64-bit perceptual hash), or give an image")
        return None
    return cmd.value.strip().lower(), ()


_NUMBER_CHECKS: dict[EntryKind, Callable[[Violations, str], tuple[str, str] | None]] = {
    EntryKind.PHONE: _phone, EntryKind.ORGANISATION_CODE: _organisation,
}


def _value(v: Violations, cmd: AddEntryCommand, now: datetime) -> tuple[str, str, str, tuple[str, ...]] | None:
    """(canonical, display, dedup key, aliases the value brings) of the value, or None after recording why it is
    bad; only a photo brings aliases (the fingerprints of its frames)."""
    if cmd.kind is EntryKind.IMAGE_FINGERPRINT:
        found = _fingerprint(v, cmd)
        return None if found is None else (found[0], found[0], found[0], found[1])
    before = len(v.items)
    v.text("value", cmd.value, min_len=1, max_len=MAX_VALUE, required=True)
    if cmd.kind is None or len(v.items) > before:
        return None
    if cmd.kind is EntryKind.DOCUMENT_NUMBER:
        number = _document(v, cmd.value, now.date())
    elif cmd.kind in _NUMBER_CHECKS:
        number = _NUMBER_CHECKS[cmd.kind](v, cmd.value)
    else:
        text = _address(v, cmd.value) if cmd.kind is EntryKind.ADDRESS else _text(v, cmd.kind, cmd.value)
        return None if text is None else (text[0], text[0], text[1], ())
    return None if number is None else (number[0], number[1], "", ())


def validate_entry(cmd: AddEntryCommand, *, now: datetime) -> CheckedEntry:
    """Checks every rule of a new entry; raises InvalidInput naming each bad field (as the proto names it)."""
    v = Violations()
    _check_common(v, cmd, now)
    aliases = _check_extras(v, cmd)
    exclusions = _check_exclusions(v, cmd, aliases)
    value = _value(v, cmd, now)
    v.raise_if_any()
    assert cmd.kind is not None and cmd.action is not None and value is not None
    canonical, display, dedup_key, brought = value
    aliases = aliases or brought
    return CheckedEntry(
        kind=cmd.kind, canonical=canonical, display=display, dedup_key=dedup_key, action=cmd.action,
        aliases=aliases, price_floor_fen=cmd.price_floor_fen,
        source=EntrySource(cmd.agency.strip(), cmd.case_no.strip(), cmd.legal_basis.strip()),
        expires_at=cmd.expires_at, exclusions=exclusions,
    )


def page_token(last_id: int) -> str:
    """The opaque token of the page after the entry with this id."""
    return base64.urlsafe_b64encode(str(last_id).encode()).decode()


def before_id(token: str) -> int | None:
    """The keyset position of a page token (None for the first page); InvalidInput for a forged one."""
    if not token:
        return None
    try:
        found = int(base64.urlsafe_b64decode(token.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput([FieldViolation("page_token", "is not a token this service gave")]) from None
    if found <= 0:
        raise InvalidInput([FieldViolation("page_token", "is not a token this service gave")])
    return found


def rejection(position: int, error: InvalidInput) -> ImportRejection:
    """An import rejection of an entry's violations: the first field, every reason."""
    first, *rest = error.violations
    reason = "; ".join([first.description, *(f"{x.field}: {x.description}" for x in rest)])
    return ImportRejection(position, first.field, reason)


def screening_canonical(kind: EntryKind, value: str, *, today: date,
                        document_type: DocumentType | None = None) -> str:
    """The canonical form a screened number is keyed by (as entries are), or "" when it has none."""
    if not value.strip():
        return ""
    if kind is EntryKind.PHONE:
        return check_phone(value).e164
    if kind is EntryKind.ORGANISATION_CODE:
        return check_organisation_code(value).code
    if document_type is not None:
        return verify_document(document_type, value, today=today).number
    found = plausible_document(value, today)
    # An implausible number can match no entry, but its canonical form costs nothing to look up.
    return found.number if found is not None else canonical_number(value)
