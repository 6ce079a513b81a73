"""Converters between courier.v1.Investigation messages and the investigation core."""

from __future__ import annotations

import json
import re

from google.protobuf.timestamp_pb2 import Timestamp

from courier.v1 import common_pb2, investigation_pb2
from gateway.core.errors import FieldViolation, InvalidInput
from gateway.core.evidence.records import canonical_bytes
from gateway.core.evidence_service import Export, Head, Proven
from gateway.core.investigation import SearchFilters
from gateway.core.investigation_records import (
    AsOf,
    AuditFound,
    AuditQuery,
    HistoryEventFound,
    HistoryFound,
    LeadFound,
    PartyView,
    SearchPage,
    ShipmentFound,
    VerificationFound,
)
from gateway.rpc.convert.common import document_type, from_timestamp, hits, parcel_state, reasons, timestamp


def search_filters(req: investigation_pb2.SearchRequest) -> SearchFilters:
    """SearchRequest to the core's filters."""
    return SearchFilters(
        document_number=req.document_number, document_type=document_type(req.document_type), phone=req.phone,
        name=req.name, waybill_no=req.waybill_no, origin_region_code=req.origin_region_code,
        destination_region_code=req.destination_region_code,
        from_time=from_timestamp(req.from_time, req.HasField("from_time")),
        to_time=from_timestamp(req.to_time, req.HasField("to_time")), flagged_only=req.flagged_only,
    )


def _document_type(value: object) -> int:
    return common_pb2.DocumentType.Value(f"DOCUMENT_TYPE_{value.name}") if value is not None else 0  # type: ignore[attr-defined]


def _party(p: PartyView) -> investigation_pb2.PartyRecord:
    return investigation_pb2.PartyRecord(
        name=p.name, document_type=_document_type(p.document_type), document_number=p.document_number,
        phone=p.phone, region_code=p.region_code, address=p.address, credit_code=p.credit_code)


def shipment(s: ShipmentFound) -> investigation_pb2.ShipmentRecord:
    """A shipment in full to ShipmentRecord."""
    return investigation_pb2.ShipmentRecord(
        shipment_id=s.shipment_id, waybill_no=s.waybill_no, decision=s.decision, state=parcel_state(s.state),
        hold_reason=s.hold_reason, sender=_party(s.sender), recipient=_party(s.recipient),
        items_json=json.dumps(list(s.items), ensure_ascii=False), accepted_at=timestamp(s.accepted_at),
        flagged=s.flagged, contract_customer_id=s.contract_customer_id)


def search_response(page: SearchPage) -> investigation_pb2.SearchResponse:
    """A page of shipments to SearchResponse."""
    return investigation_pb2.SearchResponse(shipments=[shipment(s) for s in page.shipments],
                                            next_page_token=page.next_page_token, as_of=_as_of(page.as_of),
                                            from_replica=page.as_of.from_replica)


def _as_of(found: AsOf) -> Timestamp | None:
    return timestamp(found.at) if found.at is not None else None


def _event(e: HistoryEventFound) -> investigation_pb2.HistoryEvent:
    return investigation_pb2.HistoryEvent(
        seq=e.seq, kind=e.kind, from_state=parcel_state(e.from_state), to_state=parcel_state(e.to_state),
        actor=common_pb2.Actor(principal=e.principal, terminal_id=e.terminal_id, device_id=e.device_id),
        location=e.location, note=e.note, recorded_at=timestamp(e.recorded_at),
        details_json=json.dumps(e.details, ensure_ascii=False, sort_keys=True), leaf_index=e.leaf_index)


def _verification(v: VerificationFound) -> investigation_pb2.VerificationRecord:
    return investigation_pb2.VerificationRecord(
        verification_id=v.verification_id, verdict=v.verdict, document_type=_document_type(v.document_type),
        document_number=v.document_number, name=v.name, phone=v.phone, authority_result=v.authority_result,
        in_person_check=v.in_person_check, terminal_id=v.terminal_id, verified_at=timestamp(v.verified_at),
        reasons=reasons(v.reasons))


