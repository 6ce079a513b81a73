"""Unified social credit codes (统一社会信用代码, GB 32100-2015) of sending organisations."""

from __future__ import annotations

from stdnum.cn import uscc

from gateway.core.identity.common import canonical_number
from gateway.core.identity.masking import mask_document
from gateway.core.identity.regions import is_known_region
from gateway.core.identity.types import (
    FIELD_ORGANISATION,
    USCC_AUTHORITY,
    USCC_CHARACTERS,
    USCC_CHECK_CHARACTER,
    USCC_LENGTH,
    USCC_UNKNOWN_REGION,
    OrganisationCheck,
    Reason,
)

USCC_LENGTH_CHARS = 18
# GB 32100 alphabet: digits and capitals without I, O, Z, S, V (easily misread).
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# Registration authorities: 1 编制, 2 外交, 3 司法, 4 文化, 5 民政, 6 旅游, 7 宗教, 8 工会, 9 市场监管,
# A 军队编制, N 农业农村, Y other. stdnum demands a digit here and so rejects A/N/Y codes,
# which is why the format is checked here and stdnum is used for the check character only.
AUTHORITIES = "123456789ANY"
# Central-government bodies register under 100000, which no division table lists.
_CENTRAL = "100000"
_FIELD = FIELD_ORGANISATION


def _shape_reasons(code: str) -> list[Reason]:
    """Character and length reasons; the later checks need all 18 characters."""
    reasons = []
    bad = "".join(dict.fromkeys(ch for ch in code if ch not in ALPHABET))
    if bad:
        shown = ", ".join(f"'{ch}'" for ch in bad)
        reasons.append(Reason(USCC_CHARACTERS, f"code may not contain {shown} (I, O, Z, S, V are never used)",
                              _FIELD))
    elif not code[2:8].isdigit() and len(code) == USCC_LENGTH_CHARS:
        reasons.append(Reason(USCC_CHARACTERS, f"region part {code[2:8]} must be 6 digits", _FIELD))
    if len(code) != USCC_LENGTH_CHARS:
        message = f"code has {len(code)} characters, expected {USCC_LENGTH_CHARS}"
        reasons.append(Reason(USCC_LENGTH, message, _FIELD))
    return reasons


def _content_reasons(code: str) -> list[Reason]:
    """Authority, region and check-character reasons for a well-formed 18-character code."""
    reasons = []
    if code[0] not in AUTHORITIES or code[1] not in "123456789":
        message = f"registration authority and type {code[:2]} is not a GB 32100 combination"
        reasons.append(Reason(USCC_AUTHORITY, message, _FIELD))
    if code[2:8] != _CENTRAL and not is_known_region(code[2:8]):
        message = f"division code {code[2:8]} is not a known region"
        reasons.append(Reason(USCC_UNKNOWN_REGION, message, _FIELD))
    expected = uscc.calc_check_digit(code)
    if code[-1] != expected:
        message = f"check character is {code[-1]}, expected {expected}"
        reasons.append(Reason(USCC_CHECK_CHARACTER, message, _FIELD))
    return reasons


def check_organisation_code(code: str) -> OrganisationCheck:
    """Validate a unified social credit code: alphabet, length, authority, region and check."""
    canonical = canonical_number(code)
    reasons = _shape_reasons(canonical) or _content_reasons(canonical)
    region = canonical[2:8] if len(canonical) == USCC_LENGTH_CHARS and canonical[2:8].isdigit() else None
    return OrganisationCheck(code=canonical, valid=not reasons, reasons=tuple(reasons), region_code=region,
                             masked=mask_document(canonical))
