"""Seeds shipments and their events fast with COPY: `python -m bench.seed --shipments N [--dsn ...]`.

`--blocklist N` seeds N counterfeit-blocklist entries instead (or as well): see bench.seed_blocklist.
`--history N` seeds N shipments over a year with their events, leads and the evidence log over them, into a fresh
database, for investigators' searches: see bench.seed_history.

Waybills are `<prefix><n:010d>`; the state of shipment n follows a fixed cycle (7 in 10 ACCEPTED, 2 STORED,
1 DISPATCHED), so a scenario can name the k-th ACCEPTED parcel without a query (SeedPlan.accepted_waybill).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import random
import secrets
import string
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench import seeddata
from gateway.core.investigation import name_keys
from gateway.security.sealing import Sealer

T = TypeVar("T")

STATE_CYCLE = ("ACCEPTED",) * 7 + ("STORED",) * 2 + ("DISPATCHED",)
_LAST_SEQ = {"ACCEPTED": 1, "STORED": 2, "DISPATCHED": 3}  # the events _events writes for each state
_ACCEPTED_PER_CYCLE = 7
SHIPMENT_COLUMNS = (
    "id", "waybill_no", "idempotency_key", "request_digest", "decision", "state", "sender_verification_id",
    "sender_name", "sender_document_bidx", "sender_phone_enc", "sender_phone_bidx", "sender_phone_masked",
    "sender_region_code", "sender_address", "recipient_name", "recipient_phone_enc", "recipient_phone_bidx",
    "recipient_phone_masked", "recipient_region_code", "recipient_address", "items", "inspection", "terminal_id",
    "principal_id", "created_at", "updated_at", "last_seq", "sender_name_keys", "recipient_name_keys",
)
EVENT_COLUMNS = ("shipment_id", "seq", "kind", "from_state", "to_state", "principal_id", "principal", "terminal_id",
                 "device_id", "location", "recorded_at", "accepted_at")
VERIFICATION_COLUMNS = (
    "sender_ref", "verdict", "document_type", "document_enc", "document_bidx", "document_masked", "name",
    "phone_enc", "phone_bidx", "phone_masked", "facts", "authority_result", "principal_id", "terminal_id",
    "created_at", "expires_at",
)
_PRINCIPAL = "bench-seed"
_INSPECTION = '{"outcome": "INSPECTED", "notes": "", "photos": 0, "inspected_at": "%s"}'
_SPAN = timedelta(days=60)  # seeded parcels were accepted over the last two months


@dataclass(frozen=True)
class SeedPlan:
    """Which waybills a seed made and in which state each one is."""

    prefix: str
    shipments: int

    def waybill(self, n: int) -> str:
        """The n-th seeded waybill number."""
        return f"{self.prefix}{n:010d}"

    @staticmethod
    def state_of(n: int) -> str:
        """The state the n-th seeded shipment was left in."""
        return STATE_CYCLE[n % len(STATE_CYCLE)]

    @property
    def accepted_count(self) -> int:
        """How many seeded shipments are ACCEPTED (can be stored once each)."""
        full, rest = divmod(self.shipments, len(STATE_CYCLE))
        return full * _ACCEPTED_PER_CYCLE + min(rest, _ACCEPTED_PER_CYCLE)

    def accepted_waybill(self, k: int) -> str:
        """The k-th ACCEPTED seeded waybill (0-based)."""
        cycle, offset = divmod(k, _ACCEPTED_PER_CYCLE)
        return self.waybill(cycle * len(STATE_CYCLE) + offset)


def new_prefix() -> str:
    """A waybill prefix unique to one seed run, so seeds into a reused database never collide."""
    return "BS" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(5)) + "-"


async def _principal(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(
        "INSERT INTO principals (name, roles) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET roles = EXCLUDED.roles"
        " RETURNING id", _PRINCIPAL, ["terminal", "scanner"]))


async def _verifications(conn: asyncpg.Connection, people: list[seeddata.Person], prefix: str,
                         principal_id: int, start: datetime) -> list[int]:
    """One recorded VERIFIED verification per person (shipments reference them); returns their ids in order."""
    refs = [f"{prefix}ref-{k}" for k in range(len(people))]
    rows = [(ref, "VERIFIED", "RESIDENT_ID", p.document_enc, p.document_bidx, p.document_masked, p.name,
             p.phone_enc, p.phone_bidx, p.phone_masked, seeddata.facts_json(p), "MATCH", principal_id,
             f"T-{k % 500:04d}", start, start + timedelta(minutes=30)) for k, (ref, p)
             in enumerate(zip(refs, people, strict=True))]
    await conn.copy_records_to_table("sender_verifications", records=rows, columns=VERIFICATION_COLUMNS)
    found = await conn.fetch("SELECT sender_ref, id FROM sender_verifications WHERE sender_ref = ANY($1)", refs)
    by_ref = {r["sender_ref"]: r["id"] for r in found}
    return [by_ref[ref] for ref in refs]


class _Rows:
    """Builds COPY records chunk by chunk from small pools of pre-sealed values."""

    def __init__(self, plan: SeedPlan, people: list[seeddata.Person], verification_ids: list[int],
                 principal_id: int, rng: random.Random) -> None:
        self.plan, self.people, self.vids, self.principal_id = plan, people, verification_ids, principal_id
        self.start = datetime.now(UTC) - _SPAN
        self.step = _SPAN / max(plan.shipments, 1)
        self.addresses = [seeddata.address(rng) for _ in range(997)]
        self.items = [seeddata.items_json(rng) for _ in range(499)]
        self.names = [seeddata.chinese_name(rng) for _ in range(1009)]
        # The search keys of each name, computed once per distinct name as acceptance computes them.
        self.name_keys = {name: list(name_keys(name)) for name in {*self.names, *(p.name for p in people)}}
        self.id_base = uuid.uuid4().int

    def chunk(self, lo: int, hi: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Shipment and event records for shipments lo..hi-1."""
        shipments: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        people, addrs, npeople = self.people, self.addresses, len(self.people)
        for n in range(lo, hi):
            sender, recipient = people[n % npeople], people[(n * 7919 + 13) % npeople]
            s_region, s_addr = addrs[n % 997]
            r_region, r_addr = addrs[(n * 31 + 7) % 997]
            created = self.start + self.step * n
            sid = uuid.UUID(int=(self.id_base + n) & ((1 << 128) - 1))
            waybill, state, terminal = self.plan.waybill(n), STATE_CYCLE[n % 10], f"T-{n % 500:04d}"
            inspection = _INSPECTION % created.isoformat()
            shipments.append((
                sid, waybill, f"key-{waybill}", hashlib.sha256(waybill.encode()).digest(), "ACCEPTED", state,
                self.vids[n % npeople], sender.name, sender.document_bidx, sender.phone_enc, sender.phone_bidx,
                sender.phone_masked, s_region, s_addr, self.names[n % 1009], recipient.phone_enc,
                recipient.phone_bidx, recipient.phone_masked, r_region, r_addr, self.items[n % 499], inspection,
                terminal, self.principal_id, created, created, _LAST_SEQ[state], self.name_keys[sender.name],
                self.name_keys[self.names[n % 1009]],
            ))
            self._events(events, sid, state, terminal, created)
        return shipments, events

    def _events(self, out: list[tuple[Any, ...]], sid: uuid.UUID, state: str, terminal: str, at: datetime) -> None:
        pid = self.principal_id
        out.append((sid, 1, "ACCEPTED", None, "ACCEPTED", pid, _PRINCIPAL, terminal, "", "", at, at))
        if state in ("STORED", "DISPATCHED"):
            out.append((sid, 2, "STORED", "ACCEPTED", "STORED", pid, _PRINCIPAL, "", "SC-01", "WH-BJ-01",
                        at + timedelta(hours=3), at))
        if state == "DISPATCHED":
            out.append((sid, 3, "DISPATCHED", "STORED", "DISPATCHED", pid, _PRINCIPAL, "", "SC-02", "WH-BJ-01",
                        at + timedelta(hours=9), at))


