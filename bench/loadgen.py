"""The load generator, as it runs inside each worker process: closed loop or open loop, on uvloop.

Closed loop keeps `concurrency` calls in flight (maximum throughput). Open loop starts calls on a fixed
schedule whatever the answers do, and measures each latency from the call's scheduled time, so a stalled
server shows up as latency rather than as a quietly lower send rate (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from bench.scenario import CallFailed, Exhausted, Scenario, Worker, load

_MAX_OPEN_OUTSTANDING = 4096  # open loop: beyond this many calls in flight, further arrivals are dropped
# After the window, connections stay open this long: the harness reads the servers' CPU at the window's end,
# and backends exiting at that moment would take their CPU time out of the reading.
_SETTLE_S = 0.5


@dataclass(frozen=True)
class Job:
    """One phase for one worker process."""

    package: str
    scenario: str
    target: str  # host:port for gRPC scenarios, "" for database ones
    dsn: str
    token: str
    plan: dict[str, Any]
    mode: str  # "closed" or "open"
    concurrency: int  # calls in flight (closed) / not used (open)
    rate: float  # calls/s of this worker (open)
    warmup_s: float
    duration_s: float
    start_at: float  # time.time() at which every worker starts, so the windows line up
    index: int
    count: int
    base: int  # first call index of this phase (phases never reuse an index)
    timeout_s: float = 10.0


@dataclass
class JobResult:
    """What one worker measured in its window (warm-up excluded)."""

    latencies: np.ndarray  # seconds, calls that started and ended inside the window
    extra: dict[str, np.ndarray]
    errors: dict[str, int]
    window_s: float
    max_i: int
    exhausted: bool = False
    dropped: int = 0
    late_s: float = 0.0
    first_errors: list[str] = field(default_factory=list)


class _Recorder:
    """Keeps the calls that started inside [lo, hi), however late they ended: latencies, errors by code.

    Counting by start, not by end, keeps the slow calls at the window's end in the figures (an open loop
    would otherwise lose exactly the calls that make its p99).
    """

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi
        self.latencies: list[float] = []
        self.extra: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.first_errors: list[str] = []
        self.max_i = -1
        self.exhausted_at: float | None = None

    async def run(self, scenario: Scenario, state: Any, i: int, t0: float) -> bool:
        """Makes call i (scheduled at t0); False when the scenario is exhausted."""
        self.max_i = max(self.max_i, i)
        try:
            sub = await scenario.call(state, i)
            code = None
        except Exhausted:
            self.exhausted_at = min(self.exhausted_at or t0, t0)
            return False
        except grpc.aio.AioRpcError as exc:
            code, sub = exc.code().name, None
            self._note(f"{code}: {exc.details()}")
        except CallFailed as exc:
            code, sub = exc.code, None
        except Exception as exc:  # noqa: BLE001 - a broken call is a figure to report, not a reason to stop
            code, sub = type(exc).__name__, None
            self._note(f"{code}: {exc}")
        t1 = time.perf_counter()
        if self.lo <= t0 < self.hi:
            if code is None:
                self.latencies.append(t1 - t0)
                for key, value in (sub or {}).items():
                    self.extra.setdefault(key, []).append(value)
            else:
                self.errors[code] = self.errors.get(code, 0) + 1
        return True

    def _note(self, text: str) -> None:
        if len(self.first_errors) < 5:
            self.first_errors.append(text[:300])


async def _closed(job: Job, scenario: Scenario, state: Any, rec: _Recorder, start: float) -> None:
    end = rec.hi
    next_k = iter(range(10**12))  # shared by the coroutines: each call index is used once

    async def one_lane() -> None:
        while time.perf_counter() < end:
            i = job.base + job.index + next(next_k) * job.count
            if not await rec.run(scenario, state, i, time.perf_counter()):
                return

    await asyncio.gather(*(one_lane() for _ in range(job.concurrency)))


async def _open(job: Job, scenario: Scenario, state: Any, rec: _Recorder, start: float) -> int:
    if job.rate <= 0:  # a load generator the scenario leaves out
        return 0
    interval, end = 1.0 / job.rate, rec.hi
    pending: set[asyncio.Task[bool]] = set()
    dropped, k = 0, 0
    while (now := time.perf_counter()) < end and rec.exhausted_at is None:
        while (due := start + k * interval) <= now and due < end:
            if len(pending) >= _MAX_OPEN_OUTSTANDING:
                dropped += due >= rec.lo
            else:
                task = asyncio.create_task(rec.run(scenario, state, job.base + job.index + k * job.count, due))
                pending.add(task)
                task.add_done_callback(pending.discard)
            k += 1
        await asyncio.sleep(max(0.0, start + k * interval - time.perf_counter()))
    if pending:
        await asyncio.wait(pending, timeout=job.timeout_s + 1)
    for task in list(pending):  # only calls that outlived their own deadline are left
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return dropped


async def run_job(job: Job) -> JobResult:
    """Runs one phase and returns what it measured."""
    scenario = load(job.package, job.scenario)
    channel = grpc.aio.insecure_channel(job.target) if job.target else None
    worker = Worker(job.index, job.count, job.plan, (("authorization", f"Bearer {job.token}"),),
                    job.timeout_s, job.dsn, channel)
    try:
        state = await scenario.setup(worker)
        late = max(0.0, time.time() - job.start_at)
        await asyncio.sleep(max(0.0, job.start_at - time.time()))
        start = time.perf_counter()
        rec = _Recorder(start + job.warmup_s, start + job.warmup_s + job.duration_s)
        dropped = 0
        if job.mode == "closed":
            await _closed(job, scenario, state, rec, start)
        else:
            dropped = await _open(job, scenario, state, rec, start)
        await asyncio.sleep(max(0.0, rec.hi + _SETTLE_S - time.perf_counter()))
        await scenario.teardown(state)
    finally:
        if channel is not None:
            await channel.close()
    window_end = min(rec.hi, rec.exhausted_at) if rec.exhausted_at else rec.hi
    return JobResult(
        latencies=np.asarray(rec.latencies, dtype=np.float64),
        extra={k: np.asarray(v, dtype=np.float64) for k, v in rec.extra.items()},
        errors=rec.errors, window_s=max(0.0, window_end - rec.lo), max_i=rec.max_i,
        exhausted=rec.exhausted_at is not None, dropped=dropped, late_s=late, first_errors=rec.first_errors,
    )
