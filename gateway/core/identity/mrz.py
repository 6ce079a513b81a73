"""ICAO 9303 TD3 (passport) machine-readable zone: parsing and check digits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from gateway.core.identity.common import fold, parse_yymmdd_past, parse_yyyymmdd
from gateway.core.identity.types import (
    FIELD_MRZ,
    MRZ_CHECK_BIRTH_DATE,
    MRZ_CHECK_COMPOSITE,
    MRZ_CHECK_DOCUMENT_NUMBER,
    MRZ_CHECK_EXPIRY_DATE,
    MRZ_CHECK_PERSONAL_NUMBER,
    MRZ_FORMAT,
    MRZ_INVALID_DATE,
    Reason,
    Sex,
)

TD3_LINE_LENGTH = 44
_WEIGHTS = (7, 3, 1)
_LINE = re.compile(r"^[A-Z0-9<]{44}$")
_SEXES = {"M": Sex.MALE, "F": Sex.FEMALE}
# Germany alone writes a one-letter state code in the MRZ (ICAO 9303 part 3).
_MRZ_TO_ISO = {"D": "DEU"}


@dataclass(frozen=True)
class MrzTd3:
    """The fields of a TD3 MRZ, with '<' fillers removed."""

    document_code: str
    issuing_state: str
    surname: str
    given_names: str
    document_number: str
    nationality: str
    birth_date: date | None
    sex: Sex | None
    expiry_date: date | None
    personal_number: str
    line1: str
    line2: str


def mrz_char_value(ch: str) -> int:
    """ICAO value of one MRZ character: digits as is, A-Z as 10-35, '<' as 0."""
    if ch.isdigit():
        return int(ch)
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    return 0


def mrz_check_digit(data: str) -> str:
    """ICAO 9303 check digit over data (weights 7, 3, 1 repeating; sum modulo 10)."""
    total = sum(mrz_char_value(ch) * _WEIGHTS[i % 3] for i, ch in enumerate(data))
    return str(total % 10)


def split_td3(text: str) -> tuple[str, str] | None:
    """Two 44-character TD3 lines from newline-separated or concatenated text, or None."""
    lines = [line.strip() for line in fold(text).upper().splitlines() if line.strip()]
    if len(lines) == 1 and len(lines[0]) == 2 * TD3_LINE_LENGTH:
        lines = [lines[0][:TD3_LINE_LENGTH], lines[0][TD3_LINE_LENGTH:]]
    if len(lines) != 2 or not all(_LINE.match(line) for line in lines):
        return None
    return lines[0], lines[1]


def _expiry(digits: str, today: date) -> date | None:
    """Expiry YYMMDD: the century that puts it within 50 years of today."""
    century = today.year // 100 * 100
    found = parse_yyyymmdd(f"{century + int(digits[:2]):04d}{digits[2:]}") if digits.isdigit() else None
    if found is not None and found.year > today.year + 50:
        return parse_yyyymmdd(f"{century - 100 + int(digits[:2]):04d}{digits[2:]}")
    return found


def _names(line1: str) -> tuple[str, str]:
    """Surname and given names from line 1, '<' fillers turned into spaces."""
    surname, _, given = line1[5:].partition("<<")
    return surname.replace("<", " ").strip(), given.replace("<", " ").strip()


def parse_td3(line1: str, line2: str, today: date) -> MrzTd3:
    """Parse two validated TD3 lines; dates that name no real day come back as None."""
    surname, given = _names(line1)
    birth = parse_yymmdd_past(line2[13:19], today) if line2[13:19].isdigit() else None
    return MrzTd3(
        document_code=line1[:2].rstrip("<"), issuing_state=line1[2:5].rstrip("<"),
        surname=surname, given_names=given,
        document_number=line2[:9].rstrip("<"), nationality=line2[10:13].rstrip("<"),
        birth_date=birth, sex=_SEXES.get(line2[20]), expiry_date=_expiry(line2[21:27], today),
        personal_number=line2[28:42].rstrip("<"), line1=line1, line2=line2,
    )


def iso_nationality(mrz_code: str) -> str:
    """The ISO alpha-3 code for an MRZ state code (only Germany differs)."""
    return _MRZ_TO_ISO.get(mrz_code, mrz_code)


def _check(data: str, found: str, code: str, what: str) -> Reason | None:
    """A check-digit reason naming the field, the digit found and the digit expected."""
    expected = mrz_check_digit(data)
    if found == expected:
        return None
    return Reason(code, f"MRZ {what} check digit is {found}, expected {expected}", FIELD_MRZ)


def _personal_check(line2: str) -> Reason | None:
    """Personal number check; ICAO allows '<' instead of 0 when the field is empty."""
    if line2[28:42] == "<" * 14 and line2[42] == "<":
        return None
    return _check(line2[28:42], line2[42], MRZ_CHECK_PERSONAL_NUMBER, "personal number")


def check_digit_reasons(line2: str) -> list[Reason]:
    """Verify the five TD3 check digits: number, birth date, expiry, personal number, composite."""
    composite = line2[0:10] + line2[13:20] + line2[21:43]
    found = [
        _check(line2[0:9], line2[9], MRZ_CHECK_DOCUMENT_NUMBER, "document number"),
        _check(line2[13:19], line2[19], MRZ_CHECK_BIRTH_DATE, "birth date"),
        _check(line2[21:27], line2[27], MRZ_CHECK_EXPIRY_DATE, "expiry date"),
        _personal_check(line2),
        _check(composite, line2[43], MRZ_CHECK_COMPOSITE, "composite"),
    ]
    return [reason for reason in found if reason is not None]


def date_reasons(parsed: MrzTd3) -> list[Reason]:
    """MRZ_INVALID_DATE for a birth or expiry field that names no real day."""
    reasons = []
    if parsed.birth_date is None:
        reasons.append(Reason(MRZ_INVALID_DATE, f"MRZ birth date {parsed.line2[13:19]} is not a real date",
                              FIELD_MRZ))
    if parsed.expiry_date is None:
        reasons.append(Reason(MRZ_INVALID_DATE, f"MRZ expiry date {parsed.line2[21:27]} is not a real date",
                              FIELD_MRZ))
    return reasons


def read_td3(text: str) -> tuple[str, str] | Reason:
    """The two lines of a passport (document code P) TD3 MRZ, or the MRZ_FORMAT reason it is not one."""
    lines = split_td3(text)
    if lines is None:
        message = "MRZ must be 2 lines of 44 characters from A-Z, 0-9 and '<'"
        return Reason(MRZ_FORMAT, message, FIELD_MRZ)
    if lines[0][0] != "P":
        message = f"MRZ document code starts with {lines[0][0]}, expected P (passport)"
        return Reason(MRZ_FORMAT, message, FIELD_MRZ)
    return lines
