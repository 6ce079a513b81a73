"""Ceiling (f): the accept scenario's pairs (VerifySender + AcceptParcel) against the floor, closed loop."""

from __future__ import annotations

import secrets
from typing import Any

from bench.scenario import BenchContext
from bench.scenarios.accept import Accept


class FloorAccept(Accept):
    """The CPU one accept pair costs a bare handler that does the work: the gateway's accept is measured in it."""

    name = "floor_accept"
    server = "floor"
    ceiling = None
    open_loop = False
    order = 14
    targets = ()
    description = "floor VerifySender + AcceptParcel: the work of both, without the gateway's rules"

    async def prepare(self, ctx: BenchContext) -> dict[str, Any]:
        # Measured again after the scenarios, with call indexes from 0: each trial's waybills are its own.
        return {"prefix": f"BF{ctx.run_tag}{secrets.token_hex(2)}-"}


SCENARIO = FloorAccept()
