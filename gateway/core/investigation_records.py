"""What investigators are answered with: shipments in full, histories, leads, audit records."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.core.errors import FieldViolation, InvalidInput
from gateway.core.identity import DocumentType
from gateway.core.model import ParcelState, ReasonRecord


@dataclass(frozen=True)
class PartyView:
    """A party in full, as only an investigator on a case sees it."""

    name: str
    document_type: DocumentType | None = None
    document_number: str = ""
    phone: str = ""
    region_code: str = ""
    address: str = ""
    credit_code: str = ""


@dataclass(frozen=True)
class ShipmentFound:
    """One shipment as a search answers it."""

    shipment_id: str
    waybill_no: str
    decision: str
    state: ParcelState
    hold_reason: str
    sender: PartyView
    recipient: PartyView
    items: tuple[dict[str, Any], ...]
    accepted_at: datetime
    flagged: bool
    contract_customer_id: str = ""


@dataclass(frozen=True)
class HistoryEventFound:
    """One event of a shipment's history, with its details and its leaf in the evidence log (-1: not yet)."""

    seq: int
    kind: str
    from_state: ParcelState | None
    to_state: ParcelState
    principal: str
    terminal_id: str
    device_id: str
    location: str
    note: str
    recorded_at: datetime
    details: dict[str, Any]
    leaf_index: int = -1


@dataclass(frozen=True)
class VerificationFound:
    """The verification behind a shipment, in full."""

    verification_id: int
    verdict: str
    document_type: DocumentType | None
    document_number: str
    name: str
    phone: str
    authority_result: str
    in_person_check: str
    terminal_id: str
    verified_at: datetime
    reasons: tuple[ReasonRecord, ...] = ()


@dataclass(frozen=True)
class LeadFound:
    """A hold or refusal, with its position in the feed."""

    cursor: LeadCursor
    lead_id: int
    waybill_no: str
    shipment_id: str
    kind: str
    origin: str
    reason: str
    hits: tuple[dict[str, Any], ...]
    created_at: datetime
    origin_region_code: str
    destination_region_code: str


@dataclass(frozen=True)
class AsOf:
    """How current an answer is: it holds every write committed up to `at` (None: the standby serving it has
    replayed no transaction since it started, so it cannot say); from_replica: a streaming standby served it."""

    at: datetime | None
    from_replica: bool = False


@dataclass(frozen=True)
class HistoryFound:
    """A shipment and everything recorded about it, and how current that is."""

    shipment: ShipmentFound
    verification: VerificationFound | None
    acceptance_hits: tuple[dict[str, Any], ...]
    events: tuple[HistoryEventFound, ...]
    leads: tuple[LeadFound, ...]
    as_of: AsOf = AsOf(None)


@dataclass(frozen=True, order=True)
class LeadCursor:
    """A position in the feed of leads: (the inserting transaction, the lead's id), which only ever grows."""

    xid: int
    lead_id: int

    def token(self) -> str:
        """The opaque form a client keeps."""
        return base64.urlsafe_b64encode(f"{self.xid}:{self.lead_id}".encode()).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> LeadCursor:
        """A cursor a client gave back; InvalidInput (cursor) for anything this service did not give."""
        try:
            xid, lead_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":")
            found = cls(int(xid), int(lead_id))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidInput([FieldViolation("cursor", "is not a cursor this service gave")]) from None
        if found.xid < 0 or found.lead_id < 0:
            raise InvalidInput([FieldViolation("cursor", "is not a cursor this service gave")])
        return found


@dataclass(frozen=True)
class LeadFilters:
    """What a watcher asked for: region prefixes, kinds and origins (empty: all)."""

    region_prefixes: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditEntry:
    """One audited call, as written."""

    principal_id: int | None
    principal: str
    method: str
    case_no: str
    filters: dict[str, Any]
    returned: int
    status: str
    shipment_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditFound:
    """One audited call, as listed."""

    id: int
    principal: str
    method: str
    case_no: str
    filters: dict[str, Any]
    returned: int
    status: str
    at: datetime
    leaf_index: int = -1


@dataclass(frozen=True)
class AuditQuery:
    """A page of the audit: filters and the keyset position (the id of the last record seen)."""

    case_no: str = ""
    principal: str = ""
    from_time: datetime | None = None
    to_time: datetime | None = None
    limit: int = 100
    before_id: int | None = None


@dataclass(frozen=True)
class SearchPage:
    """A page of shipments, the token of the next one, and how current the data is."""

    shipments: tuple[ShipmentFound, ...]
    next_page_token: str
    as_of: AsOf
    extra: dict[str, Any] = field(default_factory=dict)
