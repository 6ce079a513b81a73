"""The floor: the least a Python handler doing the gateway's work costs, served as its own process.

`python -m bench.ceilings.floor --port 0` reads the gateway's environment (DATABASE_URL, IDENTITY_AUTHORITY_URL,
IDENTITY_AUTHORITY_KEY, GATEWAY_DATA_KEY) and serves courier.v1.Acceptance's VerifySender and AcceptParcel with the
generated protobuf messages over grpc.aio on uvloop, without interceptor, authentication or rules:

* VerifySender parses the request, makes one HTTP/1.1 call to the identity authority through the gateway's own
  adapter (gateway/adapters/identity_authority.py: its request, its pooled keep-alive client, so the floor moves
  with whatever client the gateway uses), seals the document and phone numbers with AES-GCM and inserts one row;
* AcceptParcel parses the request, seals the recipient's name and phone and inserts one row.

Each insert goes through a minimal group-commit batcher (a queue; each batch one INSERT ... SELECT FROM unnest on a
connection of its own; each caller awaits its batch's commit) into tables of the floor's own on the run's
database. The ceilings floor_verify and floor_accept drive it with the verify and accept scenarios' requests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import grpc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from courier.v1 import acceptance_pb2, acceptance_pb2_grpc, common_pb2
from gateway.adapters.identity_authority import HttpIdentityAuthority

MAX_BATCH = 256
WRITERS = 2  # batches in flight per table: one commits while the next fills
DEFAULT_TABLE_PREFIX = "bench_floor"

VERIFY_COLUMNS = (("id", "uuid"), ("document_type", "text"), ("document_enc", "bytea"), ("name", "text"),
                  ("phone_enc", "bytea"), ("terminal_id", "text"), ("authority_result", "text"),
                  ("authority_reference", "text"))
PARCEL_COLUMNS = (("id", "uuid"), ("waybill_no", "text"), ("idempotency_key", "text"), ("sender_ref", "text"),
                  ("recipient_name_enc", "bytea"), ("recipient_phone_enc", "bytea"), ("recipient_region_code", "text"),
                  ("items", "jsonb"), ("terminal_id", "text"))


def _ddl(table: str, columns: Sequence[tuple[str, str]], unique: Sequence[str] = ()) -> str:
    cols = ", ".join(f"{name} {kind} NOT NULL" + (" PRIMARY KEY" if name == "id" else "") for name, kind in columns)
    keys = "".join(f", UNIQUE ({name})" for name in unique)
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols}, created_at timestamptz NOT NULL DEFAULT now(){keys})"


def _insert(table: str, columns: Sequence[tuple[str, str]]) -> str:
    # jsonb travels as text and is cast in the SELECT: asyncpg has no jsonb[] codec by default.
    arrays = ", ".join(f"${n}::{'text' if kind == 'jsonb' else kind}[]" for n, (_, kind) in enumerate(columns, 1))
    names = ", ".join(name for name, _ in columns)
    casts = ", ".join(f"{name}::jsonb" if kind == "jsonb" else name for name, kind in columns)
    return f"INSERT INTO {table} ({names}) SELECT {casts} FROM unnest({arrays}) AS t({names})"


class GroupCommit:
    """Rows queued by concurrent callers, written WRITERS batches at a time; each caller awaits its commit."""

    def __init__(self, pool: asyncpg.Pool, sql: str) -> None:
        self._pool, self._sql = pool, sql
        self._queue: asyncio.Queue[tuple[tuple[Any, ...], asyncio.Future[None]]] = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._writer()) for _ in range(WRITERS)]

    async def insert(self, row: tuple[Any, ...]) -> None:
        """Queues one row and returns once the batch holding it committed (raises what the batch raised)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((row, done))
        await done

    async def _writer(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            columns = [list(col) for col in zip(*(row for row, _ in batch), strict=True)]
            try:
                async with self._pool.acquire() as conn:
                    await conn.execute(self._sql, *columns)
            except Exception as exc:  # every caller of the batch learns it failed
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def close(self) -> None:
        """Stops the writers (rows still queued are not written: the process is stopping)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Floor(acceptance_pb2_grpc.AcceptanceServicer):
    """VerifySender and AcceptParcel doing only the work: one authority call, two seals, one batched insert."""

    def __init__(self, pool: asyncpg.Pool, prefix: str, authority_url: str, authority_key: str,
                 data_key: bytes) -> None:
        self._aead = AESGCM(data_key)
        self._authority = HttpIdentityAuthority(authority_url, authority_key)
        self._verifications = GroupCommit(pool, _insert(f"{prefix}_verifications", VERIFY_COLUMNS))
        self._parcels = GroupCommit(pool, _insert(f"{prefix}_parcels", PARCEL_COLUMNS))

    def _seal(self, value: str, context: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value.encode(), context)

    async def VerifySender(self, request: acceptance_pb2.VerifySenderRequest,  # noqa: N802 - gRPC's name
                           context: grpc.aio.ServicerContext) -> acceptance_pb2.VerifySenderResponse:
        """Asks the authority, seals the numbers, records the check; VERIFIED on MATCH."""
        document_type = common_pb2.DocumentType.Name(request.document_type).removeprefix("DOCUMENT_TYPE_")
        answer = await self._authority.check(document_type, request.document_number, request.name)
        result = answer.result.value
        row_id = uuid.uuid4()
        await self._verifications.insert((
            row_id, document_type, self._seal(request.document_number, b"document"), request.name,
            self._seal(request.phone, b"phone"), request.terminal_id, result, answer.reference))
        if result != "MATCH":
            return acceptance_pb2.VerifySenderResponse(verdict=acceptance_pb2.VERDICT_REJECTED,
                                                       authority_result=result)
        return acceptance_pb2.VerifySenderResponse(verdict=acceptance_pb2.VERDICT_VERIFIED, sender_ref=str(row_id),
                                                   authority_result=result)

    async def AcceptParcel(self, request: acceptance_pb2.AcceptParcelRequest,  # noqa: N802 - gRPC's name
                           context: grpc.aio.ServicerContext) -> acceptance_pb2.AcceptParcelResponse:
        """Seals the recipient's name and phone, records the parcel; ACCEPTED."""
        recipient = request.recipient
        items = json.dumps([{"description": it.description, "category": it.category, "quantity": it.quantity,
                             "declared_value_fen": it.declared_value_fen} for it in request.items],
                           ensure_ascii=False)
        row_id = uuid.uuid4()
        await self._parcels.insert((
            row_id, request.waybill_no, request.idempotency_key, request.sender_ref,
            self._seal(recipient.name, b"name"), self._seal(recipient.phone, b"phone"),
            recipient.address.region_code, items, request.terminal_id))
        return acceptance_pb2.AcceptParcelResponse(decision=acceptance_pb2.ACCEPT_DECISION_ACCEPTED,
                                                   shipment_id=str(row_id), waybill_no=request.waybill_no)

    async def close(self) -> None:
        """Closes the batchers and the authority connections."""
        await asyncio.gather(self._verifications.close(), self._parcels.close())
        await self._authority.aclose()


async def create_tables(conn: asyncpg.Connection, prefix: str) -> None:
    """The floor's own tables (kept between runs: rows carry fresh ids and waybills)."""
    await conn.execute(_ddl(f"{prefix}_verifications", VERIFY_COLUMNS))
    await conn.execute(_ddl(f"{prefix}_parcels", PARCEL_COLUMNS, unique=("waybill_no", "idempotency_key")))


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"floor: {name} must be set (the floor reads the gateway's environment)")
    return value


