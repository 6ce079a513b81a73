"""Travel permits for Hong Kong, Macao and Taiwan residents entering the mainland.

Neither permit number carries a public check character, so only the shape is checked.
"""

from __future__ import annotations

import re
import string

from gateway.core.identity.common import Outcome, bad_characters, canonical_number, characters_reason
from gateway.core.identity.types import DOC_EMPTY, DOC_FORMAT, DOC_LENGTH, FIELD_DOCUMENT_NUMBER, Reason

_FIELD = FIELD_DOCUMENT_NUMBER
# Since 2015: 8 digits. Older cards: 10 digits (8 + a 2-digit issue count), sometimes printed
# with a letter suffix, in brackets or not, which we keep without the brackets.
_TW_FORMS = re.compile(r"^(\d{8}|\d{10}[A-Z]?|\d{9}[A-Z])$")


def _empty() -> Outcome:
    """The outcome for a blank number."""
    return Outcome("", (Reason(DOC_EMPTY, "document number is empty", _FIELD),))


def check_hk_mo_permit(raw: str) -> Outcome:
    """港澳居民来往内地通行证: H (Hong Kong) or M (Macao) then 8 digits, or 10 on older cards."""
    number = canonical_number(raw)
    if not number:
        return _empty()
    letter = number[0] if number[0].isalpha() else ""
    digits = number[len(letter):]
    bad = bad_characters(digits, string.digits)
    if bad:
        return Outcome(number, (characters_reason(bad, "after the H/M letter the permit number", _FIELD),))
    reasons = []
    if letter not in ("H", "M"):
        found = f"starts with '{letter}'" if letter else "has no leading letter"
        message = f"permit number {found}, expected H (Hong Kong) or M (Macao)"
        reasons.append(Reason(DOC_FORMAT, message, _FIELD))
    if len(digits) not in (8, 10):
        message = f"permit number has {len(digits)} digits, expected 8 (or 10 on older cards)"
        reasons.append(Reason(DOC_LENGTH, message, _FIELD))
    return Outcome(number, tuple(reasons))


def check_tw_permit(raw: str) -> Outcome:
    """台湾居民来往大陆通行证: 8 digits since 2015; older cards 10 digits with an optional letter."""
    number = canonical_number(raw).replace("(", "").replace(")", "")
    if not number:
        return _empty()
    bad = bad_characters(number, string.digits + string.ascii_uppercase)
    if bad:
        return Outcome(number, (characters_reason(bad, "a Taiwan permit number", _FIELD),))
    if _TW_FORMS.match(number):
        return Outcome(number, ())
    expected = "expected 8 digits, or on pre-2015 cards 10 digits or 9-10 digits plus a letter"
    digits = len(number.rstrip(string.ascii_uppercase))
    if number[:digits].isdigit() and len(number) - digits <= 1:
        suffix = " and a letter suffix" if digits < len(number) else ""
        message = f"permit number has {digits} digits{suffix}, {expected}"
        return Outcome(number, (Reason(DOC_LENGTH, message, _FIELD),))
    return Outcome(number, (Reason(DOC_FORMAT, f"letters inside the permit number, {expected}", _FIELD),))
