"""accept-processes: `verify` and `accept` against a gateway of GATEWAY_PROCESSES=1, then one of 2, on the run's
database, with each process's CPU per call.

Each gateway is started for its phases (`python -m gateway serve` with GATEWAY_PROCESSES set), so both see the same
database and load generators, and each load generator spreads its calls over 8 connections (bench/channels/:
SO_REUSEPORT spreads connections, not calls); the run's own gateway stays idle meanwhile. The figures: each
scenario's closed-loop throughput and open-loop latency per gateway, the ratio of the two throughputs, and the CPU
per call of every gateway process (the parent's too: it only supervises) inside each phase's window, read from
/proc; their sum is what the report sets against the floor.
"""

from __future__ import annotations

from typing import Any

from bench import procstat
from bench.procs import ChildProcess
from bench.scenario import BenchContext, Harness, Scenario, load
from bench.stack import create_token

COUNTS = (1, 2)
SCENARIOS = ("verify", "accept")
# The scenarios over several connections per load generator: the kernel spreads connections, not calls.
CHANNELS_PACKAGE = "bench.channels"
START_TIMEOUT_S = 120.0


def _workers(gateway: ChildProcess, count: int) -> list[int]:
    """The pids that serve: the process itself alone, else its children (the parent only supervises)."""
    return [gateway.pid] if count == 1 else sorted(procstat.children(gateway.pid))


def _processes(count: int) -> str:
    return f"{count} process{'es' if count > 1 else ''}"


def _cpu_line(phase: dict[str, Any], parent: int, count: int) -> str:
    """Each process's CPU per call in the closed-loop window, and their sum."""
    by_pid = phase.get("server_cpu_ms_per_call_by_pid") or {}
    parts = [f"pid {pid}{' (parent)' if int(pid) == parent and count > 1 else ''} {ms * 1000:,.0f} µs"
             for pid, ms in by_pid.items() if ms is not None]
    total = phase.get("servers_cpu_ms_per_call")
    return "; ".join(parts) + ("" if total is None else f"; together {total * 1000:,.0f} µs/call")


class AcceptProcesses(Scenario):
    """verify and accept with one gateway process, then with two on the same port."""

    name = "accept-processes"
    ceiling = "unary_echo"
    order = 25
    self_measured = True
    description = "verify and accept against GATEWAY_PROCESSES=1, then 2 (SO_REUSEPORT), on the run's database"

    async def measure_self(self, ctx: BenchContext, harness: Harness) -> list[dict[str, Any]]:
        token = await create_token(ctx.dsn)
        entries: list[dict[str, Any]] = []  # "verify, 1 process", "accept, 1 process", "verify, 2 processes", ...
        throughput: dict[tuple[str, int], float] = {}
        details: list[tuple[str, str]] = []
        for count in COUNTS:
            harness.console.log(f"{self.name}: a gateway of {_processes(count)}")
            gateway = await harness.stack.start_gateway(ctx.dsn, {"GATEWAY_PROCESSES": str(count)},
                                                        timeout_s=START_TIMEOUT_S)
            try:
                pids = _workers(gateway, count)
                assert len(pids) == count, f"{count} processes asked for, {pids} serve"
                serving = tuple(dict.fromkeys((gateway.pid, *pids)))  # the parent too, when it is not the worker
                for scenario_name in SCENARIOS:
                    scenario = load(CHANNELS_PACKAGE, scenario_name)
                    plan = {**await scenario.prepare(ctx), "prefix": f"BP{ctx.run_tag}{count}-",
                            "target": gateway.address()}
                    name = f"{scenario_name}, {_processes(count)}"
                    harness.add_targets(name, ())
                    # The first worker stands for the server in the phase's own RSS column; the CPU is every one's.
                    phases = await harness.phases(scenario, CHANNELS_PACKAGE, target=gateway.address(),
                                                  watched=harness.watch(pids[0], serving), plan=plan, dsn=ctx.dsn,
                                                  token=token)
                    throughput[(scenario_name, count)] = float(phases["closed"]["throughput"])
                    details.append((name, f"{throughput[(scenario_name, count)]:,.0f} calls/s closed loop; CPU per "
                                          f"call: {_cpu_line(phases['closed'], gateway.pid, count)}"))
                    entries.append({"name": name, "kind": "scenario", "ceiling": scenario.ceiling,
                                    "floor": scenario.floor, "server": "gateway",
                                    "description": f"{scenario.description}; GATEWAY_PROCESSES={count}",
                                    "processes": count, **phases})
            finally:
                await gateway.stop()
        for scenario_name in SCENARIOS:
            one, two = throughput.get((scenario_name, 1)), throughput.get((scenario_name, 2))
            ratio = two / one if one and two else None
            # The comparison goes on the 2-process entry (the report prints an entry's details under the table).
            next(e for e in entries if e["name"] == f"{scenario_name}, 2 processes")["throughput_ratio_to_1"] = ratio
            details.append((f"{scenario_name}: 2 / 1", "–" if ratio is None else f"{ratio:.2f}× the throughput"))
        entries[-1]["details"] = details
        entries[-1]["details_title"] = f"{self.name}: each process's CPU per call, closed loop"
        return entries


SCENARIO = AcceptProcesses()
