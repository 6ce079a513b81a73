"""Converters between courier.v1.Custody messages and the custody core."""

from __future__ import annotations

from courier.v1 import custody_pb2
from gateway.core.custody import CustodyMove, Move, MoveResult, ParcelView, ReviewDecision
from gateway.rpc.convert.common import event, parcel_state, timestamp


def move_command(req: custody_pb2.CustodyMoveRequest, move: Move) -> CustodyMove:
    """CustodyMoveRequest to the core's move."""
    return CustodyMove(req.waybill_no, move, req.location, req.terminal_id, req.device_id, req.note)


def review_command(req: custody_pb2.ReviewDecisionRequest, move: Move) -> ReviewDecision:
    """ReviewDecisionRequest to the core's decision."""
    return ReviewDecision(req.waybill_no, move, req.reason, req.case_no)


def move_response(m: MoveResult) -> custody_pb2.CustodyMoveResponse:
    """The core's move result to CustodyMoveResponse."""
    return custody_pb2.CustodyMoveResponse(
        waybill_no=m.waybill_no, from_state=parcel_state(m.from_state), state=parcel_state(m.to_state),
        event_seq=m.event_seq, recorded_at=timestamp(m.recorded_at),
    )


def parcel_view(v: ParcelView) -> custody_pb2.ParcelView:
    """The core's parcel view to ParcelView."""
    return custody_pb2.ParcelView(
        shipment_id=v.shipment_id, waybill_no=v.waybill_no, state=parcel_state(v.state),
        hold_reason=v.hold_reason, masked_sender_name=v.masked_sender_name,
        masked_recipient_name=v.masked_recipient_name, masked_recipient_phone=v.masked_recipient_phone,
        recipient_region_code=v.recipient_region_code, events=[event(e) for e in v.events],
        created_at=timestamp(v.created_at),
    )
