"""Officer's ID (军官证) and armed police officer's ID (武警警官证) numbers.

Both read '<unit>字第<6-8 digits>号', e.g. 南字第12345678号 or 武字第123456号, where the
unit is 1-3 Chinese characters naming the issuing organ. A bare digit string is
rejected: without the unit prefix it cannot be told apart from any other number,
and the printed card always carries it.
"""

from __future__ import annotations

import re
import string

from gateway.core.identity.common import Outcome, bad_characters, canonical_number, characters_reason
from gateway.core.identity.types import (
    DOC_EMPTY,
    DOC_FORMAT,
    DOC_LENGTH,
    DOC_WRONG_TYPE,
    FIELD_DOCUMENT_NUMBER,
    DocumentType,
    Reason,
)

_FIELD = FIELD_DOCUMENT_NUMBER
_SHAPE = re.compile(r"^(?P<unit>[^字]*)字第(?P<digits>[^号]*)号?$")
_UNIT = re.compile(r"^[\u4e00-\u9fff]{1,3}$")
_ARMED_POLICE_UNIT = "武"


def _format_reason(document_type: DocumentType) -> Reason:
    """DOC_FORMAT with an example of the expected shape."""
    example = "武字第123456号" if document_type is DocumentType.ARMED_POLICE_ID else "南字第12345678号"
    message = f"expected a unit prefix, 字第, 6-8 digits and an optional 号, e.g. {example}"
    return Reason(DOC_FORMAT, message, _FIELD)


def _wrong_type(unit: str, document_type: DocumentType) -> Reason | None:
    """DOC_WRONG_TYPE when a 武 (armed police) prefix and the declared type disagree."""
    armed = unit.startswith(_ARMED_POLICE_UNIT)
    if armed and document_type is DocumentType.MILITARY_ID:
        message = f"prefix {unit}字第 marks an armed police ID, not an officer's ID"
    elif not armed and document_type is DocumentType.ARMED_POLICE_ID:
        message = f"prefix {unit}字第 marks an officer's ID; armed police IDs read 武字第"
    else:
        return None
    return Reason(DOC_WRONG_TYPE, message, _FIELD)


def _digit_reasons(digits: str) -> list[Reason]:
    """Character and length reasons for the serial after 字第."""
    bad = bad_characters(digits, string.digits)
    if bad:
        return [characters_reason(bad, "the serial after 字第", _FIELD)]
    if not 6 <= len(digits) <= 8:
        return [Reason(DOC_LENGTH, f"serial after 字第 has {len(digits)} digits, expected 6 to 8", _FIELD)]
    return []


def check_officer_id(raw: str, document_type: DocumentType) -> Outcome:
    """Check a 军官证 or 武警警官证 number; the canonical form always ends in 号."""
    number = canonical_number(raw)
    if not number:
        return Outcome(number, (Reason(DOC_EMPTY, "document number is empty", _FIELD),))
    match = _SHAPE.match(number)
    if match is None or not _UNIT.match(match["unit"]):
        return Outcome(number, (_format_reason(document_type),))
    unit, digits = match["unit"], match["digits"]
    canonical = f"{unit}字第{digits}号"
    found = [_wrong_type(unit, document_type), *_digit_reasons(digits)]
    return Outcome(canonical, tuple(reason for reason in found if reason is not None))
