"""Helpers shared by the document checkers: text folding, dates and age rules."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from gateway.core.identity.types import (
    DOC_CHARACTERS,
    DOC_FUTURE_BIRTH,
    DOC_IMPLAUSIBLE_AGE,
    DOC_INVALID_DATE,
    DocumentFacts,
    Reason,
)

MAX_AGE_YEARS = 130
# Separators people type inside numbers; they carry no information.
_SEPARATORS = re.compile(r"[\s\-_/.]+")


def fold(text: str) -> str:
    """NFKC-fold (full-width to ASCII) and strip surrounding whitespace."""
    return unicodedata.normalize("NFKC", text).strip()


def canonical_number(text: str) -> str:
    """Fold, upper-case and drop separators, the canonical form of a document number."""
    return _SEPARATORS.sub("", fold(text)).upper()


def parse_yyyymmdd(digits: str) -> date | None:
    """Parse 'YYYYMMDD' into a date, or None when no such day exists."""
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def parse_yymmdd_past(digits: str, today: date) -> date | None:
    """Parse a 2-digit-year birth date, choosing the latest century not after today."""
    if len(digits) != 6 or not digits.isdigit():
        return None
    for century in (today.year // 100 * 100, today.year // 100 * 100 - 100):
        found = parse_yyyymmdd(f"{century + int(digits[:2]):04d}{digits[2:]}")
        if found is not None and found <= today:
            return found
    # Only a day that exists solely in the current century (29 Feb) and lies ahead gets here:
    # return it so the caller reports a future birth rather than an impossible date.
    return parse_yyyymmdd(f"{today.year // 100 * 100 + int(digits[:2]):04d}{digits[2:]}")


def age_on(birth: date, today: date) -> int:
    """Completed years of age on the given day."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def birth_reasons(birth: date, today: date, field_name: str) -> list[Reason]:
    """Reasons a birth date is impossible for a living document holder."""
    if birth > today:
        message = f"birth date {birth.isoformat()} is after today ({today.isoformat()})"
        return [Reason(DOC_FUTURE_BIRTH, message, field_name)]
    age = age_on(birth, today)
    if age > MAX_AGE_YEARS:
        message = f"birth date {birth.isoformat()} gives an age of {age}, above {MAX_AGE_YEARS}"
        return [Reason(DOC_IMPLAUSIBLE_AGE, message, field_name)]
    return []


def invalid_date_reason(digits: str, field_name: str, code: str = DOC_INVALID_DATE) -> Reason:
    """The reason for an embedded date that names no real day."""
    return Reason(code, f"embedded date {digits} is not a real calendar date", field_name)


@dataclass(frozen=True)
class Outcome:
    """What one document checker found: canonical number, reasons and facts."""

    number: str
    reasons: tuple[Reason, ...]
    facts: DocumentFacts = field(default_factory=DocumentFacts)


def bad_characters(text: str, allowed: str) -> str:
    """The distinct characters of text that are not in allowed, in order of appearance."""
    return "".join(dict.fromkeys(ch for ch in text if ch not in allowed))


def characters_reason(bad: str, what: str, field_name: str) -> Reason:
    """A DOC_CHARACTERS reason naming the offending characters."""
    shown = ", ".join(f"'{ch}'" for ch in bad)
    return Reason(DOC_CHARACTERS, f"{what} may not contain {shown}", field_name)
