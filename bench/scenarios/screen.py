"""screen: the counterfeit blocklist at a million entries; screening per consignment, load time, memory.

Screening is a function call inside the gateway, so its figure is timed in-process, not through gRPC: a worker
process loads the list from the database (BlocklistRepository.load_active), builds the index
(BlocklistIndex.build) and times BlocklistIndex.screen on synthetic consignments, each with perf_counter_ns. The
load time is a new gateway process's, from its start to "gateway listening" (it loads and builds the whole list
first). All of it runs on a database of its own in the run's cluster, with a gateway of its own, so the run's
gateway and the other scenarios' figures never carry the list. There is no ceiling to divide by (a bare dict
look-up per consignment would say nothing): the figures are compared with the targets instead.

The same worker then screens the labelled quality cases (bench/quality.py: names, goods, parties, photographs) with
their entries added to the seeded list, so precision is measured against a million distractors; recall and
precision per indicator kind are printed as a table, kept under "quality" in the results and held to
quality.BOUNDS as targets.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from rich.table import Table

from bench import procstat, quality
from bench.procs import ChildProcess
from bench.scenario import SCENARIO_PACKAGE, BenchContext, Harness, Scenario, Target, load
from bench.screenwork import ConsignmentMaker, bench_parcels, run_in_worker
from bench.seed_blocklist import BlocklistSeedResult, bench_reserved, seed_blocklist
from bench.stack import create_token

FULL_ENTRIES, QUICK_ENTRIES = 1_000_000, 50_000
CONSIGNMENTS, WARMUP = 5_000, 1_000
GATEWAY_START_TIMEOUT_S = 300.0
WORKER_TIMEOUT_S = 900.0
WITH_ACCEPT = True  # also run `accept` against the gateway holding the list (about a minute in full mode)
# Labelled entries are numbered from here, far above any seeded id.
QUALITY_BASE = 9_000_000_000
_LOADED = re.compile(r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO gateway\.screening: "
                     r"blocklist loaded: (?P<entries>\d+) entries, version (?P<version>\d+)")


def _size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _with_database(dsn: str, database: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


async def _own_database(dsn: str, tag: str) -> tuple[str, str | None]:
    """A fresh database in the run's cluster (its DSN and name), or the run's own when creating one is refused."""
    name = f"courier_bench_screen_{tag.lower()}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    except asyncpg.InsufficientPrivilegeError:
        return dsn, None
    finally:
        await conn.close()
    return _with_database(dsn, name), name


async def _drop_database(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


async def _loaded_line(gateway: ChildProcess, wait_s: float = 3.0) -> re.Match[str] | None:
    """The gateway's "blocklist loaded" log line (stderr is drained apart from stdout: it may lag a little)."""
    deadline = time.monotonic() + wait_s
    while True:
        for line in list(gateway.tail):
            if found := _LOADED.match(line):
                return found
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.05)


