"""Value types and reason codes shared by every identity check."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from typing import Final


class DocumentType(enum.Enum):
    """Kinds of identity document accepted for courier real-name registration."""

    # Values mirror the proto enum names so the gRPC layer can map by name.
    RESIDENT_ID = "RESIDENT_ID"
    RESIDENCE_PERMIT_HMT = "RESIDENCE_PERMIT_HMT"
    FOREIGN_PERMANENT_RESIDENT = "FOREIGN_PERMANENT_RESIDENT"
    TRAVEL_PERMIT_HK_MO = "TRAVEL_PERMIT_HK_MO"
    TRAVEL_PERMIT_TW = "TRAVEL_PERMIT_TW"
    MILITARY_ID = "MILITARY_ID"
    ARMED_POLICE_ID = "ARMED_POLICE_ID"
    PASSPORT = "PASSPORT"


class Sex(enum.Enum):
    """Sex as encoded in a document number or MRZ."""

    MALE = "MALE"
    FEMALE = "FEMALE"


@dataclass(frozen=True)
class Reason:
    """One reason why a value was judged invalid."""

    code: str
    message: str
    field: str


@dataclass(frozen=True)
class DocumentFacts:
    """What a document number (and MRZ) reveals about its holder."""

    birth_date: date | None = None
    sex: Sex | None = None
    region_code: str | None = None
    region_name: str | None = None
    nationality: str | None = None
    expiry_date: date | None = None
    upgraded_from: str | None = None


@dataclass(frozen=True)
class DocumentCheck:
    """Verdict on one identity document number."""

    document_type: DocumentType
    number: str
    valid: bool
    reasons: tuple[Reason, ...]
    facts: DocumentFacts
    masked: str


@dataclass(frozen=True)
class NameCheck:
    """Verdict on a person's name."""

    normalized: str
    valid: bool
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class PhoneCheck:
    """Verdict on a contact phone number."""

    e164: str
    kind: str
    valid: bool
    reasons: tuple[Reason, ...]
    masked: str


@dataclass(frozen=True)
class OrganisationCheck:
    """Verdict on a unified social credit code (统一社会信用代码)."""

    code: str
    valid: bool
    reasons: tuple[Reason, ...]
    region_code: str | None
    masked: str


# Request field names, as the gRPC layer spells them.
FIELD_DOCUMENT_NUMBER: Final = "document_number"
FIELD_DOCUMENT_TYPE: Final = "document_type"
FIELD_NAME: Final = "name"
FIELD_PHONE: Final = "phone"
FIELD_MRZ: Final = "mrz"
FIELD_ORGANISATION: Final = "organisation_code"

# Reason codes are a wire contract: never rename one, only add.
DOC_EMPTY: Final = "DOC_EMPTY"
DOC_LENGTH: Final = "DOC_LENGTH"
DOC_CHARACTERS: Final = "DOC_CHARACTERS"
DOC_FORMAT: Final = "DOC_FORMAT"
DOC_CHECK_CHARACTER: Final = "DOC_CHECK_CHARACTER"
DOC_UNKNOWN_REGION: Final = "DOC_UNKNOWN_REGION"
DOC_REGION_NOT_VALID_AT_BIRTH: Final = "DOC_REGION_NOT_VALID_AT_BIRTH"
DOC_INVALID_DATE: Final = "DOC_INVALID_DATE"
DOC_FUTURE_BIRTH: Final = "DOC_FUTURE_BIRTH"
DOC_IMPLAUSIBLE_AGE: Final = "DOC_IMPLAUSIBLE_AGE"
DOC_WRONG_TYPE: Final = "DOC_WRONG_TYPE"
DOC_UNKNOWN_NATIONALITY: Final = "DOC_UNKNOWN_NATIONALITY"
DOC_EXPIRED: Final = "DOC_EXPIRED"
MRZ_FORMAT: Final = "MRZ_FORMAT"
MRZ_NOT_APPLICABLE: Final = "MRZ_NOT_APPLICABLE"
MRZ_CHECK_DOCUMENT_NUMBER: Final = "MRZ_CHECK_DOCUMENT_NUMBER"
MRZ_CHECK_BIRTH_DATE: Final = "MRZ_CHECK_BIRTH_DATE"
MRZ_CHECK_EXPIRY_DATE: Final = "MRZ_CHECK_EXPIRY_DATE"
MRZ_CHECK_PERSONAL_NUMBER: Final = "MRZ_CHECK_PERSONAL_NUMBER"
MRZ_CHECK_COMPOSITE: Final = "MRZ_CHECK_COMPOSITE"
MRZ_NUMBER_MISMATCH: Final = "MRZ_NUMBER_MISMATCH"
MRZ_INVALID_DATE: Final = "MRZ_INVALID_DATE"
NAME_EMPTY: Final = "NAME_EMPTY"
NAME_TOO_LONG: Final = "NAME_TOO_LONG"
NAME_CHARACTERS: Final = "NAME_CHARACTERS"
NAME_DOT_POSITION: Final = "NAME_DOT_POSITION"
PHONE_FORMAT: Final = "PHONE_FORMAT"
PHONE_LENGTH: Final = "PHONE_LENGTH"
PHONE_INVALID: Final = "PHONE_INVALID"
USCC_LENGTH: Final = "USCC_LENGTH"
USCC_CHARACTERS: Final = "USCC_CHARACTERS"
USCC_AUTHORITY: Final = "USCC_AUTHORITY"
USCC_CHECK_CHARACTER: Final = "USCC_CHECK_CHARACTER"
USCC_UNKNOWN_REGION: Final = "USCC_UNKNOWN_REGION"

REASON_CODES: Final[tuple[str, ...]] = (
    DOC_EMPTY, DOC_LENGTH, DOC_CHARACTERS, DOC_FORMAT, DOC_CHECK_CHARACTER, DOC_UNKNOWN_REGION,
    DOC_REGION_NOT_VALID_AT_BIRTH, DOC_INVALID_DATE, DOC_FUTURE_BIRTH, DOC_IMPLAUSIBLE_AGE,
    DOC_WRONG_TYPE, DOC_UNKNOWN_NATIONALITY, DOC_EXPIRED,
    MRZ_FORMAT, MRZ_NOT_APPLICABLE, MRZ_CHECK_DOCUMENT_NUMBER, MRZ_CHECK_BIRTH_DATE,
    MRZ_CHECK_EXPIRY_DATE, MRZ_CHECK_PERSONAL_NUMBER, MRZ_CHECK_COMPOSITE, MRZ_NUMBER_MISMATCH,
    MRZ_INVALID_DATE,
    NAME_EMPTY, NAME_TOO_LONG, NAME_CHARACTERS, NAME_DOT_POSITION,
    PHONE_FORMAT, PHONE_LENGTH, PHONE_INVALID,
    USCC_LENGTH, USCC_CHARACTERS, USCC_AUTHORITY, USCC_CHECK_CHARACTER, USCC_UNKNOWN_REGION,
)
