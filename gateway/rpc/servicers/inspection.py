"""courier.v1.Inspection: protobuf to core, one core call, core to protobuf."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import grpc

from courier.v1 import inspection_pb2, inspection_pb2_grpc
from gateway.core.errors import InvalidInput
from gateway.core.inspection_service import InspectionService
from gateway.core.model import Actor
from gateway.rpc.convert import inspection as cv
from gateway.rpc.interceptor import current_principal


class InspectionServicer(inspection_pb2_grpc.InspectionServicer):
    """Inspection results: single records, and the scanner adapters' stream."""

    def __init__(self, service: InspectionService) -> None:
        self._service = service

    async def RecordInspection(
        self, request: inspection_pb2.InspectionRecord, context: grpc.aio.ServicerContext,
    ) -> inspection_pb2.InspectionAck:
        actor = Actor(current_principal(), terminal_id=request.terminal_id, device_id=request.event.device_id)
        try:
            result = await self._service.record(cv.record_command(request), actor)
        except InvalidInput as error:  # the core names a scan's fields; the request holds them under event
            raise cv.record_error(error) from None
        return inspection_pb2.InspectionAck(ack=cv.scan_ack(result))

    async def StreamScans(
        self, request_iterator: AsyncIterable[inspection_pb2.ScanEvent], context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[inspection_pb2.ScanAck]:
        async for result in self._service.record_stream(cv.scan_commands(request_iterator),
                                                        Actor(current_principal())):
            yield cv.scan_ack(result)