def _data_key() -> bytes:
    try:
        key = base64.b64decode(_env("GATEWAY_DATA_KEY"), validate=True)
    except ValueError:
        raise SystemExit("floor: GATEWAY_DATA_KEY must be base64") from None
    if len(key) != 32:
        raise SystemExit("floor: GATEWAY_DATA_KEY must decode to 32 bytes")
    return key


async def serve(host: str, port: int, prefix: str) -> None:
    """Serves until SIGINT or SIGTERM; prints the bound address first."""
    dsn, url, key, data_key = (_env("DATABASE_URL"), _env("IDENTITY_AUTHORITY_URL"), _env("IDENTITY_AUTHORITY_KEY"),
                               _data_key())
    pool = await asyncpg.create_pool(dsn, min_size=2 * WRITERS, max_size=2 * WRITERS,
                                     server_settings={"application_name": "bench-floor"})
    assert pool is not None
    async with pool.acquire() as conn:
        await create_tables(conn, prefix)
    floor = Floor(pool, prefix, url, key, data_key)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    acceptance_pb2_grpc.add_AcceptanceServicer_to_server(floor, server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"floor listening on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)
    await floor.close()
    await pool.close()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    import uvloop

    p = argparse.ArgumentParser(prog="python -m bench.ceilings.floor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--table-prefix", default=DEFAULT_TABLE_PREFIX,
                   help="the floor's tables are PREFIX_verifications and PREFIX_parcels")
    args = p.parse_args(argv)
    if not args.table_prefix.replace("_", "").isalnum():
        p.error("--table-prefix must be letters, digits and underscores")
    uvloop.run(serve(args.host, args.port, args.table_prefix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
