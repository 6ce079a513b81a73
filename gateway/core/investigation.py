"""Investigators' rules: case numbers, search filters, signed page tokens, name keys and what an audit records.

Every call names a case; the filters of a search are recorded in the audit with document and phone numbers
as their blind-index keys, never in plaintext. Page tokens are signed (HMAC) over the position, the
filters and the time, so a forged, altered, reused-with-other-filters or stale token is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.core.errors import FieldViolation, InvalidInput, Violations
from gateway.core.identity import DocumentType
from gateway.core.screening.nameforms import parse_name, tokens_of
from gateway.core.screening.phonetic import blocking_fold

# 4 to 64 characters, a letter or a Chinese character first, only letters, digits, Chinese characters and the
# separators case numbers are written with; and it must name its year.
_CASE_CHARS = re.compile(r"[A-Za-z\u4e00-\u9fff][A-Za-z0-9\u4e00-\u9fff\-_/.()（）〔〕\[\]［］【】]{3,63}")
_CASE_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}|(?:19|20)\d{2}(?!\d)")
REGION = re.compile(r"\d{6}")
DEFAULT_PAGE, MAX_PAGE = 50, 500
TOKEN_LIFETIME_S = 3600


def check_case_no(v: Violations, case_no: str) -> None:
    """Records a violation unless case_no is in one of the accepted forms (see the Investigation proto)."""
    if not case_no.strip():
        v.add("case_no", "is required: every investigator's call names its case")
    elif not _CASE_CHARS.fullmatch(case_no) or not _CASE_YEAR.search(case_no):
        v.add("case_no", "is not a case number: 4 to 64 characters of letters, digits, Chinese characters and"
              " - _ / . ( ) （ ） 〔 〕 [ ] 号, starting with a letter or a Chinese character and naming its year")


def require_case(case_no: str) -> None:
    """InvalidInput naming case_no unless it is well formed."""
    v = Violations()
    check_case_no(v, case_no)
    v.raise_if_any()


def region_prefix(code: str) -> str:
    """The prefix a region code stands for: 310000 the province (31), 310100 the city (3101), else itself."""
    if code.endswith("0000"):
        return code[:2]
    return code[:4] if code.endswith("00") else code


def name_keys(name: str) -> tuple[str, ...]:
    """The keys a recorded name is found under: folded pinyin on every reading, Latin run together as written."""
    form = parse_name(name)
    if form is None:
        return ()
    if form.han:
        return tuple(dict.fromkeys(blocking_fold(s) for s in form.sounds))
    return (blocking_fold("".join(tokens_of(name, False))),)


def name_query_keys(name: str) -> tuple[str, ...]:
    """The keys a searched name looks up: its own keys, and for a Latin name its tokens run together either way
    (so "Wei Zhang" finds 张伟 and "Zhang Wei")."""
    form = parse_name(name)
    if form is None:
        return ()
    found = list(name_keys(name))
    if not form.han:
        found += [blocking_fold(s) for s in form.sounds[1:] if " " not in s]
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class SearchFilters:
    """A search as given; numbers are plaintext here and leave only as blind-index keys."""

    document_number: str = ""
    document_type: DocumentType | None = None
    phone: str = ""
    name: str = ""
    waybill_no: str = ""
    origin_region_code: str = ""
    destination_region_code: str = ""
    from_time: datetime | None = None
    to_time: datetime | None = None
    flagged_only: bool = False

    def is_empty(self) -> bool:
        """True when no filter at all is given."""
        return not (self.document_number or self.phone or self.name or self.waybill_no or self.origin_region_code
                    or self.destination_region_code or self.from_time or self.to_time or self.flagged_only)


@dataclass(frozen=True)
class SearchQuery:
    """A validated search: the keys storage looks up (numbers as blind-index bytes) and the page asked for."""

    document_key: bytes | None = None
    phone_key: bytes | None = None
    # While an index key is being rotated: the same numbers' blind indexes under the past keys, also matched.
    document_past_keys: tuple[bytes, ...] = ()
    phone_past_keys: tuple[bytes, ...] = ()
    name_keys: tuple[str, ...] = ()
    waybill_no: str = ""
    origin_prefix: str = ""
    destination_prefix: str = ""
    from_time: datetime | None = None
    to_time: datetime | None = None
    flagged_only: bool = False
    limit: int = DEFAULT_PAGE
    after: tuple[datetime, str] | None = None  # the keyset position: (accepted_at, shipment_id) of the last row

    def audit_filters(self) -> dict[str, Any]:
        """The filters as the audit keeps them: keys, never numbers."""
        found: dict[str, Any] = {
            "document_key": self.document_key.hex() if self.document_key else None,
            "phone_key": self.phone_key.hex() if self.phone_key else None, "name_keys": list(self.name_keys),
            "waybill_no": self.waybill_no, "origin": self.origin_prefix, "destination": self.destination_prefix,
            "from": self.from_time.isoformat() if self.from_time else None,
            "to": self.to_time.isoformat() if self.to_time else None, "flagged_only": self.flagged_only,
        }
        return {k: v for k, v in found.items() if v not in (None, "", [], False)}


def check_filters(v: Violations, f: SearchFilters, page_size: int) -> None:
    """Records every bad filter of a search."""
    if f.is_empty():
        v.add("filters", "a search needs at least one filter besides the case")
    v.text("document_number", f.document_number, max_len=40)
    v.text("phone", f.phone, max_len=32)
    v.text("name", f.name, max_len=64)
    v.text("waybill_no", f.waybill_no, max_len=32)
    for name in ("origin_region_code", "destination_region_code"):
        value = getattr(f, name)
        if value and not REGION.fullmatch(value):
            v.add(name, "must be a 6-digit division code")
    if f.from_time and f.to_time and f.to_time <= f.from_time:
        v.add("to_time", "must be after from_time")
    if f.document_type is not None and not f.document_number:
        v.add("document_type", "is given without document_number")
    if page_size and not 1 <= page_size <= MAX_PAGE:
        v.add("page_size", f"must be between 1 and {MAX_PAGE}, got {page_size}")


@dataclass(frozen=True)
class PageTokens:
    """Signs and checks opaque page tokens: the position, a digest of the filters and the time it was issued."""

    key: bytes
    lifetime_s: int = TOKEN_LIFETIME_S
    clock: Any = field(default=time.time)

    def issue(self, position: tuple[datetime, str], filters_digest: str) -> str:
        """A token for the page after this position."""
        body = json.dumps([position[0].isoformat(), position[1], filters_digest, int(self.clock())]).encode()
        mac = hmac.new(self.key, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")

    def open(self, token: str, filters_digest: str) -> tuple[datetime, str]:
        """The position a token names; InvalidInput (page_token) if forged, altered, stale or for other filters."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise _bad_token("is not a token this service gave") from None
        mac, body = raw[:16], raw[16:]
        if len(raw) < 17 or not hmac.compare_digest(mac, hmac.new(self.key, body, hashlib.sha256).digest()[:16]):
            raise _bad_token("is not a token this service gave (its signature does not match)")
        at, shipment_id, digest, issued = json.loads(body)
        if digest != filters_digest:
            raise _bad_token("was given for other filters: repeat the search that gave it")
        if self.clock() - issued > self.lifetime_s:
            raise _bad_token(f"has expired (tokens last {self.lifetime_s // 60} minutes): search again")
        return datetime.fromisoformat(at), str(shipment_id)


def _bad_token(why: str) -> InvalidInput:
    return InvalidInput([FieldViolation("page_token", why)])


def filters_digest(query: SearchQuery) -> str:
    """A digest of the filters (not the page), binding a token to the search that issued it."""
    return hashlib.sha256(json.dumps(query.audit_filters(), sort_keys=True).encode()).hexdigest()[:32]

