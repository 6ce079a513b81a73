"""One benchmark run: start the system, seed it, measure the ceilings, then each scenario against its ceiling."""

from __future__ import annotations

import os
import secrets
import string
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from bench import report
from bench.config import Config
from bench.measure import PhaseRunner, PhaseSpec, Watched
from bench.pool import WorkerPool
from bench.scenario import CEILING_PACKAGE, SCENARIO_PACKAGE, BenchContext, Scenario, Target, discover
from bench.seed import seed
from bench.stack import Stack, running_stack


def _tag() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(5))


def _select(package: str, names: list[str]) -> list[Scenario]:
    found = discover(package)
    if not names:
        return sorted(found.values(), key=lambda s: (s.order, s.name))
    unknown = [n for n in names if n not in found]
    if unknown:
        raise SystemExit(f"bench: unknown in {package}: {', '.join(unknown)} (known: {', '.join(found)})")
    return [found[n] for n in names]


class Run:
    """The state of one run: the system, the load generators, the results so far."""

    def __init__(self, cfg: Config, stack: Stack, pool: WorkerPool, console: Console) -> None:
        self.cfg, self.stack, self.console = cfg, stack, console
        self.runner = PhaseRunner(pool, stack.dsn, stack.token, cfg.warmup_s, cfg.duration_s, cfg.timeout_s)
        self.ctx = BenchContext(stack.dsn, stack.gateway_target, stack.echo_target, stack.token, None, _tag(),
                                cfg.quick, stack.sealer)
        self.base = 0
        self.targets: dict[str, tuple[Target, ...]] = {}  # by result entry name

    def _watched(self, scenario: Scenario) -> tuple[str, Watched]:
        target, pid = {"gateway": (self.stack.gateway_target, self.stack.gateway.pid),
                       "echo": (self.stack.echo_target, self.stack.echo.pid),
                       "floor": (self.stack.floor_target, self.stack.floor.pid),
                       "postgres": ("", None)}[scenario.server]
        st, loadgen = self.stack, tuple(self.runner.pool.pids)
        own = (os.getpid(), st.gateway.pid, st.echo.pid, st.floor.pid, st.simulator.pid, *loadgen)
        aux = (st.simulator.pid,) if scenario.server in ("gateway", "floor") else ()
        return target, Watched(pid, st.postmaster_pid, loadgen, aux, own)

    async def measure(self, scenario: Scenario, package: str, kind: str) -> dict[str, Any]:
        """Closed loop for the maximum, then (for scenarios) open loop at a fraction of it."""
        target, watched = self._watched(scenario)
        self.targets[scenario.name] = scenario.targets
        plan = await scenario.prepare(self.ctx)
        entry: dict[str, Any] = {"name": scenario.name, "kind": kind, "ceiling": scenario.ceiling,
                                 "floor": scenario.floor, "server": scenario.server,
                                 "description": scenario.description}
        try:
            entry.update(await self._closed_open(scenario, package, target, watched, plan, self.runner))
        finally:
            await scenario.cleanup(self.ctx)
        return entry

    async def measure_scenario(self, scenario: Scenario) -> list[dict[str, Any]]:
        """A scenario's result entries: one from the load generators' phases, or what it measured itself."""
        if not scenario.self_measured:
            return [await self.measure(scenario, SCENARIO_PACKAGE, "scenario")]
        self.targets[scenario.name] = scenario.targets
        self.console.log(f"{scenario.name}: measured in-process")
        return await scenario.measure_self(self.ctx, self)

    async def phases(self, scenario: Scenario, package: str, *, target: str, watched: Watched,
                     plan: dict[str, Any], dsn: str, token: str) -> dict[str, Any]:
        """The closed and open phases of a scenario against another server (e.g. a second gateway)."""
        runner = PhaseRunner(self.runner.pool, dsn, token, self.cfg.warmup_s, self.cfg.duration_s,
                             self.cfg.timeout_s)
        return await self._closed_open(scenario, package, target, watched, plan, runner)

    def add_targets(self, name: str, targets: tuple[Target, ...]) -> None:
        """Targets for an extra result entry."""
        self.targets[name] = targets

    def watch(self, server_pid: int, server_pids: tuple[int, ...] = ()) -> Watched:
        """What a phase against another gateway process watches: it, PostgreSQL, the load generators, the helpers
        (and each of server_pids, when several processes serve)."""
        st, loadgen = self.stack, tuple(self.runner.pool.pids)
        own = (os.getpid(), st.gateway.pid, st.echo.pid, st.floor.pid, st.simulator.pid, server_pid, *server_pids,
               *loadgen)
        return Watched(server_pid, st.postmaster_pid, loadgen, (st.simulator.pid,), tuple(dict.fromkeys(own)),
                       server_pids)

    async def _closed_open(self, scenario: Scenario, package: str, target: str, watched: Watched,
                           plan: dict[str, Any], runner: PhaseRunner) -> dict[str, Any]:
        self.base = 0  # call indexes restart per scenario and are never reused across its phases
        out: dict[str, Any] = {}
        concurrency = scenario.concurrency or self.cfg.concurrency
        self.console.log(f"{scenario.name}: closed loop, {concurrency} in flight")
        out["closed"] = await self._phase(runner, scenario, package, PhaseSpec("closed", concurrency=concurrency),
                                          target, plan, watched)
        rate = out["closed"]["throughput"] * self.cfg.open_fraction
        if scenario.open_loop and rate > 0:
            self.console.log(f"{scenario.name}: open loop at {rate:,.0f}/s")
            out["open"] = await self._phase(runner, scenario, package, PhaseSpec("open", rate=rate), target, plan,
                                            watched)
        return out

    async def _phase(self, runner: PhaseRunner, scenario: Scenario, package: str, spec: PhaseSpec, target: str,
                     plan: dict[str, Any], watched: Watched) -> dict[str, Any]:
        result = await runner.run(scenario, package, spec, target=target, plan=plan, base=self.base,
                                  watched=watched)
        self.base = result.pop("next_base")
        return result

    async def remeasure_ceilings(self, entries: list[dict[str, Any]], ceilings: list[Scenario],
                                 scenarios: list[Scenario]) -> None:
        """Measures the ceilings the scenarios are compared with once more, after them, and keeps the higher.

        A ceiling is the most the machine gives; on a shared machine one short trial can land on a busy
        moment, and bracketing the scenarios also shows drift. Both trials stay in the JSON.
        """
        used = {s.ceiling for s in scenarios} | {s.floor for s in scenarios}
        for ceiling in (c for c in ceilings if c.name in used):
            entry = next(e for e in entries if e["name"] == ceiling.name)
            again = await self.measure(ceiling, CEILING_PACKAGE, "ceiling")
            entry["trials"] = [entry["closed"], again["closed"]]
            entry["closed"] = max(entry["trials"], key=lambda phase: phase["throughput"])

    async def seed(self) -> dict[str, Any]:
        """Seeds the configured number of shipments with the gateway's keys."""
        self.console.log(f"seeding {self.cfg.seed_shipments:,} shipments")
        result = await seed(self.stack.dsn, self.cfg.seed_shipments, self.stack.sealer,
                            show_progress=self.cfg.progress)
        self.ctx.seed = result.plan
        return {"shipments": self.cfg.seed_shipments, "events": result.events, "seconds": round(result.seconds, 2),
                "prefix": result.plan.prefix, "shipments_per_s": round(self.cfg.seed_shipments / result.seconds)}


