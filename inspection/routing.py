"""Routing decisions for the sorting line: one log line per ack, and the latest decision per device.

Whatever drives the line (a PLC bridge, a diverter controller) subscribes a callback or asks `latest()`;
a real PLC integration (Modbus, OPC UA, Profinet) is out of scope here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from courier.v1 import inspection_pb2 as pb

log = logging.getLogger("inspection.routing")


@dataclass(frozen=True)
class Decision:
    """What the sorting line does with the parcel of one reading."""

    device_id: str
    event_id: str
    waybill: str
    decision: str  # PASS, DIVERT_TO_HOLD or REJECT (UNSPECIFIED should never come)
    reasons: tuple[str, ...]
    replayed: bool
    at: float

    def line(self) -> str:
        """One readable line: device, waybill, decision and reasons."""
        why = "; ".join(self.reasons) or "-"
        again = " (replayed)" if self.replayed else ""
        return f"{self.device_id} {self.waybill or '(no waybill)'} {self.decision}{again}: {why} [{self.event_id}]"


Listener = Callable[[Decision], None]


def decision_of(device_id: str, ack: pb.ScanAck) -> Decision:
    """The Decision an ack carries."""
    name = pb.RoutingDecision.Name(ack.decision).removeprefix("ROUTING_DECISION_")
    reasons = tuple(f"{r.code} ({r.message})" if r.message else r.code for r in ack.reasons)
    return Decision(device_id, ack.event_id, ack.waybill_no, name, reasons, ack.replayed, time.time())


class RoutingBoard:
    """The latest decision per device, and callbacks told of each one as it arrives."""

    def __init__(self) -> None:
        self._latest: dict[str, Decision] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Calls listener with every decision from now on."""
        self._listeners.append(listener)

    def latest(self, device_id: str) -> Decision | None:
        """The latest decision for a device's parcels, if any came."""
        return self._latest.get(device_id)

    def record(self, device_id: str, ack: pb.ScanAck) -> Decision:
        """Logs the ack as one line, keeps it as the device's latest and tells the listeners."""
        decision = decision_of(device_id, ack)
        log.info("route %s", decision.line())
        self._latest[device_id] = decision
        for listener in self._listeners:
            # A listener's failure must not stop acks being recorded: it is logged with its traceback.
            try:
                listener(decision)
            except Exception:
                log.exception("routing listener %r failed on %s", listener, decision.event_id)
        return decision
