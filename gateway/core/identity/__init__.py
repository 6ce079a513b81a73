"""Identity checks for courier real-name registration (寄递实名制): pure functions, no I/O."""

from gateway.core.identity.documents import verify_document
from gateway.core.identity.masking import mask_document, mask_name, mask_phone
from gateway.core.identity.mrz import MrzTd3, mrz_check_digit, parse_td3, read_td3
from gateway.core.identity.names import check_name, names_match, normalize_name
from gateway.core.identity.organisations import check_organisation_code
from gateway.core.identity.phones import check_phone
from gateway.core.identity.regions import RegionPeriod, is_known_region, region_name, region_periods
from gateway.core.identity.resident_id import mod11_2_check, upgrade_legacy
from gateway.core.identity.types import (
    REASON_CODES,
    DocumentCheck,
    DocumentFacts,
    DocumentType,
    NameCheck,
    OrganisationCheck,
    PhoneCheck,
    Reason,
    Sex,
)

__all__ = [
    "REASON_CODES",
    "DocumentCheck",
    "DocumentFacts",
    "DocumentType",
    "MrzTd3",
    "NameCheck",
    "OrganisationCheck",
    "PhoneCheck",
    "Reason",
    "RegionPeriod",
    "Sex",
    "check_name",
    "check_organisation_code",
    "check_phone",
    "is_known_region",
    "mask_document",
    "mask_name",
    "mask_phone",
    "mod11_2_check",
    "mrz_check_digit",
    "names_match",
    "normalize_name",
    "parse_td3",
    "read_td3",
    "region_name",
    "region_periods",
    "upgrade_legacy",
    "verify_document",
]