def lead(found: LeadFound) -> investigation_pb2.Lead:
    """A lead to Lead."""
    return investigation_pb2.Lead(
        cursor=found.cursor.token(), lead_id=found.lead_id, waybill_no=found.waybill_no,
        shipment_id=found.shipment_id, kind=found.kind, origin=found.origin, reason=found.reason,
        hits=hits(found.hits), created_at=timestamp(found.created_at), origin_region_code=found.origin_region_code,
        destination_region_code=found.destination_region_code)


def history(h: HistoryFound) -> investigation_pb2.ShipmentHistory:
    """A shipment's history to ShipmentHistory."""
    return investigation_pb2.ShipmentHistory(
        shipment=shipment(h.shipment), verification=_verification(h.verification) if h.verification else None,
        acceptance_hits=hits(h.acceptance_hits), events=[_event(e) for e in h.events],
        leads=[lead(x) for x in h.leads], as_of=_as_of(h.as_of), from_replica=h.as_of.from_replica)


_AUDIT_TOKEN = re.compile(r"[1-9][0-9]{0,17}")  # an audit record's id, within bigint


def audit_query(req: investigation_pb2.ListAuditRecordsRequest) -> AuditQuery:
    """ListAuditRecordsRequest to the core's query (the page token is the last id seen, as audit_response
    gives it); InvalidInput for any other token: "9" * 40 overflowed bigint and "²" passed isdigit, both INTERNAL."""
    before = None
    if req.page_token:
        if not _AUDIT_TOKEN.fullmatch(req.page_token):
            raise InvalidInput([FieldViolation("page_token", "is not a page token ListAuditRecords gave")])
        before = int(req.page_token)
    return AuditQuery(case_no=req.case_no, principal=req.principal,
                      from_time=from_timestamp(req.from_time, req.HasField("from_time")),
                      to_time=from_timestamp(req.to_time, req.HasField("to_time")),
                      limit=req.page_size or 100, before_id=before)


def audit_response(records: list[AuditFound], limit: int) -> investigation_pb2.ListAuditRecordsResponse:
    """A page of the audit to ListAuditRecordsResponse."""
    return investigation_pb2.ListAuditRecordsResponse(
        records=[investigation_pb2.AuditRecord(
            id=r.id, principal=r.principal, method=r.method, case_no=r.case_no,
            filters_json=json.dumps(r.filters, ensure_ascii=False, sort_keys=True), returned=r.returned,
            status=r.status, at=timestamp(r.at), leaf_index=r.leaf_index) for r in records],
        next_page_token=str(records[-1].id) if len(records) == limit and records else "")


def tree_head(head: Head, keys: tuple[str, ...]) -> investigation_pb2.SignedTreeHead:
    """A signed head to SignedTreeHead."""
    return investigation_pb2.SignedTreeHead(tree_size=head.tree_size, root_hash=head.root_hash,
                                            signed_at=timestamp(head.signed_at), key_id=head.key_id,
                                            checkpoint=head.note, verifier_keys=list(keys))


def inclusion(proven: Proven, head: Head) -> investigation_pb2.InclusionProof:
    """A leaf's proof to InclusionProof."""
    return investigation_pb2.InclusionProof(
        leaf_index=proven.leaf_index, tree_size=head.tree_size, leaf_hash=proven.leaf_hash, proof=list(proven.proof),
        record_json=canonical_bytes(proven.record).decode(), checkpoint=head.note)


def consistency(old: int,
                answer: tuple[list[bytes], bytes, bytes, Head | None, int]) -> investigation_pb2.ConsistencyProof:
    """A consistency proof to ConsistencyProof."""
    proof, old_root, new_root, head, new = answer
    return investigation_pb2.ConsistencyProof(old_size=old, new_size=new, old_root_hash=old_root,
                                              new_root_hash=new_root, proof=proof, checkpoint=head.note if head else "")


def bundle(found: Export) -> investigation_pb2.EvidenceBundle:
    """An export to EvidenceBundle."""
    return investigation_pb2.EvidenceBundle(
        format=found.bundle["format"], bundle_json=json.dumps(found.bundle, ensure_ascii=False, indent=1),
        record_count=found.records, tree_size=found.head.tree_size, checkpoint=found.head.note,
        pending_records=found.pending)
