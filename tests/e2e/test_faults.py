"""Durability under faults: PostgreSQL stopped and restarted under load, the gateway SIGKILLed and restarted.

Everything is real: a PostgreSQL cluster of this test's own (so stopping it disturbs nobody), the gateway as a
`python -m gateway serve` process, the identity-authority simulator on a socket, and clients on real channels
doing VerifySender + AcceptParcel, StreamScans, RecordInspection and SearchShipments. Each client logs every
call's status and time and every acknowledgement; a request that was not acknowledged is retried as it was,
with the same idempotency key or event id, until it is. Afterwards the log of acknowledgements is compared
with the tables, and the evidence log is checked from its first leaf to its last.

FAULTS_OUTAGES and FAULTS_KILLS set how many database outages and gateway kills (2 each by default;
`make soak` runs more).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from courier.v1 import (
    acceptance_pb2,
    acceptance_pb2_grpc,
    common_pb2,
    custody_pb2,
    custody_pb2_grpc,
    inspection_pb2,
    inspection_pb2_grpc,
    investigation_pb2,
    investigation_pb2_grpc,
)
from gateway.core.evidence.checkpoint import open_checkpoint
from gateway.core.evidence.merkle import verify_consistency
from gateway.core.evidence.records import record_leaf_hash
from gateway.simulators.identity_authority import start_simulator
from gateway.storage.cluster import Cluster, free_port
from gateway.storage.db import create_pool, migrate_dsn
from gateway.storage.evidence import EvidenceRepository
from tests.conftest import FIXTURES, REPO, b64key, make_tokens
from tests.e2e.requests import accept_request, verify_request, waybill

OUTAGES = int(os.environ.get("FAULTS_OUTAGES", "2"))
KILLS = int(os.environ.get("FAULTS_KILLS", "2"))
DEADLINE_S = 5.0  # every call's deadline
SLACK_S = 1.0  # how much later than its deadline a call may end (a loaded machine's scheduling)
RECOVERY_S = 5.0  # the gateway serves again within this of the database's return
OUTAGE_S = 3.0
CASE = "CASE-2026-0777"
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
# A channel that finds a restarted gateway at once, not after grpc's default back-off of up to two minutes.
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 500)]


@dataclass(frozen=True)
class Call:
    """One call a client made: which RPC, how it ended, when it started and ended (monotonic seconds)."""

    rpc: str
    code: grpc.StatusCode
    started: float
    ended: float
    details: str = ""
    # A retried move answered FAILED_PRECONDITION because the try before it had committed (its answer lost with
    # the connection): custody moves carry no idempotency key, so this is the answer a retry must get.
    committed_before: bool = False


@dataclass
class Ledger:
    """What the clients saw: every call, and every write the gateway acknowledged."""

    calls: list[Call] = field(default_factory=list)
    parcels: dict[str, str] = field(default_factory=dict)  # idempotency key -> waybill, once acknowledged
    tried_keys: set[str] = field(default_factory=set)
    scans: dict[str, str] = field(default_factory=dict)  # event id -> waybill, once acknowledged
    tried_scans: set[str] = field(default_factory=set)
    stored: set[str] = field(default_factory=set)  # waybills whose StoreParcel was acknowledged
    found_by_search: int = 0
    faults: list[tuple[float, str]] = field(default_factory=list)  # (when, what): for a failure's message

    def note(self, what: str) -> None:
        """Marks a moment (a fault, a return) in the log, so a failure message can place each call."""
        self.faults.append((time.monotonic(), what))

    def around(self, call: Call) -> str:
        """The call, placed after the last fault before it started."""
        before = [f"{what} {call.started - at:+.2f}s" for at, what in self.faults if at <= call.started]
        return f"{call.rpc} {call.code.name} {call.details!r} {call.ended - call.started:.2f}s after {before[-1:]}"

    async def until_ok(self, rpc: str, call: Callable[[], Awaitable[Any]], give_up: asyncio.Event) -> Any:
        """Makes the call until it answers OK (logging each try); None once give_up is set and it still fails."""
        while True:
            started = time.monotonic()
            try:
                answer = await call()
            except grpc.aio.AioRpcError as error:
                self.calls.append(Call(rpc, error.code(), started, time.monotonic(), error.details() or ""))
                if give_up.is_set():
                    return None
                await asyncio.sleep(random.uniform(0.05, 0.2))
                continue
            self.calls.append(Call(rpc, grpc.StatusCode.OK, started, time.monotonic()))
            return answer


@dataclass
class Stack:
    """The test's own cluster, the simulator, the gateway process and a channel to it."""

    cluster: Cluster
    env: dict[str, str]
    port: int
    logs: Path
    tokens: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    def md(self, role: str) -> tuple[tuple[str, str], ...]:
        """Call metadata with the token of one role."""
        return (("authorization", f"Bearer {self.tokens[role]}"),)

    async def start_gateway(self) -> float:
        """Starts `python -m gateway serve`; returns the seconds until it listened."""
        self.starts += 1
        started = time.monotonic()
        out = (self.logs / f"gateway-{self.starts}.out").open("wb")
        err = (self.logs / f"gateway-{self.starts}.err").open("wb")  # a file, never a pipe nobody drains
        self.proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "serve", env=self.env,
                                                         cwd=REPO, stdout=out, stderr=err)
        out.close()
        err.close()
        while b"gateway listening on" not in (self.logs / f"gateway-{self.starts}.out").read_bytes():
            assert self.proc.returncode is None, (self.logs / f"gateway-{self.starts}.err").read_text()[-2000:]
            assert time.monotonic() - started < 60, "the gateway did not start within 60 s"
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def kill_gateway(self) -> None:
        """SIGKILL: no graceful anything."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop_gateway(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def stop_database(self, mode: str) -> None:
        """Stops the postmaster as pg_ctl does, by its signal: fast (SIGINT: sessions ended, a clean shutdown) or
        immediate (SIGQUIT: no shutdown checkpoint, so the next start replays the WAL, as after a crash); waits
        until it is gone. A signal, not pg_ctl in a thread: forking beside grpc's threads crashes the child."""
        pid_file = self.cluster.data_dir / "postmaster.pid"
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT if mode == "fast" else signal.SIGQUIT)
        started = time.monotonic()
        while pid_file.exists():
            assert time.monotonic() - started < 30, "PostgreSQL did not stop within 30 s"
            await asyncio.sleep(0.02)

    async def start_database(self) -> None:
        """Starts the cluster again on its port (pg_ctl start -w, from a process of its own)."""
        starter = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; from pathlib import Path; from gateway.storage.cluster import Cluster;"
            " Cluster(Path(sys.argv[1]), port=int(sys.argv[2]), fsync=False).start()",
            str(self.cluster.root), str(self.cluster.port), cwd=REPO, stderr=asyncio.subprocess.PIPE)
        _, err = await starter.communicate()
        assert starter.returncode == 0, err.decode()

    def gateway_errors(self) -> str:
        """The tail of every gateway process's log, for a failure message."""
        return "\n".join((self.logs / f"gateway-{n}.err").read_text()[-1500:] for n in range(1, self.starts + 1))


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """A cluster of this test's own (not the session's, which other tests use), migrated, with tokens, the
    authority simulator, and the gateway process started."""
    # Under /tmp as the session's cluster is: pytest's own temporary root is reset to mode 700 by every pytest
    # that starts meanwhile, and the server (as root, an unprivileged user) must reach its directory.
    # fsync is off: the OS never crashes here, so fsync is not what is tested.
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="courier-faults-")) / "pg", fsync=False)
    cluster.start()  # before any thread of grpc's exists
    sim = None
    built: Stack | None = None
    try:
        dsn = cluster.dsn("courier")
        await migrate_dsn(dsn)
        sim = await start_simulator(FIXTURES / "identity" / "authority_registry.json", api_key="k")
        port = free_port()
        env = {**os.environ, "DATABASE_URL": dsn, "GATEWAY_LISTEN": f"127.0.0.1:{port}",
               "GATEWAY_DATA_KEY": b64key(), "GATEWAY_INDEX_KEY": b64key(), "EVIDENCE_SIGNING_KEY": b64key(),
               "EVIDENCE_APPEND_S": "0.1", "IDENTITY_AUTHORITY_URL": sim.url, "IDENTITY_AUTHORITY_KEY": "k",
               "BLOB_STORE_DIR": str(tmp_path / "blobs"), "DB_CONNECT_TIMEOUT_S": "2", "DB_ACQUIRE_TIMEOUT_S": "2",
               "SHUTDOWN_GRACE_S": "2", "BLOCKLIST_POLL_S": "1", "LOG_LEVEL": "WARNING"}
        (tmp_path / "logs").mkdir()
        built = Stack(cluster, env, port, tmp_path / "logs", await make_tokens(dsn))
        await built.start_gateway()
        yield built
    finally:
        if built is not None:
            await built.stop_gateway()
        if sim is not None:
            await sim.close()
        await asyncio.to_thread(cluster.destroy)
        shutil.rmtree(cluster.root.parent, ignore_errors=True)


