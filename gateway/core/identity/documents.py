"""Entry point for identity document numbers: dispatch by type and assemble the verdict."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from gateway.core.identity.common import Outcome
from gateway.core.identity.foreign import check_foreign_permanent
from gateway.core.identity.masking import mask_document
from gateway.core.identity.military import check_officer_id
from gateway.core.identity.passport import check_passport
from gateway.core.identity.resident_id import check_resident_number
from gateway.core.identity.travel import check_hk_mo_permit, check_tw_permit
from gateway.core.identity.types import (
    FIELD_MRZ,
    MRZ_NOT_APPLICABLE,
    DocumentCheck,
    DocumentType,
    Reason,
)

_Checker = Callable[[str, date], Outcome]

# Every type but PASSPORT; the passport checker also takes the MRZ.
_CHECKERS: dict[DocumentType, _Checker] = {
    DocumentType.RESIDENT_ID: lambda n, t: check_resident_number(n, DocumentType.RESIDENT_ID, t),
    DocumentType.RESIDENCE_PERMIT_HMT: (
        lambda n, t: check_resident_number(n, DocumentType.RESIDENCE_PERMIT_HMT, t)
    ),
    DocumentType.FOREIGN_PERMANENT_RESIDENT: check_foreign_permanent,
    DocumentType.TRAVEL_PERMIT_HK_MO: lambda n, _: check_hk_mo_permit(n),
    DocumentType.TRAVEL_PERMIT_TW: lambda n, _: check_tw_permit(n),
    DocumentType.MILITARY_ID: lambda n, _: check_officer_id(n, DocumentType.MILITARY_ID),
    DocumentType.ARMED_POLICE_ID: lambda n, _: check_officer_id(n, DocumentType.ARMED_POLICE_ID),
}


def _outcome(document_type: DocumentType, number: str, today: date, mrz: str | None) -> Outcome:
    """Run the checker for the type; an MRZ given with a non-passport type is refused, not ignored."""
    if document_type is DocumentType.PASSPORT:
        return check_passport(number, mrz, today)
    outcome = _CHECKERS[document_type](number, today)
    if mrz is None or not mrz.strip():
        return outcome
    message = f"an MRZ is checked only for PASSPORT, not for {document_type.value}"
    return Outcome(outcome.number, (*outcome.reasons, Reason(MRZ_NOT_APPLICABLE, message, FIELD_MRZ)),
                   outcome.facts)


def verify_document(
    document_type: DocumentType, number: str, *, today: date, mrz: str | None = None
) -> DocumentCheck:
    """Check an identity document number (and a passport's MRZ) as of `today`."""
    outcome = _outcome(document_type, number, today, mrz)
    return DocumentCheck(
        document_type=document_type,
        number=outcome.number,
        valid=not outcome.reasons,
        reasons=outcome.reasons,
        facts=outcome.facts,
        masked=mask_document(outcome.number),
    )
