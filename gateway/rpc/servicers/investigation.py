"""courier.v1.Investigation: protobuf to core, one core call, core to protobuf."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from courier.v1 import investigation_pb2, investigation_pb2_grpc
from gateway.core.investigation_service import EvidenceCalls, InvestigationService, lead_filters
from gateway.core.model import Actor
from gateway.rpc.convert import investigation as cv
from gateway.rpc.interceptor import current_principal


def _actor() -> Actor:
    return Actor(current_principal())


class InvestigationServicer(investigation_pb2_grpc.InvestigationServicer):
    """Case-bound search, histories, watched leads, and the audit."""

    def __init__(self, service: InvestigationService, evidence: EvidenceCalls, verifier_keys: tuple[str, ...]) -> None:
        self._service = service
        self._evidence = evidence
        self._keys = verifier_keys

    async def SearchShipments(
        self, request: investigation_pb2.SearchRequest, context: grpc.aio.ServicerContext,
    ) -> investigation_pb2.SearchResponse:
        page = await self._service.search(request.case_no, cv.search_filters(request), request.page_size,
                                          request.page_token, _actor())
        return cv.search_response(page)

    async def GetShipmentHistory(
        self, request: investigation_pb2.GetShipmentHistoryRequest, context: grpc.aio.ServicerContext,
    ) -> investigation_pb2.ShipmentHistory:
        return cv.history(await self._service.history(request.case_no, request.waybill_no, _actor()))

    async def WatchLeads(
        self, request: investigation_pb2.WatchLeadsRequest, context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[investigation_pb2.Lead]:
        filters = lead_filters(list(request.region_codes), list(request.kinds), list(request.origins))
        async for found in self._service.watch(request.case_no, request.cursor, filters, _actor()):
            yield cv.lead(found)

    async def ListAuditRecords(
        self, request: investigation_pb2.ListAuditRecordsRequest, context: grpc.aio.ServicerContext,
    ) -> investigation_pb2.ListAuditRecordsResponse:
        query = cv.audit_query(request)
        return cv.audit_response(await self._service.audit_records(query), query.limit)

    async def ExportEvidence(
        self, request: investigation_pb2.ExportEvidenceRequest, context: grpc.aio.ServicerContext,
    ) -> investigation_pb2.EvidenceBundle:
        return cv.bundle(await self._evidence.export(request.case_no, request.waybill_no, _actor()))

    async def GetTreeHead(
        self, request: investigation_pb2.GetTreeHeadRequest, context: grpc.aio.ServicerContext,
    ) -> investigation_pb2.SignedTreeHead:
        return cv.tree_head(await self._evidence.tree_head(request.case_no, request.fresh, _actor()), self._keys)

    async def GetInclusionProof(
        self, request: investigation_pb2.GetInclusionProofRequest, context: grpc.aio.ServicerContext,
    ) -> investigation_pb2.InclusionProof:
        found = await self._evidence.inclusion(request.case_no, request.leaf_index, request.tree_size, _actor())
        return cv.inclusion(*found)

    async def GetConsistencyProof(
        self, request: investigation_pb2.GetConsistencyProofRequest, context: grpc.aio.ServicerContext,
    ) -> investigation_pb2.ConsistencyProof:
        found = await self._evidence.consistency(request.case_no, request.old_size, request.new_size, _actor())
        return cv.consistency(request.old_size, found)
