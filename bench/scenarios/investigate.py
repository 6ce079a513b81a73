"""investigate: investigators' reads over a seeded history of 10,000,000 shipments, and the evidence log's cost.

A database of its own in the run's cluster is seeded by bench/seed_history.py (quick: 200,000 shipments; the
environment's BENCH_HISTORY_SHIPMENTS overrides either): a year of shipments with their events, the leads of the
flagged ones and the evidence log over every row, timed against the 10-minute target. Then, on that database:

1. `accept` against a gateway with EVIDENCE_APPEND_S=0 (the log off: nothing appended in that process);
2. a gateway with the log on (and a signing key) is started; its appender first takes the records the first
   phase left (the backlog, timed); then an investigator with a case calls it over a real channel, one call in
   flight, each call timed: SearchShipments by a seeded person's document number, by their phone, by their name
   within a 30-day window; GetShipmentHistory of a random seeded waybill; GetInclusionProof of a random leaf
   (and its verification against the signed head, timed apart, in this process);
3. `accept` against that gateway, the same load as in 1: the ratio of the two throughputs is the log's cost;
   at the end of the phase the records not yet appended (the lag) are counted and the time to catch up taken.

Each query's p50/p95/p99 is compared with the issue's targets (search by number at most 20 ms p95, by name within
a month at most 100 ms, history 20 ms, an inclusion proof 5 ms, accept with the log on at least 0.9 of it off).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from bench.investigate_plans import plans
from bench.measure import percentiles_ms
from bench.procs import ChildProcess
from bench.scenario import SCENARIO_PACKAGE, BenchContext, Harness, Scenario, Target, load
from bench.scenarios.screen import _drop_database, _own_database, _size_label
from bench.seed_history import HistorySeedResult, seed_history
from bench.stack import create_token
from courier.v1 import investigation_pb2, investigation_pb2_grpc
from gateway.core.errors import DomainError
from gateway.core.evidence import merkle
from gateway.core.model import Role
from gateway.security.sealing import Sealer, generate_key

FULL_SHIPMENTS, QUICK_SHIPMENTS = 10_000_000, 200_000
FULL_CALLS, QUICK_CALLS = 1_000, 200  # timed calls per query, after a tenth as many for warm-up
PAGE_SIZE = 20
CASE = "京公（刑）立字〔2026〕9号"
SEED_TARGET_S = 600.0
GATEWAY_START_TIMEOUT_S = 300.0
CATCH_UP_TIMEOUT_S = 600.0
QUERIES = ("search_document", "search_phone", "search_name_month", "history", "inclusion")
_LABELS = {"search_document": "SearchShipments by document number", "search_phone": "SearchShipments by phone",
           "search_name_month": "SearchShipments by name, 30 days", "history": "GetShipmentHistory",
           "inclusion": "GetInclusionProof", "inclusion_verify": "  inclusion proof verified (client)"}

# The tables whose rows the accept path writes as evidence, by source code (scan_events: no scans here).
_SOURCES = {"E": "shipment_events", "V": "sender_verifications", "A": "audit_records"}


async def _lag(conn: asyncpg.Connection) -> int:
    """Records not yet in the log: each source's rows after its cursor, in the appender's own (ins_xid, id) order."""
    cursors = {r["source"]: r for r in await conn.fetch("SELECT source, last_xid, last_key FROM evidence_cursors")}
    total = 0
    for code, table in _SOURCES.items():
        cursor = cursors[code]
        total += await conn.fetchval(f"SELECT count(*) FROM {table} WHERE (ins_xid, id) > ($1::xid8, $2::bigint)",
                                     cursor["last_xid"], int(cursor["last_key"] or 0))
    return total


async def log_lag(dsn: str) -> int:
    """How many records (events, verifications, audit records) are not yet appended to the evidence log."""
    conn = await asyncpg.connect(dsn)
    try:
        return await _lag(conn)
    finally:
        await conn.close()


async def catch_up(dsn: str, timeout_s: float = CATCH_UP_TIMEOUT_S) -> tuple[int, float]:
    """The lag now, and how long the appender then takes to bring it to nothing (polled every 50 ms)."""
    conn = await asyncpg.connect(dsn)
    try:
        t0 = time.perf_counter()
        first = lag = await _lag(conn)
        while lag and time.perf_counter() - t0 < timeout_s:
            await asyncio.sleep(0.05)
            lag = await _lag(conn)
        if lag:
            raise RuntimeError(f"investigate: the evidence log still lacks {lag:,} records after {timeout_s:.0f} s")
        return first, time.perf_counter() - t0
    finally:
        await conn.close()


def _stamp(at: Any) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


class _Calls:
    """The investigator's requests, drawn from the seed's plan and its plaintext probes."""

    def __init__(self, stub: Any, metadata: tuple[tuple[str, str], ...], seeded: HistorySeedResult,
                 rng: random.Random) -> None:
        self.stub, self.md, self.seeded, self.rng, self.plan = stub, metadata, seeded, rng, seeded.plan
        self.returned: dict[str, list[int]] = {q: [] for q in QUERIES}
        self.head: investigation_pb2.SignedTreeHead | None = None
        self.verify_s: list[float] = []

    def _search(self, **fields: Any) -> investigation_pb2.SearchRequest:
        return investigation_pb2.SearchRequest(case_no=CASE, page_size=PAGE_SIZE, **fields)

    async def search_document(self) -> None:
        probe = self.rng.choice(self.seeded.probes)
        found = await self.stub.SearchShipments(self._search(document_number=probe.document_number),
                                                metadata=self.md, timeout=30)
        self.returned["search_document"].append(len(found.shipments))

    async def search_phone(self) -> None:
        probe = self.rng.choice(self.seeded.probes)
        found = await self.stub.SearchShipments(self._search(phone=probe.phone_e164), metadata=self.md, timeout=30)
        self.returned["search_phone"].append(len(found.shipments))

    async def search_name_month(self) -> None:
        probe = self.rng.choice(self.seeded.probes)
        start = self.plan.start + timedelta(days=self.rng.uniform(0, 330))
        found = await self.stub.SearchShipments(
            self._search(name=probe.name, from_time=_stamp(start), to_time=_stamp(start + timedelta(days=30))),
            metadata=self.md, timeout=30)
        self.returned["search_name_month"].append(len(found.shipments))

    async def history(self) -> None:
        n = self.rng.randrange(self.plan.shipments)
        found = await self.stub.GetShipmentHistory(investigation_pb2.GetShipmentHistoryRequest(
            case_no=CASE, waybill_no=self.plan.waybill(n)), metadata=self.md, timeout=30)
        self.returned["history"].append(len(found.events))

    async def inclusion(self) -> None:
        assert self.head is not None
        index = self.rng.randrange(self.head.tree_size)
        proof = await self.stub.GetInclusionProof(investigation_pb2.GetInclusionProofRequest(
            case_no=CASE, leaf_index=index, tree_size=self.head.tree_size), metadata=self.md, timeout=30)
        t0 = time.perf_counter()
        ok = merkle.verify_inclusion(proof.leaf_hash, index, proof.tree_size, list(proof.proof), self.head.root_hash)
        self.verify_s.append(time.perf_counter() - t0)
        if not ok:
            raise RuntimeError(f"investigate: the inclusion proof of leaf {index} does not verify")
        self.returned["inclusion"].append(len(proof.proof))


async def time_calls(call: Callable[[], Awaitable[None]], count: int, warmup: int) -> dict[str, Any]:
    """Times count calls made one after another (after warmup untimed ones): the latency one investigator sees."""
    errors: dict[str, int] = {}
    for _ in range(warmup):
        await call()
    seconds: list[float] = []
    t_all = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            await call()
        except grpc.aio.AioRpcError as error:
            errors[error.code().name] = errors.get(error.code().name, 0) + 1
            continue
        seconds.append(time.perf_counter() - t0)
    wall = time.perf_counter() - t_all
    values = np.array(seconds)
    return {"mode": "1 in flight", "unit": "calls", "count": len(seconds), "per_s": len(seconds) / wall,
            **percentiles_ms(values), "errors": sum(errors.values()),
            "errors_by_code": errors}


class Investigate(Scenario):
    """Seeds the history, then measures investigators' reads and accept with the evidence log off and on."""

    name = "investigate"
    ceiling = None
    server = "history-gateway"
    order = 85  # before screen, after the scenarios on the run's own gateway: it runs gateways of its own
    self_measured = True
    targets = (Target("seed.seconds", "<=", SEED_TARGET_S), Target("search_document.p95_ms", "<=", 20.0),
               Target("accept_log.throughput_ratio", ">=", 0.9))
    # The other queries' p95 targets, held by their own rows (so the targets table names each query).
    row_targets = {"search_phone": 20.0, "search_name_month": 100.0, "history": 20.0, "inclusion": 5.0}
    description = "investigators' searches, histories and proofs over a seeded year; accept with the log on/off"

    async def measure_self(self, ctx: BenchContext, harness: Harness) -> list[dict[str, Any]]:
        assert ctx.sealer is not None, "investigate needs the gateway's keys"
        n = int(os.environ.get("BENCH_HISTORY_SHIPMENTS") or (QUICK_SHIPMENTS if ctx.quick else FULL_SHIPMENTS))
        calls = QUICK_CALLS if ctx.quick else FULL_CALLS
        log = harness.console.log
        dsn, database = await _own_database(ctx.dsn, f"hist_{ctx.run_tag}")
        if database is None:
            raise RuntimeError("investigate: needs the right to create a database (the history needs a fresh one)")
        gateway: ChildProcess | None = None
        try:
            from gateway.storage.db import migrate_dsn

            await migrate_dsn(dsn)
            load_before = os.getloadavg()
            log(f"investigate: seeding a history of {n:,} shipments (target {SEED_TARGET_S:.0f} s)")
            seeded = await seed_history(dsn, n, ctx.sealer, show_progress=harness.cfg.progress,
                                        log=lambda text: log(f"investigate: {text}"))
            load_seed = os.getloadavg()
            log(f"investigate: seeded in {seeded.seconds:.1f} s; {seeded.checked_leaves} leaves checked")
            accept = load(SCENARIO_PACKAGE, "accept")
            accept_token = await create_token(dsn)
            off_name = f"accept, log off ({_size_label(n)} history)"
            on_name = f"accept, log on ({_size_label(n)} history)"
            harness.add_targets(off_name, ())
            harness.add_targets(on_name, ())

            log("investigate: accept against a gateway with EVIDENCE_APPEND_S=0")
            gateway = await harness.stack.start_gateway(dsn, {"EVIDENCE_APPEND_S": "0"},
                                                        timeout_s=GATEWAY_START_TIMEOUT_S)
            off = await self._accept(ctx, harness, accept, gateway, dsn, accept_token, "OFF")
            await gateway.stop()
            gateway = None

            log("investigate: a gateway with the log on; its appender takes the log-off phase's records first")
            signing_key = base64.b64encode(generate_key()).decode()
            gateway = await harness.stack.start_gateway(dsn, {"EVIDENCE_SIGNING_KEY": signing_key},
                                                        timeout_s=GATEWAY_START_TIMEOUT_S)
            backlog, backlog_s = await catch_up(dsn)
            log(f"investigate: backlog of {backlog:,} records appended in {backlog_s:.1f} s")
            queries, load_queries = await self._queries(gateway, dsn, seeded, calls, log, ctx.sealer)

            log("investigate: accept against the gateway with the log on")
            on = await self._accept(ctx, harness, accept, gateway, dsn, accept_token, "ON")
            lag, lag_s = await catch_up(dsn)
            log(f"investigate: {lag:,} records not yet appended at the end of the phase; caught up in {lag_s:.2f} s")
            accept_log = {
                "throughput_off": off["closed"]["throughput"], "throughput_on": on["closed"]["throughput"],
                "throughput_ratio": on["closed"]["throughput"] / off["closed"]["throughput"]
                if off["closed"]["throughput"] else None,
                "open_p99_off_ms": (off.get("open") or {}).get("p99_ms"),
                "open_p99_on_ms": (on.get("open") or {}).get("p99_ms"),
                "lag_records": lag, "catch_up_s": lag_s, "backlog_records": backlog, "backlog_s": backlog_s}
            loads = {"before_seed": load_before, "after_seed": load_seed, "during_queries": load_queries,
                     "after_accept": os.getloadavg()}
            main = self._entry(n, seeded, queries, accept_log, loads)
            for query, bound in self.row_targets.items():
                harness.add_targets(f"{self.name}.{query}", (Target("inprocess.p95_ms", "<=", bound),))
            return [main, *self._rows(queries), self._accept_entry(off_name, accept, off),
                    self._accept_entry(on_name, accept, on)]
        finally:
            if gateway is not None:
                await gateway.stop()
            await _drop_database(ctx.dsn, database)

    async def _accept(self, ctx: BenchContext, harness: Harness, accept: Scenario, gateway: ChildProcess, dsn: str,
                      token: str, tag: str) -> dict[str, Any]:
        plan = {**await accept.prepare(ctx), "prefix": f"BI{ctx.run_tag}{tag}-"}
        return await harness.phases(accept, SCENARIO_PACKAGE, target=gateway.address(),
                                    watched=harness.watch(gateway.pid), plan=plan, dsn=dsn, token=token)

    async def _queries(self, gateway: ChildProcess, dsn: str, seeded: HistorySeedResult, calls: int,
                       log: Callable[[str], None], sealer: Sealer) -> tuple[dict[str, Any], tuple[float, ...]]:
        """Each investigator query timed over a real channel to the gateway with the log on."""
        from gateway.storage.db import create_pool
        from gateway.storage.principals import PrincipalRepository

        pool = await create_pool(dsn, min_size=1, max_size=1)
        try:
            _, token = await PrincipalRepository(pool).create_token("bench-investigator",
                                                                    frozenset({Role.INVESTIGATOR}))
        finally:
            await pool.close()
        md = (("authorization", f"Bearer {token}"),)
        figures: dict[str, Any] = {}
        loads: list[float] = []
        async with grpc.aio.insecure_channel(gateway.address()) as channel:
            stub = investigation_pb2_grpc.InvestigationStub(channel)  # type: ignore[no-untyped-call]
            runner = _Calls(stub, md, seeded, random.Random(20261202))
            runner.head = await stub.GetTreeHead(investigation_pb2.GetTreeHeadRequest(case_no=CASE, fresh=True),
                                                 metadata=md, timeout=60)
            for query in QUERIES:
                log(f"investigate: {_LABELS[query]}, {calls:,} calls one at a time")
                figures[query] = await time_calls(getattr(runner, query), calls, max(10, calls // 10))
                figures[query]["returned_mean"] = float(np.mean(runner.returned[query] or [0]))
                loads.append(os.getloadavg()[0])
            verify = np.array(runner.verify_s)
            figures["inclusion_verify"] = {"mode": "in-process", "unit": "proofs", "count": len(verify),
                                           "per_s": len(verify) / float(verify.sum()) if verify.sum() else 0.0,
                                           **percentiles_ms(verify), "errors": 0}
            figures["tree_size"] = runner.head.tree_size
        probe = seeded.probes[0]
        try:  # a note for the report: a failure here must not cost the figures measured above
            analysed = await plans(dsn, sealer, document_number=probe.document_number, phone=probe.phone_e164,
                                   name=probe.name, month_start=seeded.plan.start + timedelta(days=150),
                                   waybill_no=seeded.plan.waybill(seeded.plan.shipments // 2), page_size=PAGE_SIZE)
        except (asyncpg.PostgresError, DomainError) as error:
            analysed = {"error": {"execution_ms": None, "plan": f"EXPLAIN failed: {error}"}}
        figures["plans"] = analysed
        log("investigate: EXPLAIN ANALYZE: " + ", ".join(f"{k} {v['execution_ms']} ms" for k, v in analysed.items()))
        return figures, tuple(loads)

    def _entry(self, n: int, seeded: HistorySeedResult, queries: dict[str, Any], accept_log: dict[str, Any],
               loads: dict[str, Any]) -> dict[str, Any]:
        def row(q: str) -> str:
            f = queries[q]
            what = {"history": "events", "inclusion": "proof hashes"}.get(q, "shipments")
            return (f"p50 {f['p50_ms']:.2f} ms, p95 {f['p95_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, max "
                    f"{f['max_ms']:.1f} ms over {f['count']:,} calls ({f['errors']} errors); "
                    f"{f['returned_mean']:.1f} {what} per answer on average")

        phases = ", ".join(f"{k} {v:.1f} s" for k, v in seeded.phases.items())
        lg = accept_log
        ratio = "–" if lg["throughput_ratio"] is None else f"{lg['throughput_ratio']:.3f}"
        details = [
            ("history", f"{n:,} shipments over 360 days, {seeded.events:,} events, {seeded.leads:,} leads, "
                        f"{seeded.plan.people:,} people (each sends and receives about {n // seeded.plan.people}),"
                        f" {seeded.leaves:,} evidence leaves and {seeded.nodes:,} stored nodes"),
            ("seed", f"{seeded.seconds:.1f} s (target {SEED_TARGET_S:.0f} s): {phases}; "
                     f"{seeded.checked_leaves} leaves checked against the gateway's records"),
            *((_LABELS[q], row(q)) for q in QUERIES),
            ("inclusion proof verified", f"p50 {queries['inclusion_verify']['p50_ms'] * 1000:.0f} µs, p99 "
                                         f"{queries['inclusion_verify']['p99_ms'] * 1000:.0f} µs (client side, "
                                         f"against the head of {queries['tree_size']:,} leaves)"),
            ("accept, log off / on", f"{lg['throughput_off']:,.0f} / {lg['throughput_on']:,.0f} calls/s closed loop: "
                                     f"ratio {ratio} (target ≥ 0.9); open-loop p99 "
                                     f"{lg['open_p99_off_ms'] or 0:.1f} / {lg['open_p99_on_ms'] or 0:.1f} ms"),
            ("evidence log lag", f"{lg['lag_records']:,} records not yet appended at the end of the log-on phase, "
                                 f"caught up in {lg['catch_up_s']:.2f} s; the log-off phase's backlog of "
                                 f"{lg['backlog_records']:,} records appended in {lg['backlog_s']:.1f} s"),
            *((f"EXPLAIN ANALYZE {k}", _plan_summary(v)) for k, v in queries["plans"].items()),
            ("load average (1/5/15 min)", "; ".join(f"{k} {' '.join(f'{x:.2f}' for x in v)}" if len(v) == 3
                                                    else f"{k} {' '.join(f'{x:.2f}' for x in v)} (1-min, per query)"
                                                    for k, v in loads.items())),
        ]
        return {
            "name": self.name, "label": f"investigate ({_size_label(n)}): {_LABELS['search_document']}",
            "kind": "scenario", "ceiling": None, "server": self.server, "description": self.description,
            "shipments": n, "inprocess": queries["search_document"], **queries,
            "seed": {"seconds": seeded.seconds, "phases": seeded.phases, "events": seeded.events,
                     "leads": seeded.leads, "leaves": seeded.leaves, "nodes": seeded.nodes,
                     "people": seeded.plan.people, "fk_triggers_skipped": seeded.fk_triggers_skipped},
            "accept_log": accept_log, "loadavg": loads, "details": details,
        }

    def _rows(self, queries: dict[str, Any]) -> list[dict[str, Any]]:
        """One table row per other query (their targets live on the main entry)."""
        return [{"name": f"{self.name}.{q}", "label": f"  {_LABELS[q]}", "kind": "scenario", "ceiling": None,
                 "server": self.server, "description": _LABELS[q], "inprocess": queries[q]}
                for q in (*QUERIES[1:], "inclusion_verify")]

    def _accept_entry(self, name: str, accept: Scenario, phases: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "kind": "scenario", "ceiling": accept.ceiling, "server": self.server,
                "description": f"{accept.description}, on the history's database", **phases}


def _plan_summary(analysed: dict[str, Any]) -> str:
    """The execution time and the plan's node lines (without their figures), for the details table."""
    nodes = [line.strip().split("  (")[0] for line in analysed["plan"].splitlines()
             if "->" in line or line and not line.startswith(" ")][:8]
    return f"{analysed['execution_ms']} ms: " + " / ".join(n for n in nodes if not n.startswith(("Planning",
                                                                                                  "Execution")))


SCENARIO = Investigate()