class Screen(Scenario):
    """Seeds the list, starts a gateway on it, times screening in a worker, then `accept` against that gateway."""

    name = "screen"
    ceiling = None
    server = "blocklist-gateway"
    order = 90  # last: it runs a second gateway, so nothing else should be measured meanwhile
    self_measured = True
    targets = (Target("inprocess.p50_us", "<=", 200.0), Target("inprocess.p99_us", "<=", 1000.0),
               Target("load.gateway_ready_s", "<=", 20.0), Target("gateway.vm_hwm_mb", "<=", 1536.0),
               *(Target(f"quality.{kind.value}.{measure}", ">=", bound) for kind, bounds in quality.BOUNDS.items()
                 for measure, bound in zip(("recall", "precision"), bounds, strict=True)))
    description = "BlocklistIndex.screen per consignment in-process; list load time and memory of a new gateway"

    async def measure_self(self, ctx: BenchContext, harness: Harness) -> list[dict[str, Any]]:
        assert ctx.sealer is not None, "screen needs the gateway's keys"
        n = QUICK_ENTRIES if ctx.quick else FULL_ENTRIES
        log = harness.console.log
        dsn, database = await _own_database(ctx.dsn, ctx.run_tag)
        if database is None:
            log("screen: no right to create a database: seeding the run's own, whose gateway will load it too")
        gateway: ChildProcess | None = None
        try:
            if database is not None:
                from gateway.storage.db import migrate_dsn

                await migrate_dsn(dsn)
            log(f"screen: seeding {n:,} blocklist entries")
            seeded = await seed_blocklist(dsn, n, ctx.sealer, reserved=bench_reserved(),
                                          show_progress=harness.cfg.progress)
            log("screen: starting a gateway on the list (timed to 'gateway listening')")
            gateway, start = await self._start_gateway(harness, dsn)
            log(f"screen: gateway ready in {start['gateway_ready_s']:.1f} s; worker: load, build, screen")
            plan = self._plan(ctx, seeded, dsn)
            worker = await run_in_worker(plan, WORKER_TIMEOUT_S)
            entries = [self._entry(n, seeded, start, worker)]
            harness.console.print(quality_table(worker, f"screening quality against {n:,} listed entries"))
            if WITH_ACCEPT:
                entries.append(await self._accept(ctx, harness, gateway, dsn, n, worker))
            entries[0]["gateway"]["vm_hwm_mb"] = procstat.hwm_mb(gateway.pid)
            entries[0]["details"].append(("gateway VmHWM at the end", f"{entries[0]['gateway']['vm_hwm_mb']:,.0f} MB"
                                          + (" (after accept)" if WITH_ACCEPT else "")))
            return entries
        finally:
            if gateway is not None:
                await gateway.stop()
            if database is not None:
                await _drop_database(ctx.dsn, database)

    async def _start_gateway(self, harness: Harness, dsn: str) -> tuple[ChildProcess, dict[str, Any]]:
        """A new gateway on the seeded database: how long it takes to serve, and its memory once it does."""
        wall0, t0 = time.time(), time.perf_counter()
        gateway = await harness.stack.start_gateway(dsn, {"LOG_LEVEL": "INFO"}, timeout_s=GATEWAY_START_TIMEOUT_S)
        ready = time.perf_counter() - t0
        figures: dict[str, Any] = {"gateway_ready_s": ready, "vm_rss_mb": procstat.rss_mb(gateway.pid),
                                   "vm_hwm_mb": procstat.hwm_mb(gateway.pid), "loaded_line": None,
                                   "gateway_list_loaded_s": None}
        found = await _loaded_line(gateway)
        if found is not None:
            at = datetime.strptime(found["at"], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time, as logged
            figures.update(loaded_line=found.group(0).split(": ", 1)[1], gateway_list_loaded_s=at - wall0,
                           gateway_entries=int(found["entries"]))
        return gateway, figures

    def _plan(self, ctx: BenchContext, seeded: BlocklistSeedResult, dsn: str) -> dict[str, Any]:
        """Consignments for the worker, made here where the keys are (listed numbers become the gateway's keys)."""
        assert ctx.sealer is not None
        maker = ConsignmentMaker(seeded.probes, ctx.sealer, random.Random(20241111))
        return {"dsn": dsn, "warmup": [maker.consignment() for _ in range(WARMUP)],
                "consignments": [maker.consignment() for _ in range(CONSIGNMENTS)],
                "bench_parcels": bench_parcels(ctx.sealer),
                "quality": quality.load(ctx.sealer.blind_index, base=QUALITY_BASE)}

    def _entry(self, n: int, seeded: BlocklistSeedResult, start: dict[str, Any],
               worker: dict[str, Any]) -> dict[str, Any]:
        def us(key: str) -> float:
            return float(worker[key])

        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(seeded.kinds.items(), key=lambda kv: -kv[1]))
        outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(worker["outcomes"].items()))
        by_kind = ", ".join(f"{k} {v:,}" for k, v in worker["hits_by_kind"].items())
        loaded = (f"; 'blocklist loaded' logged at +{start['gateway_list_loaded_s']:.1f} s"
                  if start["gateway_list_loaded_s"] is not None else "; no 'blocklist loaded' line seen")
        clean = worker["bench_parcel_hits"]
        details = [
            ("entries", f"{seeded.entries:,} active, version {seeded.version}: {kinds}"),
            ("seed (COPY)", f"{seeded.seconds:.1f} s, {seeded.entries / seeded.seconds:,.0f} entries/s "
                            f"(generating the rows {seeded.generate_seconds:.1f} s of it)"),
            ("gateway start → listening", f"{start['gateway_ready_s']:.1f} s{loaded}"),
            ("gateway after loading", f"VmRSS {start['vm_rss_mb']:,.0f} MB, VmHWM {start['vm_hwm_mb']:,.0f} MB"),
            ("worker load_active", f"{worker['load_active_s']:.1f} s ({worker['entries']:,} entries)"),
            ("worker BlocklistIndex.build", f"{worker['build_s']:.1f} s"),
            ("worker full gc.collect()", f"{worker['full_gc_s']:.2f} s over {worker['gc_tracked_objects']:,} tracked "
                                         "objects (a pause whenever the collector walks the oldest generation)"),
            ("worker RSS", f"{worker['rss_start_mb']:,.0f} MB at start, {worker['rss_loaded_mb']:,.0f} MB loaded, "
                           f"{worker['rss_built_mb']:,.0f} MB built (VmHWM {worker['hwm_built_mb']:,.0f} MB)"),
            ("screen()", f"{worker['consignments']:,} consignments after {worker['warmup']:,} warm-up: "
                         f"p50 {us('p50_us'):.0f} µs, p95 {us('p95_us'):.0f} µs, p99 {us('p99_us'):.0f} µs, "
                         f"max {us('max_us'):,.0f} µs, mean {us('mean_us'):.0f} µs"),
            ("hits", f"{worker['hits_per_consignment']:.2f} per consignment, "
                     f"{worker['with_hits_share']:.0%} of consignments hit; outcomes: {outcomes}"),
            ("hits by kind", by_kind),
            ("bench parcels", "screen clean" if not any(clean) else f"HIT {clean}: accept would be held"),
            *quality_details(worker),
        ]
        return {
            "name": self.name, "label": f"screen ({_size_label(n)} entries)", "kind": "scenario", "ceiling": None,
            "server": self.server, "description": self.description, "entries": n,
            "inprocess": {"unit": "consignments", "count": worker["consignments"], "per_s": worker["screens_per_s"],
                          **{f"{p}_ms": us(f"{p}_us") / 1000 for p in ("p50", "p95", "p99")},
                          **{k: worker[k] for k in ("p50_us", "p95_us", "p99_us", "max_us", "mean_us")},
                          "hits_per_consignment": worker["hits_per_consignment"], "rss_mb": start["vm_rss_mb"]},
            "load": {k: start[k] for k in ("gateway_ready_s", "gateway_list_loaded_s", "loaded_line")}
            | {"worker_load_active_s": worker["load_active_s"], "worker_build_s": worker["build_s"],
               "worker_full_gc_s": worker["full_gc_s"]},
            "gateway": {"vm_rss_mb": start["vm_rss_mb"], "vm_hwm_after_load_mb": start["vm_hwm_mb"]},
            "worker": worker, "seed": {"seconds": seeded.seconds, "generate_seconds": seeded.generate_seconds,
                                       "kinds": seeded.kinds, "version": seeded.version},
            "quality": worker["quality"],
            "details": details,
        }

    async def _accept(self, ctx: BenchContext, harness: Harness, gateway: ChildProcess, dsn: str, n: int,
                      worker: dict[str, Any]) -> dict[str, Any]:
        """The accept scenario against the gateway that holds the list: what screening costs on the real path."""
        accept = load(SCENARIO_PACKAGE, "accept")
        name = f"accept+{_size_label(n)}"
        if any(worker["bench_parcel_hits"]):
            harness.console.log(f"screen: the bench's parcels hit the list; {name} would only measure holds")
        # Issue 14 holds the p99 with the list loaded; its CPU against the floor is shown, not a target.
        harness.add_targets(name, tuple(t for t in accept.targets if t.metric != "floor_cpu_ratio"))
        plan = {**await accept.prepare(ctx), "prefix": f"BL{ctx.run_tag}-"}
        phases = await harness.phases(accept, SCENARIO_PACKAGE, target=gateway.address(),
                                      watched=harness.watch(gateway.pid), plan=plan, dsn=dsn,
                                      token=await create_token(dsn))
        if phases["closed"]["errors"]:  # the gateway logged why (its log never carries numbers): show the end of it
            harness.console.log(f"{name}: {phases['closed']['errors']:,} errors; the gateway's last lines:\n"
                                + "\n".join(list(gateway.tail)[-12:]))
        return {"name": name, "kind": "scenario", "ceiling": accept.ceiling, "floor": accept.floor,
                "server": self.server, "entries": n,
                "description": f"{accept.description}, against a gateway holding {n:,} blocklist entries",
                **phases}


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def quality_details(worker: dict[str, Any]) -> list[tuple[str, str]]:
    """The quality figures as rows of the scenario's details table (the report prints those)."""
    rows = [("quality cases", f"{worker['quality_cases']:,} labelled cases screened in {worker['quality_s']:.2f} s; "
                              f"{worker['quality_notes_total']} misses or wrong hits (the first in the JSON)")]
    for kind, row in worker["quality"].items():
        rows.append((f"quality {kind}", f"recall {_share(row['recall'])} ({row['found']}/{row['expected']}), "
                                        f"precision {_share(row['precision'])} ({row['false']} wrong, "
                                        f"{row['same_listing']} of the same listing)"))
    return rows


def quality_table(worker: dict[str, Any], title: str) -> Table:
    """Recall and precision per indicator kind, with the bounds they are held to."""
    table = Table(title=title)
    for name in ("kind", "expected", "found", "wrong", "same listing", "recall", "precision", "bounds"):
        table.add_column(name, justify="left" if name == "kind" else "right")
    bounds = {kind.value: bound for kind, bound in quality.BOUNDS.items()}
    for kind, row in worker["quality"].items():
        recall, precision = bounds.get(kind, (None, None))
        table.add_row(kind, str(row["expected"]), str(row["found"]), str(row["false"]), str(row["same_listing"]),
                      _share(row["recall"]), _share(row["precision"]), f"≥ {recall:g} / ≥ {precision:g}")
    return table


SCENARIO = Screen()
