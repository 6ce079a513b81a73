"""Resident ID (居民身份证) and HK/Macao/Taiwan residence permit (港澳台居民居住证) numbers.

Both follow GB 11643-1999: 6-digit division code, YYYYMMDD birth date, 3-digit
sequence (odd for men) and an ISO 7064 MOD 11-2 check character.
"""

from __future__ import annotations

import string
from datetime import date

from stdnum.cn import ric
from stdnum.exceptions import InvalidComponent

from gateway.core.identity.common import (
    Outcome,
    bad_characters,
    birth_reasons,
    canonical_number,
    characters_reason,
    invalid_date_reason,
)
from gateway.core.identity.regions import (
    is_known_province,
    is_known_region,
    region_name,
    region_retired_before,
)
from gateway.core.identity.types import (
    DOC_CHECK_CHARACTER,
    DOC_EMPTY,
    DOC_LENGTH,
    DOC_REGION_NOT_VALID_AT_BIRTH,
    DOC_UNKNOWN_REGION,
    DOC_WRONG_TYPE,
    FIELD_DOCUMENT_NUMBER,
    DocumentFacts,
    DocumentType,
    Reason,
    Sex,
)

HMT_REGIONS = frozenset({"810000", "820000", "830000"})
_HMT_PROVINCES = frozenset(code[:2] for code in HMT_REGIONS)
_FIELD = FIELD_DOCUMENT_NUMBER


def mod11_2_check(body: str) -> str:
    """ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') for a 17-digit body."""
    # stdnum's function ignores the last character, expecting the check position to be present.
    return str(ric.calc_check_digit(body + "0"))


def upgrade_legacy(number15: str) -> str:
    """Upgrade a 15-digit (1984-1999) number to 18 digits: insert the century '19', add a check."""
    body = number15[:6] + "19" + number15[6:]
    return body + mod11_2_check(body)


def check_character_reason(number: str) -> Reason | None:
    """DOC_CHECK_CHARACTER naming found and expected characters, or None if it matches."""
    expected = mod11_2_check(number[:17])
    if number[17] == expected:
        return None
    message = f"check character is {number[17]}, expected {expected}"
    return Reason(DOC_CHECK_CHARACTER, message, _FIELD)


def _shape_reasons(number: str, document_type: DocumentType) -> list[Reason]:
    """Length and character reasons; later checks are meaningless if any apply."""
    if not number:
        return [Reason(DOC_EMPTY, "document number is empty", _FIELD)]
    reasons = []
    # X is legal only as the 18th character; the 15-digit form has no check character at all.
    body = number[:-1] if len(number) == 18 and number[-1] == "X" else number
    bad = bad_characters(body, string.digits)
    if bad:
        reasons.append(characters_reason(bad, "an 18-digit ID number (digits, final X)", _FIELD))
    # Residence permits date from 2018 and were never issued in the 15-digit form.
    lengths = (15, 18) if document_type is DocumentType.RESIDENT_ID else (18,)
    if len(number) not in lengths:
        legacy = " (or 15 for the legacy form)" if 15 in lengths else ""
        message = f"ID number has {len(number)} characters, expected 18{legacy}"
        reasons.append(Reason(DOC_LENGTH, message, _FIELD))
    return reasons


def _wrong_type_reason(number: str, document_type: DocumentType) -> Reason | None:
    """DOC_WRONG_TYPE when the number's prefix belongs to a different document type."""
    is_permit = number[:2] in _HMT_PROVINCES
    if document_type is DocumentType.RESIDENT_ID and is_permit:
        message = f"prefix {number[:6]} marks a HK/Macao/Taiwan residence permit, not a resident ID"
        return Reason(DOC_WRONG_TYPE, message, _FIELD)
    if document_type is DocumentType.RESIDENT_ID and number[0] == "9" and is_known_province(number[1:3]):
        message = "a leading 9 marks a foreign permanent resident ID, not a resident ID"
        return Reason(DOC_WRONG_TYPE, message, _FIELD)
    if document_type is DocumentType.RESIDENCE_PERMIT_HMT and number[:6] not in HMT_REGIONS:
        if not is_permit and is_known_region(number[:6]):
            message = f"prefix {number[:6]} marks a resident ID; residence permits start 810000/820000/830000"
            return Reason(DOC_WRONG_TYPE, message, _FIELD)
    return None


def _birth_date(number: str) -> date | None:
    """The embedded birth date, or None if it is not a real day (stdnum's InvalidComponent)."""
    try:
        return ric.get_birth_date(number)
    except InvalidComponent:
        return None


def _region_reasons(number: str, document_type: DocumentType, birth: date | None) -> list[Reason]:
    """Unknown division codes, and codes abolished before the holder was born."""
    code = number[:6]
    if document_type is DocumentType.RESIDENCE_PERMIT_HMT:
        if code in HMT_REGIONS:
            return []
        message = f"residence permit prefix {code} is not 810000, 820000 or 830000"
        return [Reason(DOC_UNKNOWN_REGION, message, _FIELD)]
    if not is_known_region(code):
        return [Reason(DOC_UNKNOWN_REGION, f"division code {code} is not a known region", _FIELD)]
    # Only retirement is certain: the code is assigned when the card is issued, which is after
    # birth, so a code created after the birth year is normal (stdnum rejects those, wrongly).
    if birth is not None and region_retired_before(code, birth.year):
        message = f"division code {code} was abolished before the birth year {birth.year}"
        return [Reason(DOC_REGION_NOT_VALID_AT_BIRTH, message, _FIELD)]
    return []


def _facts(number: str, birth: date | None, upgraded_from: str | None) -> DocumentFacts:
    """Birth date, sex (odd 17th digit is male) and region carried by a well-formed number."""
    code = number[:6]
    return DocumentFacts(
        birth_date=birth,
        sex=Sex.MALE if int(number[16]) % 2 else Sex.FEMALE,
        region_code=code,
        region_name=region_name(code, year=birth.year if birth else None),
        upgraded_from=upgraded_from,
    )


def check_resident_number(raw: str, document_type: DocumentType, today: date) -> Outcome:
    """Check a resident ID or HMT residence permit number, upgrading the legacy 15-digit form."""
    number = canonical_number(raw)
    shape = _shape_reasons(number, document_type)
    if shape:
        return Outcome(number, tuple(shape))
    upgraded_from = number if len(number) == 15 else None
    if upgraded_from is not None:
        number = upgrade_legacy(number)
    birth = _birth_date(number)
    wrong_type = _wrong_type_reason(number, document_type)
    found = [check_character_reason(number), wrong_type]
    if birth is None:
        found.append(invalid_date_reason(number[6:14], _FIELD))
    else:
        found.extend(birth_reasons(birth, today, _FIELD))
    if wrong_type is None:
        found.extend(_region_reasons(number, document_type, birth))
    reasons = tuple(reason for reason in found if reason is not None)
    return Outcome(number, reasons, _facts(number, birth, upgraded_from))
