"""accept-processes: `accept` against a gateway of GATEWAY_PROCESSES=1, then one of 2, on the run's database.

Each gateway is started for its phase (`python -m gateway serve` with GATEWAY_PROCESSES set), so both see the same
database and load generators, and each load generator spreads its calls over 8 connections (bench/channels/:
SO_REUSEPORT spreads connections, not calls); the run's own gateway stays idle meanwhile. The figures: each
one's closed-loop throughput and open-loop latency, the ratio of the two throughputs, and the CPU each gateway
process (the parent's too: it only relays) used per call over both phases, read from /proc.
"""

from __future__ import annotations

from typing import Any

from bench import procstat
from bench.procs import ChildProcess
from bench.scenario import BenchContext, Harness, Scenario, load
from bench.stack import create_token

COUNTS = (1, 2)
# accept over several connections per load generator: the kernel spreads connections, not calls, over the processes.
CHANNELS_PACKAGE = "bench.channels"
START_TIMEOUT_S = 120.0


def _workers(gateway: ChildProcess, count: int) -> list[int]:
    """The pids that serve: the process itself alone, else its children (the parent only supervises)."""
    return [gateway.pid] if count == 1 else sorted(procstat.children(gateway.pid))


class AcceptProcesses(Scenario):
    """accept with one gateway process, then with two on the same port."""

    name = "accept-processes"
    ceiling = "unary_echo"
    order = 25
    self_measured = True
    description = "accept against GATEWAY_PROCESSES=1, then 2 (SO_REUSEPORT), on the run's database"

    async def measure_self(self, ctx: BenchContext, harness: Harness) -> list[dict[str, Any]]:
        accept = load(CHANNELS_PACKAGE, "accept")
        token = await create_token(ctx.dsn)
        entries: list[dict[str, Any]] = []  # "accept, 1 process", "accept, 2 processes"
        throughput: dict[int, float] = {}
        details: list[tuple[str, str]] = []
        for count in COUNTS:
            harness.console.log(f"{self.name}: a gateway of {count} process{'es' if count > 1 else ''}")
            gateway = await harness.stack.start_gateway(ctx.dsn, {"GATEWAY_PROCESSES": str(count)},
                                                        timeout_s=START_TIMEOUT_S)
            try:
                pids = _workers(gateway, count)
                assert len(pids) == count, f"{count} processes asked for, {pids} serve"
                before = {pid: procstat.cpu_seconds(pid) or 0.0 for pid in (gateway.pid, *pids)}
                plan = {**await accept.prepare(ctx), "prefix": f"BP{ctx.run_tag}{count}-", "target": gateway.address()}
                name = f"accept, {count} process{'es' if count > 1 else ''}"
                harness.add_targets(name, ())
                # The first worker stands for the server in the phase's own figures (RSS, CPU); the table below
                # has every process.
                phases = await harness.phases(accept, CHANNELS_PACKAGE, target=gateway.address(),
                                              watched=harness.watch(pids[0]), plan=plan, dsn=ctx.dsn, token=token)
                calls = sum(int(p.get("calls") or 0) + int(p.get("errors") or 0)
                            for p in (phases.get("closed") or {}, phases.get("open") or {}))
                used = {pid: (procstat.cpu_seconds(pid) or 0.0) - before[pid] for pid in before}
            finally:
                await gateway.stop()
            throughput[count] = float(phases["closed"]["throughput"])
            # CPU from start to end of both phases, warm-ups included, over the measured calls: an upper bound.
            per_call = {pid: 1e6 * s / calls if calls else None for pid, s in used.items()}
            total = sum(used.values()) or 1.0
            shown = "; ".join(f"pid {pid}{' (parent)' if pid == gateway.pid and count > 1 else ''} "
                              f"{used[pid]:.1f} s ({100 * used[pid] / total:.0f}%), ≤{per_call[pid] or 0:,.0f} µs/call"
                              for pid in used)
            details.append((f"{count} process{'es' if count > 1 else ''}",
                            f"{throughput[count]:,.0f} calls/s closed loop; CPU over {calls:,} calls: {shown}"))
            entries.append({"name": name, "kind": "scenario", "ceiling": accept.ceiling, "server": "gateway",
                            "description": f"{accept.description}; GATEWAY_PROCESSES={count}",
                            "processes": count, "cpu_s_by_pid": {str(k): v for k, v in used.items()},
                            "cpu_us_per_call_by_pid": {str(k): v for k, v in per_call.items()}, **phases})
        ratio = throughput[2] / throughput[1] if throughput[1] else None
        # The comparison goes on the last entry (the report prints an entry's details under the table).
        entries[-1]["throughput_ratio_to_1"] = ratio
        entries[-1]["details"] = [*details, ("2 / 1", "–" if ratio is None else f"{ratio:.2f}× the throughput")]
        return entries


SCENARIO = AcceptProcesses()