@dataclass(frozen=True)
class SeedResult:
    """What one seed run made and how long it took."""

    plan: SeedPlan
    events: int
    seconds: float


async def seed(dsn: str, shipments: int, sealer: Sealer, *, prefix: str | None = None, distinct: int = 600,
               chunk: int = 10_000, copiers: int = 2, show_progress: bool = True,
               rng_seed: int = 20240601) -> SeedResult:
    """Seeds `shipments` shipments (and their events) into a migrated database; returns the plan."""
    started = time.perf_counter()
    plan = SeedPlan(prefix or new_prefix(), shipments)
    rng = random.Random(rng_seed)
    # Sealing a million values costs minutes of AES-GCM; a few hundred people sealed once and reused round-robin
    # give real ciphertexts (the gateway can open every one) at the cost of repeated values.
    people = [seeddata.make_person(rng, sealer) for _ in range(max(1, min(distinct, shipments or 1)))]
    conn = await asyncpg.connect(dsn)
    try:
        principal_id = await _principal(conn)
        vids = await _verifications(conn, people, plan.prefix, principal_id, datetime.now(UTC) - _SPAN)
        rows = _Rows(plan, people, vids, principal_id, rng)
        # Each month of the span its own partition (migration 012), as `partitions ensure` keeps them.
        await conn.execute("SELECT courier_ensure_month('shipment_events', m::date) FROM generate_series("
                           "date_trunc('month', $1::timestamptz AT TIME ZONE 'UTC'), now(), interval '1 month') m",
                           rows.start)
        with _progress(show_progress) as progress:
            task = progress.add_task("seeding shipments", total=shipments, rate="")

            def advance(count: int, done: int) -> None:
                progress.update(task, advance=count, rate=f"{done / (time.perf_counter() - started):,.0f}/s")

            events = await _copy_all(dsn, rows, shipments, chunk, copiers, advance)
        await settle(conn, "shipments, shipment_events, sender_verifications")
    finally:
        await conn.close()
    return SeedResult(plan, events, time.perf_counter() - started)


