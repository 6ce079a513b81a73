"""Passport numbers, with an optional TD3 MRZ cross-checked against the number."""

from __future__ import annotations

import re
import string
from datetime import date

from gateway.core.identity.common import (
    Outcome,
    bad_characters,
    birth_reasons,
    canonical_number,
    characters_reason,
)
from gateway.core.identity.mrz import (
    MrzTd3,
    check_digit_reasons,
    date_reasons,
    iso_nationality,
    parse_td3,
    read_td3,
)
from gateway.core.identity.types import (
    DOC_EMPTY,
    DOC_EXPIRED,
    DOC_FORMAT,
    DOC_LENGTH,
    FIELD_DOCUMENT_NUMBER,
    FIELD_MRZ,
    MRZ_NUMBER_MISMATCH,
    DocumentFacts,
    Reason,
)

_FIELD = FIELD_DOCUMENT_NUMBER
MIN_LENGTH, MAX_LENGTH = 5, 17
# Chinese ordinary passports: E + 8 digits, then (from 2017) E + letter (not I/O) + 7 digits;
# G + 8 digits is the pre-2012 series. Other letters (D, S, P, DE, SE, PE, K, H, MA ...) belong
# to diplomatic, service, public-affairs and SAR passports whose formats we do not police.
_CHN_ORDINARY = re.compile(r"^(E\d{8}|E[A-HJ-NP-Z]\d{7}|G\d{8})$")


def _number_reasons(number: str) -> list[Reason]:
    """Characters and length rules that hold for any country's passport."""
    if not number:
        return [Reason(DOC_EMPTY, "document number is empty", _FIELD)]
    bad = bad_characters(number, string.ascii_uppercase + string.digits)
    if bad:
        return [characters_reason(bad, "a passport number (A-Z, 0-9)", _FIELD)]
    if not MIN_LENGTH <= len(number) <= MAX_LENGTH:
        message = f"passport number has {len(number)} characters, expected {MIN_LENGTH} to {MAX_LENGTH}"
        return [Reason(DOC_LENGTH, message, _FIELD)]
    return []


def chinese_ordinary_reason(number: str) -> Reason | None:
    """DOC_FORMAT for an E/G-series number that fits no Chinese ordinary passport series."""
    if number[:1] not in ("E", "G") or _CHN_ORDINARY.match(number):
        return None
    message = "Chinese ordinary passport numbers are E + 8 digits, E + letter + 7 digits or G + 8 digits"
    return Reason(DOC_FORMAT, message, _FIELD)


def _cross_reasons(number: str, parsed: MrzTd3, today: date) -> list[Reason]:
    """Reasons the MRZ contradicts the number, names an impossible holder or has expired."""
    found: list[Reason | None] = [*date_reasons(parsed)]
    # TD3 has room for 9 characters only, so a longer number can never match its MRZ.
    if parsed.document_number != number:
        message = f"MRZ document number {parsed.document_number} differs from {number}"
        found.append(Reason(MRZ_NUMBER_MISMATCH, message, FIELD_MRZ))
    if parsed.birth_date is not None:
        found.extend(birth_reasons(parsed.birth_date, today, FIELD_MRZ))
    if parsed.expiry_date is not None and parsed.expiry_date < today:
        found.append(Reason(DOC_EXPIRED, f"passport expired on {parsed.expiry_date.isoformat()}", FIELD_MRZ))
    found.append(chinese_ordinary_reason(number) if parsed.issuing_state == "CHN" else None)
    return [reason for reason in found if reason is not None]


def _facts(parsed: MrzTd3) -> DocumentFacts:
    """Facts the MRZ carries."""
    nationality = iso_nationality(parsed.nationality) if parsed.nationality else None
    return DocumentFacts(birth_date=parsed.birth_date, sex=parsed.sex, nationality=nationality,
                         expiry_date=parsed.expiry_date)


def check_passport(raw: str, mrz: str | None, today: date) -> Outcome:
    """Check a passport number and, when given, its TD3 MRZ."""
    number = canonical_number(raw)
    reasons = _number_reasons(number)
    if mrz is None or not mrz.strip():
        return Outcome(number, tuple(reasons))
    lines = read_td3(mrz)
    if isinstance(lines, Reason):
        return Outcome(number, (*reasons, lines))
    parsed = parse_td3(lines[0], lines[1], today)
    reasons += check_digit_reasons(lines[1]) + _cross_reasons(number, parsed, today)
    return Outcome(number, tuple(reasons), _facts(parsed))
