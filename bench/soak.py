"""The soak: mixed load at 70% of the maximum for a long time, watching errors, p99 drift and the gateway's RSS.

`make soak` (`python -m bench.soak`) starts the stack as `make bench` does (its own PostgreSQL with fsync on, the
identity-authority simulator, the gateway as a process), finds the maximum rate of the mix in a short closed loop,
then runs it open loop at `--fraction` (0.7) of that for `--seconds` (SOAK_S, 600 by default) in consecutive
windows (60 s, or a quarter of a shorter soak), each window's p99 and the gateway's VmRSS at its end recorded.
The mix, per ten calls: four VerifySender + AcceptParcel of a fresh waybill, two RecordInspection scans of a
parcel accepted here, two StoreParcel (custody) of one, two investigator SearchShipments by waybill.

It reports the errors (must be 0), the p99 drift (the last window's p99 against the first's) and the RSS growth
(the last window's against the first's, so start-up allocations are not counted), each against 10%, writes
`bench/results/soak-<UTC timestamp>.json` and exits 1 when any limit is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import procstat
from bench.config import RESULTS
from bench.measure import PhaseRunner, PhaseSpec, Watched
from bench.pool import WorkerPool
from bench.scenario import CallFailed, Scenario, Worker
from bench.scenarios._requests import accept_request, store_request, verify_request
from bench.stack import running_stack
from courier.v1 import (
    acceptance_pb2,
    acceptance_pb2_grpc,
    common_pb2,
    custody_pb2_grpc,
    inspection_pb2,
    inspection_pb2_grpc,
    investigation_pb2,
    investigation_pb2_grpc,
)

LIMIT_PCT = 10.0  # p99 drift and RSS growth, each
CASE = "CASE-2026-SOAK"
_RECENT = 256  # parcels a worker keeps for scans and searches


class SoakMix(Scenario):
    """One call of the mix, chosen by the call index: accept (with its verification), scan, custody or search."""

    name = "soak"
    description = "mixed: 40% VerifySender+AcceptParcel, 20% RecordInspection, 20% StoreParcel, 20% SearchShipments"

    async def setup(self, worker: Worker) -> Any:
        channel = worker.channel
        terminal = f"T-SOAK-{worker.index:02d}"
        investigator = (("authorization", f"Bearer {worker.plan['investigator_token']}"),)
        return {"worker": worker, "terminal": terminal, "investigator": investigator,
                "acceptance": acceptance_pb2_grpc.AcceptanceStub(channel),  # type: ignore[no-untyped-call]
                "custody": custody_pb2_grpc.CustodyStub(channel),  # type: ignore[no-untyped-call]
                "inspection": inspection_pb2_grpc.InspectionStub(channel),  # type: ignore[no-untyped-call]
                "investigation": investigation_pb2_grpc.InvestigationStub(channel),  # type: ignore[no-untyped-call]
                "verify": verify_request(terminal), "to_store": collections.deque(),
                "recent": collections.deque(maxlen=_RECENT)}

    async def call(self, state: Any, i: int) -> dict[str, float] | None:
        kind = i % 10
        started = time.perf_counter()
        if kind in (6, 7) and state["to_store"]:
            await self._store(state)
            return {"custody": time.perf_counter() - started}
        if kind in (4, 5) and state["recent"]:
            await self._scan(state, i)
            return {"scan": time.perf_counter() - started}
        if kind in (8, 9) and state["recent"]:
            await self._search(state)
            return {"search": time.perf_counter() - started}
        await self._accept(state, i)  # also whenever there is no parcel yet for the others
        return {"accept": time.perf_counter() - started}

    async def _accept(self, state: Any, i: int) -> None:
        worker: Worker = state["worker"]
        verdict = await state["acceptance"].VerifySender(state["verify"], metadata=worker.metadata,
                                                         timeout=worker.timeout_s)
        if verdict.verdict != acceptance_pb2.VERDICT_VERIFIED:
            raise CallFailed("VERDICT_" + acceptance_pb2.Verdict.Name(verdict.verdict))
        number = f"{worker.plan['prefix']}{i:010d}"
        answer = await state["acceptance"].AcceptParcel(
            accept_request(verdict.sender_ref, number, i, state["terminal"]), metadata=worker.metadata,
            timeout=worker.timeout_s)
        if answer.decision != acceptance_pb2.ACCEPT_DECISION_ACCEPTED:
            raise CallFailed("DECISION_" + acceptance_pb2.AcceptDecision.Name(answer.decision))
        state["to_store"].append(number)
        state["recent"].append(number)

    async def _store(self, state: Any) -> None:
        worker: Worker = state["worker"]
        answer = await state["custody"].StoreParcel(store_request(state["to_store"].popleft(), "SC-SOAK-01"),
                                                    metadata=worker.metadata, timeout=worker.timeout_s)
        if answer.state != common_pb2.PARCEL_STATE_STORED:
            raise CallFailed("STATE_" + common_pb2.ParcelState.Name(answer.state))

    async def _scan(self, state: Any, i: int) -> None:
        worker: Worker = state["worker"]
        event = inspection_pb2.ScanEvent(
            event_id=f"soak-{worker.plan['prefix']}{i}", device_id="DWS-SOAK-01", kind=inspection_pb2.SCAN_KIND_DWS,
            waybill_no=random.choice(state["recent"]), location="SOAK/line-1",
            measurements=inspection_pb2.Measurements(weight_g=800, length_mm=300, width_mm=200, height_mm=100))
        ack = await state["inspection"].RecordInspection(inspection_pb2.InspectionRecord(event=event),
                                                        metadata=worker.metadata, timeout=worker.timeout_s)
        if ack.ack.event_id != event.event_id or ack.ack.replayed:
            raise CallFailed("BAD_ACK")

    async def _search(self, state: Any) -> None:
        worker: Worker = state["worker"]
        number = random.choice(state["recent"])
        found = await state["investigation"].SearchShipments(
            investigation_pb2.SearchRequest(case_no=CASE, waybill_no=number), metadata=state["investigator"],
            timeout=worker.timeout_s)
        if [s.waybill_no for s in found.shipments] != [number]:
            raise CallFailed("NOT_FOUND_BY_SEARCH")


SCENARIO = SoakMix()


def _pct(first: float | None, last: float | None) -> float | None:
    if first is None or last is None or first <= 0:
        return None
    return (last - first) / first * 100


async def _investigator_token(dsn: str) -> str:
    from gateway.core.model import Role
    from gateway.storage.db import create_pool
    from gateway.storage.principals import PrincipalRepository

    pool = await create_pool(dsn, min_size=1, max_size=1)
    try:
        return (await PrincipalRepository(pool).create_token("soak-investigator", frozenset({Role.INVESTIGATOR})))[1]
    finally:
        await pool.close()


async def soak(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """The whole soak; returns the results document."""
    window_s = 60.0 if args.seconds >= 240 else max(5.0, args.seconds / 4)
    windows = max(2, round(args.seconds / window_s))
    started, load_before = datetime.now(UTC), os.getloadavg()
    async with running_stack() as stack:
        pid = stack.gateway.pid
        console.log(f"gateway on {stack.gateway_target} (pid {pid}), PostgreSQL {stack.server_version}")
        plan = {"prefix": f"SK{started:%H%M%S}-", "investigator_token": await _investigator_token(stack.dsn)}
        pool = WorkerPool(args.workers)
        await pool.start()
        try:
            loadgen = tuple(pool.pids)
            own = (os.getpid(), pid, stack.echo.pid, stack.simulator.pid, *loadgen)
            watched = Watched(pid, stack.postmaster_pid, loadgen, (stack.simulator.pid,), own)
            probe = PhaseRunner(pool, stack.dsn, stack.token, args.warmup, args.probe_s, 10.0)
            console.log(f"maximum: closed loop, {args.concurrency} in flight, {args.probe_s:.0f} s")
            closed = await probe.run(SCENARIO, "bench", PhaseSpec("closed", concurrency=args.concurrency),
                                     target=stack.gateway_target, plan=plan, base=0, watched=watched)
            base = closed.pop("next_base")
            rate = closed["throughput"] * args.fraction
            console.log(f"maximum {closed['throughput']:,.0f} calls/s; soaking at {rate:,.0f}/s for"
                        f" {windows} x {window_s:.0f} s")
            steady = PhaseRunner(pool, stack.dsn, stack.token, 0.0, window_s, 10.0)
            samples: list[dict[str, Any]] = []
            for n in range(windows):
                # The first window starts with a warm-up at the soak rate, left out of the figures.
                runner = PhaseRunner(pool, stack.dsn, stack.token, args.warmup, window_s, 10.0) if n == 0 else steady
                phase = await runner.run(SCENARIO, "bench", PhaseSpec("open", rate=rate),
                                         target=stack.gateway_target, plan=plan, base=base, watched=watched)
                base = phase.pop("next_base")
                phase["rss_end_mb"] = procstat.rss_mb(pid)
                phase["loadavg"] = os.getloadavg()
                samples.append(phase)
                console.log(f"window {n + 1}/{windows}: {phase['throughput']:,.0f}/s p99 {phase['p99_ms']:.1f} ms"
                            f" errors {phase['errors']} dropped {phase['dropped']} RSS {phase['rss_end_mb']:.0f} MB"
                            f" load {phase['loadavg'][0]:.1f}")
        finally:
            pool.stop()
    errors = sum(w["errors"] + w["dropped"] for w in samples)
    drift = _pct(samples[0]["p99_ms"], samples[-1]["p99_ms"])
    growth = _pct(samples[0]["rss_end_mb"], samples[-1]["rss_end_mb"])
    checks = {"errors": errors == 0, "p99_drift": drift is not None and drift < LIMIT_PCT,
              "rss_growth": growth is not None and growth < LIMIT_PCT}
    return {"started": started.isoformat(), "seconds": args.seconds, "window_s": window_s,
            "fraction": args.fraction, "max": closed, "rate": rate, "windows": samples, "errors": errors,
            "p99_drift_pct": drift, "rss_growth_pct": growth, "limit_pct": LIMIT_PCT, "checks": checks,
            "passed": all(checks.values()), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "cpus": os.cpu_count()}


def _show(doc: dict[str, Any], console: Console) -> None:
    table = Table(title=f"soak: {doc['rate']:,.0f} calls/s ({doc['fraction']:.0%} of {doc['max']['throughput']:,.0f})")
    for column in ("window", "calls/s", "p50 ms", "p99 ms", "errors", "RSS MB", "load"):
        table.add_column(column, justify="right")
    for n, w in enumerate(doc["windows"], 1):
        table.add_row(str(n), f"{w['throughput']:,.0f}", f"{w['p50_ms']:.1f}", f"{w['p99_ms']:.1f}",
                      str(w["errors"] + w["dropped"]), f"{w['rss_end_mb']:.0f}", f"{w['loadavg'][0]:.1f}")
    console.print(table)
    verdict = {True: "ok", False: "FAILED"}
    drift, growth = doc["p99_drift_pct"], doc["rss_growth_pct"]
    console.print(f"errors {doc['errors']} (must be 0): {verdict[doc['checks']['errors']]}; "
                  f"p99 drift {drift:+.1f}% (< {LIMIT_PCT:.0f}%): {verdict[doc['checks']['p99_drift']]}; "
                  f"RSS growth {growth:+.1f}% (< {LIMIT_PCT:.0f}%): {verdict[doc['checks']['rss_growth']]}")


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.soak`: 0 when errors, p99 drift and RSS growth are within their limits, else 1."""
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_S", "600")),
                   help="how long the soak runs (default SOAK_S or 600)")
    p.add_argument("--fraction", type=float, default=0.7, help="the soak's rate as a fraction of the maximum")
    p.add_argument("--probe-s", type=float, default=15.0, help="seconds of the closed loop that finds the maximum")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before the maximum and the soak")
    p.add_argument("--concurrency", type=int, default=32, help="calls in flight while finding the maximum")
    p.add_argument("--workers", type=int, default=2, help="load-generator processes")
    p.add_argument("--out", type=Path, help="JSON file (default bench/results/soak-<UTC timestamp>.json)")
    args = p.parse_args(argv)
    if not 10 <= args.seconds <= 86400 or not 0.05 <= args.fraction <= 1:
        p.error("--seconds must be 10..86400 and --fraction 0.05..1")
    console = Console() if sys.stdout.isatty() else Console(width=160)
    doc = asyncio.run(soak(args, console))
    out = args.out or RESULTS / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    _show(doc, console)
    console.print(f"results: {out}")
    return 0 if doc["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
