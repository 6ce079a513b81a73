"""Ceiling (e): the verify scenario's calls against the floor (bench/ceilings/floor.py), closed loop."""

from __future__ import annotations

from bench.scenarios.verify import Verify


class FloorVerify(Verify):
    """The CPU one VerifySender costs a bare handler that does the work: the gateway's verify is measured in it."""

    name = "floor_verify"
    server = "floor"
    ceiling = None
    open_loop = False
    order = 12
    targets = ()
    description = "floor VerifySender: parse, 1 authority HTTP call, 2 AES-GCM seals, 1 group-committed INSERT"


SCENARIO = FloorVerify()