class Clients:
    """The load: acceptors, a scanner stream, a manual-inspection terminal and an investigator, until stopped."""

    def __init__(self, stack: Stack, channel: grpc.aio.Channel) -> None:
        self.ledger = Ledger()
        self._stack = stack
        self._acceptance = acceptance_pb2_grpc.AcceptanceStub(channel)
        self._inspection = inspection_pb2_grpc.InspectionStub(channel)
        self._investigation = investigation_pb2_grpc.InvestigationStub(channel)
        self._custody = custody_pb2_grpc.CustodyStub(channel)
        self._to_store: asyncio.Queue[str] = asyncio.Queue()
        self.stopping = asyncio.Event()  # finish what you started, start nothing new
        self.give_up = asyncio.Event()  # stop retrying
        self._ids = itertools.count()

    def start(self) -> list[asyncio.Task[None]]:
        """Starts every client as a task."""
        loops = [self._acceptor(), self._acceptor(), self._acceptor(), self._scanner(), self._inspector(),
                 self._investigator(), self._custodian()]
        return [asyncio.ensure_future(loop) for loop in loops]

    async def _acceptor(self) -> None:
        terminal = self._stack.md("terminal")
        while not self.stopping.is_set():
            verified = await self.ledger.until_ok("VerifySender", lambda: self._acceptance.VerifySender(
                verify_request(), metadata=terminal, timeout=DEADLINE_S), self.give_up)
            if verified is None:
                return
            assert verified.verdict == acceptance_pb2.VERDICT_VERIFIED, verified
            request = accept_request(verified.sender_ref, waybill_no=waybill())
            self.ledger.tried_keys.add(request.idempotency_key)
            accepted = await self.ledger.until_ok("AcceptParcel", lambda r=request: self._acceptance.AcceptParcel(
                r, metadata=terminal, timeout=DEADLINE_S), self.give_up)
            if accepted is None:
                return
            assert accepted.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED, accepted
            assert accepted.waybill_no == request.waybill_no
            self.ledger.parcels[request.idempotency_key] = request.waybill_no
            if random.random() < 0.5:
                self._to_store.put_nowait(request.waybill_no)

    async def _custodian(self) -> None:
        """Stores half the acknowledged parcels, each until a store is acknowledged."""
        terminal = self._stack.md("terminal")
        while not self.stopping.is_set():
            try:
                number = await asyncio.wait_for(self._to_store.get(), 0.2)
            except TimeoutError:
                continue
            tried = False
            while True:
                started = time.monotonic()
                try:
                    await self._custody.StoreParcel(custody_pb2.CustodyMoveRequest(
                        waybill_no=number, terminal_id="T-0003", location="WH-SH-01"), metadata=terminal,
                        timeout=DEADLINE_S)
                except grpc.aio.AioRpcError as error:
                    committed = tried and error.code() == grpc.StatusCode.FAILED_PRECONDITION
                    self.ledger.calls.append(Call("StoreParcel", error.code(), started, time.monotonic(),
                                                  error.details() or "", committed))
                    if committed:
                        view = await self.ledger.until_ok("GetParcel", lambda n=number: self._custody.GetParcel(
                            custody_pb2.GetParcelRequest(waybill_no=n), metadata=terminal,
                            timeout=DEADLINE_S), self.give_up)
                        assert view is None or view.state == common_pb2.PARCEL_STATE_STORED, view
                        self.ledger.stored.add(number)
                        break
                    if self.give_up.is_set():
                        return
                    tried = True
                    await asyncio.sleep(random.uniform(0.05, 0.2))
                    continue
                self.ledger.calls.append(Call("StoreParcel", grpc.StatusCode.OK, started, time.monotonic()))
                self.ledger.stored.add(number)
                break

    def _scan(self, kind: int, prefix: str) -> inspection_pb2.ScanEvent:
        known = list(self.ledger.parcels.values())
        number = random.choice(known) if known else "SF000000000000"
        event_id = f"{prefix}-{next(self._ids):08d}"
        self.ledger.tried_scans.add(event_id)
        return inspection_pb2.ScanEvent(event_id=event_id, device_id=f"{prefix.upper()}-01", kind=kind,
                                        waybill_no=number, location="SH-HUB-02/line-3")

    async def _scanner(self) -> None:
        """A scanner adapter: streams of up to 8 events; what was not acknowledged is resent with its ids.

        The stream runs on grpc's synchronous client in a thread: when a server ends a client stream before
        the client half-closed (the gateway answering UNAVAILABLE at once), the asyncio client replaces the
        server's status with INTERNAL "Internal error from Core" (grpc/grpc#36066, open), and it is the
        gateway's status this test checks."""
        unacked: dict[str, inspection_pb2.ScanEvent] = {}
        with grpc.insecure_channel(f"127.0.0.1:{self._stack.port}", options=CHANNEL_OPTIONS) as channel:
            stub = inspection_pb2_grpc.InspectionStub(channel)
            while not (self.stopping.is_set() and not unacked):
                while not self.stopping.is_set() and len(unacked) < 8:
                    event = self._scan(inspection_pb2.SCAN_KIND_DWS, "dws")
                    unacked[event.event_id] = event
                started = time.monotonic()
                acks, code, details = await asyncio.to_thread(self._stream, stub, list(unacked.values()))
                self.ledger.calls.append(Call("StreamScans", code, started, time.monotonic(), details))
                for ack in acks:
                    sent = unacked.pop(ack.event_id)
                    assert ack.waybill_no == sent.waybill_no, ack
                    self.ledger.scans[ack.event_id] = sent.waybill_no
                if code != grpc.StatusCode.OK:
                    if self.give_up.is_set():
                        return
                    await asyncio.sleep(random.uniform(0.05, 0.2))

    def _stream(self, stub: inspection_pb2_grpc.InspectionStub, events: list[inspection_pb2.ScanEvent],
                ) -> tuple[list[inspection_pb2.ScanAck], grpc.StatusCode, str]:
        acks: list[inspection_pb2.ScanAck] = []
        try:
            for ack in stub.StreamScans(iter(events), metadata=self._stack.md("scanner"), timeout=DEADLINE_S):
                acks.append(ack)
        except grpc.RpcError as error:
            return acks, error.code(), error.details() or ""  # type: ignore[attr-defined]
        return acks, grpc.StatusCode.OK, ""

    async def _inspector(self) -> None:
        while not self.stopping.is_set():
            event = self._scan(inspection_pb2.SCAN_KIND_HANDHELD, "hand")
            ack = await self.ledger.until_ok("RecordInspection", lambda e=event: self._inspection.RecordInspection(
                inspection_pb2.InspectionRecord(event=e, terminal_id="T-0002"), metadata=self._stack.md("terminal"),
                timeout=DEADLINE_S), self.give_up)
            if ack is None:
                return
            assert ack.ack.event_id == event.event_id
            self.ledger.scans[event.event_id] = event.waybill_no

    async def _investigator(self) -> None:
        """Searches for parcels already acknowledged: each must be found (an acknowledged write is readable)."""
        while not self.stopping.is_set():
            if not self.ledger.parcels:
                await asyncio.sleep(0.1)
                continue
            number = random.choice(list(self.ledger.parcels.values()))
            found = await self.ledger.until_ok("SearchShipments", lambda n=number: self._investigation.SearchShipments(
                investigation_pb2.SearchRequest(case_no=CASE, waybill_no=n),
                metadata=self._stack.md("investigator"), timeout=DEADLINE_S), self.give_up)
            if found is None:
                return
            assert [s.waybill_no for s in found.shipments] == [number]
            self.ledger.found_by_search += 1
            await asyncio.sleep(0.02)


