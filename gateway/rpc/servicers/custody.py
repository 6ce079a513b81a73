"""courier.v1.Custody: protobuf to core, one core call, core to protobuf."""

from __future__ import annotations

import grpc

from courier.v1 import custody_pb2, custody_pb2_grpc
from gateway.core.custody import CustodyService, Move
from gateway.core.model import Actor
from gateway.rpc.convert import custody as cv
from gateway.rpc.interceptor import current_principal


def _actor(request: custody_pb2.CustodyMoveRequest | None = None) -> Actor:
    if request is None:
        return Actor(current_principal())
    return Actor(current_principal(), terminal_id=request.terminal_id, device_id=request.device_id)


class CustodyServicer(custody_pb2_grpc.CustodyServicer):
    """Custody moves: store and dispatch, the masked parcel view, and reviewers' hold decisions."""

    def __init__(self, custody: CustodyService) -> None:
        self._custody = custody

    async def StoreParcel(
        self, request: custody_pb2.CustodyMoveRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.CustodyMoveResponse:
        return cv.move_response(await self._custody.move(cv.move_command(request, Move.STORE), _actor(request)))

    async def DispatchParcel(
        self, request: custody_pb2.CustodyMoveRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.CustodyMoveResponse:
        return cv.move_response(await self._custody.move(cv.move_command(request, Move.DISPATCH), _actor(request)))

    async def GetParcel(
        self, request: custody_pb2.GetParcelRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.ParcelView:
        return cv.parcel_view(await self._custody.view(request.waybill_no))

    async def ReleaseHold(
        self, request: custody_pb2.ReviewDecisionRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.CustodyMoveResponse:
        return cv.move_response(await self._custody.review(cv.review_command(request, Move.RELEASE), _actor()))

    async def ConfirmHold(
        self, request: custody_pb2.ReviewDecisionRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.CustodyMoveResponse:
        return cv.move_response(await self._custody.review(cv.review_command(request, Move.CONFIRM_HOLD), _actor()))

    async def RefuseParcel(
        self, request: custody_pb2.ReviewDecisionRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.CustodyMoveResponse:
        return cv.move_response(await self._custody.review(cv.review_command(request, Move.REFUSE), _actor()))
