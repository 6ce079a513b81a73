"""One phase of one scenario: the load generators run it while the harness watches the server's process."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench import procstat
from bench.loadgen import Job, JobResult
from bench.pool import WorkerPool
from bench.scenario import Scenario

_START_DELAY_S = 0.5  # lets every worker set up (channels, pools) before the common start


@dataclass(frozen=True)
class Watched:
    """The processes whose CPU a phase reports: the server's, PostgreSQL's (when local), the load generators',
    the helpers' (authority simulator), and every other process of the run (to tell what else used the machine)."""

    server_pid: int | None
    postmaster_pid: int | None
    loadgen_pids: tuple[int, ...] = ()
    aux_pids: tuple[int, ...] = ()
    own_pids: tuple[int, ...] = ()  # every process of the run but PostgreSQL's, the ones above included
    server_pids: tuple[int, ...] = ()  # every process serving (several gateway processes), each's CPU reported


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def percentiles_ms(values: np.ndarray) -> dict[str, float | None]:
    """p50/p95/p99/mean/max in milliseconds (None when nothing was measured)."""
    if values.size == 0:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None, "max_ms": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99]) * 1000
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
            "mean_ms": float(values.mean() * 1000), "max_ms": float(values.max() * 1000)}


def _sum_cpu(pids: tuple[int, ...]) -> float | None:
    values = [procstat.cpu_seconds(pid) for pid in pids]
    return None if not values or None in values else sum(v for v in values if v is not None)


async def _cpu_at(when: float, w: Watched) -> dict[str, float | None]:
    """CPU seconds so far of each watched group, and of the whole machine, read at `when`."""
    await asyncio.sleep(max(0.0, when - time.time()))
    pg = procstat.tree_cpu_seconds(w.postmaster_pid) if w.postmaster_pid else None
    own = _sum_cpu(w.own_pids)
    return {"server": procstat.cpu_seconds(w.server_pid) if w.server_pid else None, "pg": pg,
            "loadgen": _sum_cpu(w.loadgen_pids), "aux": _sum_cpu(w.aux_pids),
            "ours": None if own is None or pg is None else own + pg, "machine": procstat.machine_busy_seconds(),
            **{f"pid:{pid}": procstat.cpu_seconds(pid) for pid in w.server_pids},
            **({"servers": _sum_cpu(w.server_pids)} if w.server_pids else {})}


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _cpu_figures(before: dict[str, float | None], after: dict[str, float | None], calls: int,
                 seconds: float) -> dict[str, Any]:
    """CPU per call of each group, and how many cores processes outside the run kept busy meanwhile."""
    d = {k: _delta(before[k], after[k]) for k in before}
    machine, ours = d["machine"], d["ours"]
    foreign = None if machine is None or ours is None or seconds <= 0 else max(0.0, machine - ours) / seconds
    by_pid = {k.removeprefix("pid:"): _per_call_ms(v, calls) for k, v in d.items() if k.startswith("pid:")}
    servers = {"servers_cpu_ms_per_call": _per_call_ms(d["servers"], calls),
               "server_cpu_ms_per_call_by_pid": by_pid} if "servers" in d else {}
    return {**servers, "server_cpu_ms_per_call": _per_call_ms(d["server"], calls),
            "pg_cpu_ms_per_call": _per_call_ms(d["pg"], calls),
            "loadgen_cpu_ms_per_call": _per_call_ms(d["loadgen"], calls),
            "aux_cpu_ms_per_call": _per_call_ms(d["aux"], calls),
            "foreign_cores": foreign}


@dataclass
class PhaseSpec:
    """What to run: closed loop at a concurrency, or open loop at a rate."""

    mode: str
    concurrency: int = 0
    rate: float = 0.0


@dataclass
class PhaseRunner:
    """Runs phases on the load generators with the run's timings, watching the server's process."""

    pool: WorkerPool
    dsn: str
    token: str
    warmup_s: float
    duration_s: float
    timeout_s: float

    async def run(self, scenario: Scenario, package: str, spec: PhaseSpec, *, target: str, plan: dict[str, Any],
                  base: int, watched: Watched) -> dict[str, Any]:
        """Runs one phase on every load generator and summarizes it."""
        size, warmup, duration = self.pool.size, self.warmup_s, self.duration_s
        start_at = time.time() + _START_DELAY_S
        active = min(scenario.workers or size, size)  # e.g. one stream's figure comes from one process
        lanes = _split(spec.concurrency, active) if spec.mode == "closed" else [0] * active
        lanes += [0] * (size - active)
        jobs = [Job(package, scenario.name, target, self.dsn, self.token, plan, spec.mode, lanes[k],
                    spec.rate / active if k < active else 0.0, warmup, duration, start_at, k, size, base,
                    self.timeout_s)
                for k in range(size)]
        server_pid = watched.server_pid if scenario.server != "postgres" else None
        sampler = procstat.Sampler(server_pid)
        sampler.start()
        cpu_tasks = [asyncio.create_task(_cpu_at(start_at + offset, watched)) for offset in (warmup, warmup + duration)]
        try:
            results = await self.pool.run(jobs, _START_DELAY_S + warmup + duration + 3 * self.timeout_s + 60)
            before, after = await asyncio.gather(*cpu_tasks)
        finally:
            for task in cpu_tasks:
                task.cancel()
            rss_max = await sampler.stop()
        summary = summarize(results, scenario, spec)
        calls = summary["calls"] + summary["errors"]
        summary.update(
            **_cpu_figures(before, after, calls, duration),
            rss_max_mb=rss_max, vm_hwm_mb=procstat.hwm_mb(server_pid) if server_pid else None,
            next_base=max([base - 1, *(r.max_i for r in results)]) + 1,
        )
        return summary


def _per_call_ms(seconds: float | None, calls: int) -> float | None:
    return None if seconds is None or not calls else seconds / calls * 1000


def summarize(results: list[JobResult], scenario: Scenario, spec: PhaseSpec) -> dict[str, Any]:
    """Throughput, latency percentiles, sub-latencies and errors over every worker."""
    latencies = np.concatenate([r.latencies for r in results]) if results else np.empty(0)
    throughput = sum(r.latencies.size / r.window_s for r in results if r.window_s > 0)
    errors: dict[str, int] = {}
    for r in results:
        for code, n in r.errors.items():
            errors[code] = errors.get(code, 0) + n
    extra_keys = sorted({k for r in results for k in r.extra})
    return {
        "mode": spec.mode, "concurrency": spec.concurrency if spec.mode == "closed" else None,
        "target_rate": spec.rate if spec.mode == "open" else None,
        "window_s": max((r.window_s for r in results), default=0.0),
        "calls": int(latencies.size), "throughput": throughput,
        "units_per_s": throughput * scenario.units_per_call, "unit": scenario.unit,
        **percentiles_ms(latencies),
        "errors": sum(errors.values()), "errors_by_code": errors,
        "sub_latencies": {k: percentiles_ms(np.concatenate([r.extra.get(k, np.empty(0)) for r in results]))
                          for k in extra_keys},
        "exhausted": any(r.exhausted for r in results), "dropped": sum(r.dropped for r in results),
        "late_start_s": max((r.late_s for r in results), default=0.0),
        "first_errors": [e for r in results for e in r.first_errors][:5],
    }