async def settle(conn: asyncpg.Connection, tables: str) -> None:
    """Leaves nothing for autovacuum or the checkpointer to do with a seed, so it does not land in the figures
    (and a load sets no hint bits that a first read would then write)."""
    await conn.execute(f"VACUUM (ANALYZE) {tables}")
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:  # BENCH_DATABASE_URL may name a database we do not own
        pass


async def copy_in_parallel(dsn: str, chunks: Iterable[T], write: Callable[[asyncpg.Connection, T], Awaitable[int]],
                           copiers: int, advance: Callable[[int, int], None]) -> None:
    """Generates chunks here while `copiers` connections COPY earlier ones (PostgreSQL is the slow side);
    write copies one chunk and returns how many progress units it was."""
    queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize=copiers)
    done = [0]

    async def copier() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            while (item := await queue.get()) is not None:
                units = await write(conn, item)
                done[0] += units
                advance(units, done[0])
        finally:
            await conn.close()

    tasks = [asyncio.create_task(copier()) for _ in range(copiers)]
    try:
        for item in chunks:
            await queue.put(item)
        for _ in tasks:
            await queue.put(None)
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()


async def _copy_all(dsn: str, rows: _Rows, shipments: int, chunk: int, copiers: int,
                    advance: Callable[[int, int], None]) -> int:
    """COPYs the shipments and their events; returns how many events."""
    events = [0]

    async def write(conn: asyncpg.Connection, item: tuple[list[Any], list[Any]]) -> int:
        ship_rows, event_rows = item
        # Shipments first: each event's foreign key must find its shipment committed.
        await conn.copy_records_to_table("shipments", records=ship_rows, columns=SHIPMENT_COLUMNS)
        # The global keys' own tables (migration 011), as ShipmentRepository writes them with each parcel.
        await conn.copy_records_to_table("shipment_waybills", records=[(r[1], r[0]) for r in ship_rows],
                                         columns=("waybill_no", "shipment_id"))
        await conn.copy_records_to_table("shipment_idempotency_keys", records=[(r[2], r[0]) for r in ship_rows],
                                         columns=("idempotency_key", "shipment_id"))
        await conn.copy_records_to_table("shipment_events", records=event_rows, columns=EVENT_COLUMNS)
        events[0] += len(event_rows)
        return len(ship_rows)

    chunks = (rows.chunk(lo, min(lo + chunk, shipments)) for lo in range(0, shipments, chunk))
    await copy_in_parallel(dsn, chunks, write, copiers, advance)
    return events[0]


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    disable=not enabled, transient=False)


