"""courier.v1.Custody: protobuf to core, one core call, core to protobuf."""

from __future__ import annotations

import grpc

from courier.v1 import custody_pb2, custody_pb2_grpc
from gateway import convert
from gateway.core.custody import CustodyMove, CustodyService, Move, ReviewDecision
from gateway.core.model import Actor
from gateway.interceptors import current_principal


def _move(request: custody_pb2.CustodyMoveRequest, move: Move) -> tuple[CustodyMove, Actor]:
    cmd = CustodyMove(request.waybill_no, move, request.location, request.terminal_id, request.device_id,
                      request.note)
    return cmd, Actor(current_principal(), terminal_id=request.terminal_id, device_id=request.device_id)


class CustodyServicer(custody_pb2_grpc.CustodyServicer):
    """Custody moves: store and dispatch, and the masked parcel view."""

    def __init__(self, custody: CustodyService) -> None:
        self._custody = custody

    async def StoreParcel(
        self, request: custody_pb2.CustodyMoveRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.CustodyMoveResponse:
        return convert.move_response(await self._custody.move(*_move(request, Move.STORE)))

    async def DispatchParcel(
        self, request: custody_pb2.CustodyMoveRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.CustodyMoveResponse:
        return convert.move_response(await self._custody.move(*_move(request, Move.DISPATCH)))

    async def GetParcel(
        self, request: custody_pb2.GetParcelRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.ParcelView:
        return convert.parcel_view(await self._custody.view(request.waybill_no))

    async def ReleaseHold(
        self, request: custody_pb2.ReviewDecisionRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.CustodyMoveResponse:
        return convert.move_response(await self._custody.review(_decision(request, Move.RELEASE), _actor()))

    async def ConfirmHold(
        self, request: custody_pb2.ReviewDecisionRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.CustodyMoveResponse:
        return convert.move_response(await self._custody.review(_decision(request, Move.CONFIRM_HOLD), _actor()))

    async def RefuseParcel(
        self, request: custody_pb2.ReviewDecisionRequest, context: grpc.aio.ServicerContext,
    ) -> custody_pb2.CustodyMoveResponse:
        return convert.move_response(await self._custody.review(_decision(request, Move.REFUSE), _actor()))


def _decision(request: custody_pb2.ReviewDecisionRequest, move: Move) -> ReviewDecision:
    return ReviewDecision(request.waybill_no, move, request.reason, request.case_no)


def _actor() -> Actor:
    return Actor(current_principal())
