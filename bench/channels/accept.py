"""accept over several connections per load generator (bench/channels/_spread.py); the plan's "target" says where
they go."""

from __future__ import annotations

from bench.channels._spread import CONNECTIONS, OverConnections
from bench.scenarios.accept import Accept


class AcceptOverConnections(OverConnections, Accept):
    """The accept scenario, its calls spread over several connections of each load generator."""

    description = f"VerifySender + AcceptParcel (fresh waybill each), {CONNECTIONS} connections per load generator"


SCENARIO = AcceptOverConnections()
