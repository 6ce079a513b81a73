"""verify over several connections per load generator (bench/channels/_spread.py); the plan's "target" says where
they go."""

from __future__ import annotations

from bench.channels._spread import CONNECTIONS, OverConnections
from bench.scenarios.verify import Verify


class VerifyOverConnections(OverConnections, Verify):
    """The verify scenario, its calls spread over several connections of each load generator."""

    description = f"VerifySender (authority simulator MATCH, one INSERT), {CONNECTIONS} connections per load generator"


SCENARIO = VerifyOverConnections()
