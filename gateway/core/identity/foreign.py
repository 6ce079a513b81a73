"""Foreign permanent resident ID card (外国人永久居留身份证) numbers, 2017 and 2023 forms.

2023 form, 18 digits: '9', a 2-digit province code of the issuing place, a 3-digit
numeric nationality code, the birth date YYYYMMDD (the same positions as a resident
ID), a 3-digit sequence and a MOD 11-2 check character. We check the length, the
leading 9, the province, the birth date and the check character; the numeric
nationality code and the sequence are not checked because no public table we can
rely on maps them.

2017 form, 15 characters: ISO 3166-1 alpha-3 nationality, a 4-digit issuing-place
code (2-digit province + 2 digits), the birth date YYMMDD and 2 more digits whose
check rule is not public. We check the letters against ISO 3166-1, the province,
and the birth date; the last two digits are not checked.
"""

from __future__ import annotations

import string
from datetime import date

from gateway.core.identity.common import (
    Outcome,
    bad_characters,
    birth_reasons,
    canonical_number,
    characters_reason,
    invalid_date_reason,
    parse_yymmdd_past,
    parse_yyyymmdd,
)
from gateway.core.identity.regions import is_known_province, region_name
from gateway.core.identity.resident_id import check_character_reason
from gateway.core.identity.types import (
    DOC_EMPTY,
    DOC_FORMAT,
    DOC_LENGTH,
    DOC_UNKNOWN_NATIONALITY,
    DOC_UNKNOWN_REGION,
    FIELD_DOCUMENT_NUMBER,
    DocumentFacts,
    Reason,
)

_FIELD = FIELD_DOCUMENT_NUMBER
_NOT_MAINLAND = frozenset({"71", "81", "82", "83"})

# ISO 3166-1 alpha-3, officially assigned codes.
ISO_ALPHA3 = frozenset("""
ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA BGD BGR
BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN CIV CMR COD COG
COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU EGY ERI ESH ESP EST ETH
FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL GTM GUF GUM GUY
HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA JAM JEY JOR JPN KAZ KEN KGZ KHM
KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAF MAR MCO MDA MDG MDV MEX MHL
MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL NER NFK NGA NIC NIU NLD NOR
NPL NRU NZL OMN PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU ROU RUS RWA SAU
SDN SEN SGP SGS SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ SXM SYC SYR TCA
TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR TUV TWN TZA UGA UKR UMI URY USA UZB VAT VCT VEN VGB
VIR VNM VUT WLF WSM YEM ZAF ZMB ZWE
""".split())


def _province_reason(two_digits: str) -> Reason | None:
    """DOC_UNKNOWN_REGION when the issuing-place province code is not a province."""
    # Permanent residence is granted only by mainland exit-entry administrations.
    if is_known_province(two_digits) and two_digits not in _NOT_MAINLAND:
        return None
    return Reason(DOC_UNKNOWN_REGION, f"issuing province code {two_digits} is not a known province", _FIELD)


def _birth(found: date | None, digits: str, today: date) -> list[Reason]:
    """Reasons against an embedded birth date (impossible, future or implausible)."""
    if found is None:
        return [invalid_date_reason(digits, _FIELD)]
    return birth_reasons(found, today, _FIELD)


def _province_facts(two_digits: str, birth: date | None, nationality: str | None) -> DocumentFacts:
    """Facts common to both forms: the issuing province as a 6-digit code."""
    code = two_digits + "0000"
    name = region_name(code)
    return DocumentFacts(birth_date=birth, region_code=code if name else None, region_name=name,
                         nationality=nationality)


def _check_2023(number: str, today: date) -> Outcome:
    """The 18-digit 2023 form."""
    bad = bad_characters(number[:17], string.digits) + bad_characters(number[17:], string.digits + "X")
    if bad:
        return Outcome(number, (characters_reason(bad, "a permanent resident ID number", _FIELD),))
    birth = parse_yyyymmdd(number[6:14])
    found = [check_character_reason(number), _province_reason(number[1:3])]
    found += _birth(birth, number[6:14], today)
    reasons = tuple(reason for reason in found if reason is not None)
    return Outcome(number, reasons, _province_facts(number[1:3], birth, None))


def _check_2017(number: str, today: date) -> Outcome:
    """The 15-character 2017 form."""
    if bad_characters(number[:3], string.ascii_uppercase) or bad_characters(number[3:], string.digits):
        message = "a 15-character permanent resident ID is 3 letters then 12 digits"
        return Outcome(number, (Reason(DOC_FORMAT, message, _FIELD),))
    birth = parse_yymmdd_past(number[7:13], today)
    found = [_province_reason(number[3:5]), *_birth(birth, number[7:13], today)]
    if number[:3] not in ISO_ALPHA3:
        found.append(Reason(DOC_UNKNOWN_NATIONALITY, f"{number[:3]} is not an ISO 3166-1 country code",
                            _FIELD))
    reasons = tuple(reason for reason in found if reason is not None)
    nationality = number[:3] if number[:3] in ISO_ALPHA3 else None
    return Outcome(number, reasons, _province_facts(number[3:5], birth, nationality))


def check_foreign_permanent(raw: str, today: date) -> Outcome:
    """Check a foreign permanent resident ID number in either form."""
    number = canonical_number(raw)
    if not number:
        return Outcome(number, (Reason(DOC_EMPTY, "document number is empty", _FIELD),))
    if len(number) == 18 and number[0] == "9":
        return _check_2023(number, today)
    if len(number) == 18:
        message = "an 18-digit permanent resident ID starts with 9"
        return Outcome(number, (Reason(DOC_FORMAT, message, _FIELD),))
    if len(number) == 15:
        return _check_2017(number, today)
    message = f"permanent resident ID has {len(number)} characters, expected 18 (2023 form) or 15 (2017 form)"
    return Outcome(number, (Reason(DOC_LENGTH, message, _FIELD),))