def _first_ok_after(calls: list[Call], moment: float) -> float | None:
    """Seconds from moment to the end of the first OK call that started after it."""
    ends = [c.ended for c in calls if c.code == grpc.StatusCode.OK and c.started >= moment]
    return min(ends) - moment if ends else None


async def _wait_for_ok(ledger: Ledger, moment: float, limit_s: float) -> float | None:
    while time.monotonic() - moment < limit_s + 1:
        found = _first_ok_after(ledger.calls, moment)
        if found is not None:
            return found
        await asyncio.sleep(0.02)
    return _first_ok_after(ledger.calls, moment)


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash of leaf hashes, written out plainly (not the gateway's stored-subtree code)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(hashes[:k]) + _mth(hashes[k:])).digest()


async def _evidence_caught_up(pool: asyncpg.Pool, repo: EvidenceRepository, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        async with pool.acquire() as conn:
            if not await repo.pending(conn, 1):
                return
        assert time.monotonic() < deadline, f"the evidence appender did not catch up within {limit_s} s"
        await asyncio.sleep(0.1)


async def _check_evidence(pool: asyncpg.Pool, stub: investigation_pb2_grpc.InvestigationStub, md: Any,
                          before: investigation_pb2.SignedTreeHead) -> int:
    """Every record in the log, every leaf its record's hash now, the signed head over them all, and the head
    taken before the faults a prefix of it. Returns the number of leaves."""
    repo = EvidenceRepository(pool)
    await _evidence_caught_up(pool, repo, 30)
    leaves = await pool.fetch("SELECT leaf_index, source, source_key, leaf_hash FROM evidence_leaves"
                              " ORDER BY leaf_index")
    assert [r["leaf_index"] for r in leaves] == list(range(len(leaves))), "the log has a gap"
    expected = {"E": "SELECT count(*) FROM shipment_events", "V": "SELECT count(*) FROM sender_verifications",
                "S": "SELECT count(*) FROM scan_events WHERE shipment_id IS NULL",
                "A": "SELECT count(*) FROM audit_records"}
    per_source = Counter(r["source"] for r in leaves)
    for code, sql in expected.items():
        assert per_source[code] == await pool.fetchval(sql), f"source {code}: rows and leaves differ"
    for code in expected:
        keys = [r["source_key"] for r in leaves if r["source"] == code]
        records = await repo.records(code, keys)
        for r in (r for r in leaves if r["source"] == code):
            assert record_leaf_hash(records[r["source_key"]]) == bytes(r["leaf_hash"]), f"leaf {r['leaf_index']}"
    hashes = [bytes(r["leaf_hash"]) for r in leaves]
    head = await stub.GetTreeHead(investigation_pb2.GetTreeHeadRequest(case_no=CASE, fresh=True), metadata=md,
                                  timeout=30)
    opened = open_checkpoint(head.checkpoint, head.verifier_keys)
    assert (opened.size, opened.root) == (len(hashes), _mth(hashes)) == (head.tree_size, head.root_hash)
    if 0 < before.tree_size < head.tree_size:
        proof = await stub.GetConsistencyProof(investigation_pb2.GetConsistencyProofRequest(
            case_no=CASE, old_size=before.tree_size, new_size=head.tree_size), metadata=md, timeout=30)
        assert verify_consistency(before.tree_size, head.tree_size, before.root_hash, head.root_hash,
                                  list(proof.proof))
        assert _mth(hashes[:before.tree_size]) == before.root_hash
    return len(hashes)


async def _check_tables(pool: asyncpg.Pool, ledger: Ledger) -> None:
    """Every acknowledged parcel and scan is there, once; no shipment lacks its events."""
    shipments = {r["idempotency_key"]: r["waybill_no"] for r in await pool.fetch(
        "SELECT idempotency_key, waybill_no FROM shipments")}
    lost = {k: w for k, w in ledger.parcels.items() if shipments.get(k) != w}
    assert not lost, f"acknowledged parcels missing from the tables: {lost}"
    # Every request tried was retried until acknowledged, so any extra row is a duplicate or a stray write.
    assert set(shipments) == set(ledger.parcels) == ledger.tried_keys
    half = await pool.fetch("SELECT s.waybill_no FROM shipments s WHERE NOT EXISTS (SELECT 1 FROM shipment_events e"
                            " WHERE e.shipment_id = s.id AND e.seq = 1 AND e.to_state = s.decision)")
    assert not half, f"shipments without their acceptance event: {half}"
    gaps = await pool.fetch("SELECT shipment_id FROM shipment_events GROUP BY shipment_id"
                            " HAVING count(*) <> max(seq) OR count(DISTINCT seq) <> count(*)")
    assert not gaps, f"shipments whose history has a gap or a repeated seq: {gaps}"
    scans = {r["event_id"]: r for r in await pool.fetch(
        "SELECT event_id, waybill_no, shipment_id, event_seq FROM scan_events")}
    assert set(scans) == set(ledger.scans) == ledger.tried_scans, "scans lost, duplicated or never acknowledged"
    assert all(scans[e]["waybill_no"] == w for e, w in ledger.scans.items())
    stored = await pool.fetch(
        "SELECT s.waybill_no, s.state, count(e.id) FILTER (WHERE e.kind = 'STORED') AS moves FROM shipments s"
        " LEFT JOIN shipment_events e ON e.shipment_id = s.id WHERE s.waybill_no = ANY($1::text[])"
        " GROUP BY s.waybill_no, s.state", list(ledger.stored))
    wrong = [dict(r) for r in stored if r["state"] != "STORED" or r["moves"] != 1]
    assert len(stored) == len(ledger.stored) and not wrong, f"acknowledged stores lost or made twice: {wrong}"
    orphans = await pool.fetch("SELECT s.event_id FROM scan_events s WHERE s.shipment_id IS NOT NULL AND NOT EXISTS"
                               " (SELECT 1 FROM shipment_events e WHERE e.shipment_id = s.shipment_id"
                               " AND e.seq = s.event_seq)")
    assert not orphans, f"scans of a parcel without their history event: {orphans}"


@pytest.mark.slow
async def test_acknowledged_writes_survive_database_outages_and_gateway_kills(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.port}", options=CHANNEL_OPTIONS) as channel:
        clients = Clients(stack, channel)
        investigation = investigation_pb2_grpc.InvestigationStub(channel)
        tasks = clients.start()
        recoveries: list[float] = []
        try:
            await asyncio.sleep(2.0)
            await asyncio.sleep(0.5)  # the appender's round: the head below covers records from before the faults
            before = await investigation.GetTreeHead(investigation_pb2.GetTreeHeadRequest(case_no=CASE, fresh=True),
                                                     metadata=stack.md("investigator"), timeout=10)
            for n in range(OUTAGES):
                clients.ledger.note(f"stop database {n + 1}")
                await stack.stop_database(("fast", "immediate")[n % 2])
                down = time.monotonic()
                await asyncio.sleep(OUTAGE_S)
                up_at = time.monotonic()
                clients.ledger.note(f"start database {n + 1}")
                await stack.start_database()
                clients.ledger.note(f"database {n + 1} up")
                up = time.monotonic()
                served = [c for c in clients.ledger.calls if c.code == grpc.StatusCode.OK and c.started > down
                          and c.ended < up_at]
                assert not served, f"calls answered OK with the database stopped: {served[:3]}"
                recovery = await _wait_for_ok(clients.ledger, up, RECOVERY_S)
                assert recovery is not None and recovery <= RECOVERY_S, (
                    f"outage {n + 1}: first OK {recovery} s after the database came back\n{stack.gateway_errors()}")
                recoveries.append(recovery)
                await asyncio.sleep(1.0)
            restarts = []
            for _ in range(KILLS):
                await asyncio.sleep(random.uniform(0.5, 1.5))
                clients.ledger.note("kill gateway")
                await stack.kill_gateway()
                restarts.append(await stack.start_gateway())
                clients.ledger.note("gateway up")
                assert await _wait_for_ok(clients.ledger, time.monotonic(), 10) is not None
            clients.stopping.set()
            done, _ = await asyncio.wait(tasks, timeout=30)
            assert len(done) == len(tasks), f"clients still retrying after 30 s\n{stack.gateway_errors()}"
            for task in done:
                task.result()  # a client's assertion
        finally:
            clients.give_up.set()
            clients.stopping.set()
            await asyncio.gather(*tasks, return_exceptions=True)

        calls = clients.ledger.calls
        codes = Counter(c.code for c in calls)
        odd = [clients.ledger.around(c) for c in calls if c.code not in ALLOWED and not c.committed_before]
        assert not odd, f"statuses other than OK and UNAVAILABLE: {odd[:10]}\n{stack.gateway_errors()}"
        slow = [c for c in calls if c.ended - c.started > DEADLINE_S + SLACK_S]
        assert not slow, f"calls longer than their deadline: {slow[:5]}"
        assert codes[grpc.StatusCode.UNAVAILABLE] > 0, "no call saw a fault: the test tested nothing"

        pool = await create_pool(stack.cluster.dsn("courier"), min_size=1, max_size=2)
        try:
            await _check_tables(pool, clients.ledger)
            leaves = await _check_evidence(pool, investigation, stack.md("investigator"), before)
        finally:
            await pool.close()
    ledger = clients.ledger
    print(f"\nfaults: outages={OUTAGES} kills={KILLS} calls={len(calls)} ok={codes[grpc.StatusCode.OK]}"
          f" unavailable={codes[grpc.StatusCode.UNAVAILABLE]} acked parcels={len(ledger.parcels)}"
          f" scans={len(ledger.scans)} stores={len(ledger.stored)}"
          f" (answer lost, found stored: {sum(c.committed_before for c in calls)}) searches={ledger.found_by_search}"
          " lost=0 duplicates=0"
          f" first OK after the database returned: max {max(recoveries, default=0):.2f} s;"
          f" gateway restart: max {max(restarts, default=0):.2f} s; evidence leaves={leaves} verified")