async def run_bench(cfg: Config, console: Console | None = None) -> dict[str, Any]:
    """The whole run; prints the table, writes the JSON and returns what it wrote."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # logs and CI: wide enough that the table's columns are not cut
            console = Console(width=220)
    ceilings = [] if cfg.skip_ceilings else _select(CEILING_PACKAGE, cfg.ceilings)
    scenarios = _select(SCENARIO_PACKAGE, cfg.scenarios)
    needing = [s.name for s in scenarios if s.needs_seed]
    if needing and not cfg.seed_shipments:
        raise SystemExit(f"bench: {', '.join(needing)} need seeded shipments: --seed-shipments must be > 0")
    started, t0, load_before = datetime.now(UTC), time.perf_counter(), os.getloadavg()
    async with running_stack(cfg.database_url, cfg.gateway_env) as stack:
        own = " (own cluster, fsync on)" if stack.managed_cluster else ""
        console.log(f"gateway on {stack.gateway_target} (pid {stack.gateway.pid}), echo on {stack.echo_target}, "
                    f"floor on {stack.floor_target}, PostgreSQL {stack.server_version}{own}")
        pool = WorkerPool(cfg.workers)
        await pool.start()
        try:
            run = Run(cfg, stack, pool, console)
            # Seeded whenever asked, not only for the scenarios that read it: the gateway is measured against
            # a database that holds realistic volumes (index depth, cache pressure), not an empty one.
            seeded = await run.seed() if cfg.seed_shipments else None
            entries = [await run.measure(c, CEILING_PACKAGE, "ceiling") for c in ceilings]
            for scenario in scenarios:
                entries += await run.measure_scenario(scenario)
            await run.remeasure_ceilings(entries, ceilings, scenarios)
        finally:
            pool.stop()
        facts = report.machine_facts(stack.server_version, stack.managed_cluster, load_before)
        # A shared machine: how busy it was at the end, beside how busy at the start, says how far to trust it.
        facts["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        hwm = report.final_hwm(stack.gateway.pid)
    doc = report.document(cfg, facts, seeded, entries, run.targets, started, time.perf_counter() - t0, hwm)
    report.write(doc, cfg.out)
    report.print_table(doc, console)
    console.print(f"results: {cfg.out}")
    return doc
