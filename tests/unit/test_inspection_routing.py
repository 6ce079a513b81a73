"""The reconnect back-off and the routing board's lines and listeners."""

from __future__ import annotations

import random

from courier.v1 import common_pb2
from courier.v1 import inspection_pb2 as pb
from inspection.forwarder import Backoff
from inspection.routing import RoutingBoard


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, 8.0, rng=random.Random(1))
    delays = [backoff.next() for _ in range(10)]
    ceilings = [min(8.0, 0.5 * 2**n) for n in range(10)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    assert max(delays) <= 8.0 and delays[-1] >= 4.0
    assert len({round(d, 6) for d in delays[5:]}) == 5, "no jitter: every adapter would retry in step"
    backoff.reset()
    assert backoff.next() <= 0.5


def test_each_ack_is_one_line_and_the_latest_per_device() -> None:
    board, told = RoutingBoard(), []
    board.subscribe(told.append)
    board.subscribe(lambda d: 1 / 0)  # a broken listener must not stop the others or the board
    ack = pb.ScanAck(event_id="dws-1-ab12cd34-7", decision=pb.ROUTING_DECISION_DIVERT_TO_HOLD,
                     waybill_no="SF1234567890",
                     reasons=[common_pb2.Reason(code="PARCEL_HELD", message="held for review")])
    first = board.record("dws-1", ack)
    assert first.line() == "dws-1 SF1234567890 DIVERT_TO_HOLD: PARCEL_HELD (held for review) [dws-1-ab12cd34-7]"
    second = board.record("dws-1", pb.ScanAck(event_id="dws-1-ab12cd34-8", decision=pb.ROUTING_DECISION_PASS,
                                              replayed=True))
    assert board.latest("dws-1") is second and board.latest("scale-1") is None
    assert second.line() == "dws-1 (no waybill) PASS (replayed): - [dws-1-ab12cd34-8]"
    assert told == [first, second]