def _sealer_from_env() -> Sealer:
    data, index = os.environ.get("GATEWAY_DATA_KEY", ""), os.environ.get("GATEWAY_INDEX_KEY", "")
    if not data or not index:
        print("bench.seed: GATEWAY_DATA_KEY/GATEWAY_INDEX_KEY unset: sealing with fresh keys "
              "(a gateway with other keys cannot open these values)", file=sys.stderr)
        return Sealer(os.urandom(32), os.urandom(32))
    return Sealer(base64.b64decode(data), base64.b64decode(index))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    p = argparse.ArgumentParser(prog="python -m bench.seed", description=__doc__)
    p.add_argument("--shipments", type=int, default=0)
    p.add_argument("--blocklist", type=int, default=0, metavar="N", help="active blocklist entries to seed")
    p.add_argument("--history", type=int, default=0, metavar="N",
                   help="shipments of a year's history with their events, leads and evidence log (fresh database)")
    p.add_argument("--dsn", default=os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", ""))
    p.add_argument("--prefix", default=None, help="waybill prefix (default: random per run)")
    p.add_argument("--distinct", type=int, default=600, help="distinct sealed people reused round-robin")
    p.add_argument("--migrate", action="store_true", help="apply the gateway's migrations first")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if not args.dsn or not 0 <= args.shipments <= 50_000_000 or not 0 <= args.blocklist <= 20_000_000 \
            or not 0 <= args.history <= 50_000_000 or not (args.shipments or args.blocklist or args.history) \
            or (args.history and args.shipments):
        p.error("need --dsn (or BENCH_DATABASE_URL/DATABASE_URL) and 0 < --shipments <= 50,000,000 "
                "and/or 0 < --blocklist <= 20,000,000, or 0 < --history <= 50,000,000 (not with --shipments)")
    sealer = _sealer_from_env()

    async def run() -> None:
        if args.migrate:
            from gateway.storage.db import migrate_dsn

            await migrate_dsn(args.dsn)
        if args.shipments:
            result = await seed(args.dsn, args.shipments, sealer, prefix=args.prefix, distinct=args.distinct,
                                show_progress=not args.no_progress)
            rate = args.shipments / result.seconds
            print(f"seeded {args.shipments:,} shipments and {result.events:,} events (prefix {result.plan.prefix}) "
                  f"in {result.seconds:.1f} s ({rate:,.0f} shipments/s)")
        if args.history:
            from bench.seed_history import seed_history

            history = await seed_history(args.dsn, args.history, sealer, prefix=args.prefix,
                                         show_progress=not args.no_progress, log=print)
            phases = ", ".join(f"{k} {v:.1f} s" for k, v in history.phases.items())
            print(f"seeded a history of {args.history:,} shipments, {history.events:,} events, {history.leads:,} leads"
                  f" and {history.leaves:,} evidence leaves (prefix {history.plan.prefix}) in {history.seconds:.1f} s"
                  f" ({phases}); {history.checked_leaves} leaves checked against the gateway's records")
        if args.blocklist:
            from bench.seed_blocklist import bench_reserved, seed_blocklist

            listed = await seed_blocklist(args.dsn, args.blocklist, sealer, reserved=bench_reserved(),
                                          show_progress=not args.no_progress)
            kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(listed.kinds.items(), key=lambda kv: -kv[1]))
            print(f"seeded {listed.entries:,} blocklist entries at version {listed.version} in {listed.seconds:.1f} s "
                  f"({listed.entries / listed.seconds:,.0f} entries/s): {kinds}")

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
