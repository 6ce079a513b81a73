"""`python -m inspection demo`: the simulators through one adapter against the gateway `make run` started.

It first accepts four parcels itself (Acceptance.VerifySender of the development sender, then AcceptParcel),
so the scans name waybills the gateway knows; then a DWS station, a scale station (scale and reader), an
X-ray folder and a label camera send their readings through the adapter's queue and StreamScans, and each
ack is printed as one line. The readings include an unknown waybill, a label the reader could not read, a
truncated DWS record and an X-ray alarm, so the line is told PASS and DIVERT_TO_HOLD.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import grpc

from courier.v1 import acceptance_pb2, acceptance_pb2_grpc, common_pb2
from gateway.security.tls import ClientTLS, client_tls_from_env, open_channel
from gateway.settings import SettingsError
from inspection.config import Config, Connection, Device
from inspection.queue import AsyncQueue
from inspection.routing import Decision
from inspection.runner import Adapter
from inspection.simulators.dws import DwsSimulator, record_for
from inspection.simulators.files import write_camera, write_xray
from inspection.simulators.scale import ScaleSimulator, parcel_plan

DEFAULT_TARGET = "127.0.0.1:50051"
# The development sender, in gateway/data/demo_registry.json (the registry `make run`'s authority serves).
SENDER = {"number": "110101199003071233", "name": "张伟", "phone": "13800138000"}
TERMINAL = "demo-scanners-01"
LOCATION = "DEMO-HUB/line-1"


def register(sub: Any) -> None:
    """Adds the `demo` command."""
    p = sub.add_parser("demo", help="accept four parcels, then scan them through simulators and one adapter")
    p.add_argument("--target", default="", help=f"HOST:PORT (default: $GATEWAY_LISTEN, .var/env, {DEFAULT_TARGET})")
    p.add_argument("--token", default="", help="defaults to $GATEWAY_TOKEN, then .var/dev-token")
    p.set_defaults(func=run)


def target_of(given: str, var: Path = Path(".var")) -> str:
    """--target, else $GATEWAY_LISTEN, else the address `make run` wrote to .var/env, else the default."""
    if given or os.environ.get("GATEWAY_LISTEN"):
        return given or os.environ["GATEWAY_LISTEN"]
    env = var / "env"
    lines = env.read_text(encoding="utf-8").splitlines() if env.exists() else []
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "GATEWAY_LISTEN" and value.strip().strip("'\""):
            return value.strip().strip("'\"")
    return DEFAULT_TARGET


def token_of(given: str, var: Path = Path(".var")) -> str:
    """--token, else $GATEWAY_TOKEN, else .var/dev-token, else empty."""
    path = var / "dev-token"
    return given or os.environ.get("GATEWAY_TOKEN") or (path.read_text().strip() if path.exists() else "")


def run(args: argparse.Namespace) -> int:
    """Runs the demo; returns the exit status."""
    token = token_of(args.token)
    if not token:
        print("no token: pass --token, set GATEWAY_TOKEN, or run `make run` first (.var/dev-token)")
        return 2
    target = target_of(args.target)
    try:
        tls = client_tls_from_env()
    except SettingsError as exc:
        print(f"inspection demo: bad setting: {exc}")
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(demo(target, token, tls))
    except grpc.aio.AioRpcError as err:
        print(f"{err.code().name} from the gateway at {target}: {err.details()}")
        return 1


async def accept_parcels(target: str, token: str, count: int, tls: ClientTLS | None = None) -> list[str]:
    """Verifies the development sender and accepts `count` parcels of books; returns their waybills."""
    metadata = (("authorization", f"Bearer {token}"),)
    async with open_channel(target, tls) as channel:
        stub = acceptance_pb2_grpc.AcceptanceStub(channel)
        verified = await stub.VerifySender(acceptance_pb2.VerifySenderRequest(
            document_type=common_pb2.DOCUMENT_TYPE_RESIDENT_ID, document_number=SENDER["number"],
            name=SENDER["name"], phone=SENDER["phone"], terminal_id=TERMINAL), metadata=metadata)
        print(f"VerifySender: {acceptance_pb2.Verdict.Name(verified.verdict)}")
        waybills = []
        for _ in range(count):
            answer = await stub.AcceptParcel(_parcel(verified.sender_ref), metadata=metadata)
            print(f"AcceptParcel {answer.waybill_no}: {acceptance_pb2.AcceptDecision.Name(answer.decision)}")
            waybills.append(answer.waybill_no)
        return waybills


def _parcel(sender_ref: str) -> acceptance_pb2.AcceptParcelRequest:
    waybill = f"SF{secrets.randbelow(10**12):012d}"
    return acceptance_pb2.AcceptParcelRequest(
        idempotency_key=f"scan-demo-{waybill}", waybill_no=waybill, sender_ref=sender_ref, weight_g=800,
        sender_address=common_pb2.Address(region_code="110101", detail="东城区东华门街道 1 号"),
        recipient=acceptance_pb2.Recipient(name="李娜", phone="13912345678", address=common_pb2.Address(
            region_code="310104", detail="徐汇区漕溪北路 88 号 1201 室")),
        items=[acceptance_pb2.Item(description="书籍", category="books", quantity=2, declared_value_fen=8800)],
        inspection=acceptance_pb2.OpenBoxInspection(outcome=acceptance_pb2.INSPECTION_OUTCOME_INSPECTED,
                                                     notes="两本书，已验视"), terminal_id=TERMINAL)


async def demo(target: str, token: str, tls: ClientTLS | None = None) -> int:
    """Accepts the parcels, starts the simulators and the adapter, prints each ack; 0 when all came."""
    first, second, third, fourth = await accept_parcels(target, token, 4, tls)
    unknown = f"SF{secrets.randbelow(10**12):012d}"
    with tempfile.TemporaryDirectory(prefix="inspection-demo-") as work:
        folders = Path(work) / "xray", Path(work) / "camera"
        for folder in folders:
            folder.mkdir()
        dws = DwsSimulator([record_for(1, first), record_for(2, unknown), record_for(3, first, "truncated")])
        scale = ScaleSimulator(parcel_plan([(second, 820), ("", 400)]))
        config = Config(target, token, Path(work) / "queue.sqlite", LOCATION, (
            Device("dws-1", "dws", Connection("127.0.0.1", await dws.start()), LOCATION, {"record_timeout_s": 0.5}),
            Device("scale-1", "scale", Connection("127.0.0.1", await scale.start(reader_port=0)), LOCATION,
                   {"reader": "reader-1", "poll_interval_s": 0.05}),
            Device("reader-1", "reader", Connection("127.0.0.1", scale.reader_port), LOCATION),
            Device("xray-1", "folder", Connection(directory=folders[0]), LOCATION, {"kind": "xray", "settle_s": 0.2}),
            Device("camera-1", "folder", Connection(directory=folders[1]), LOCATION, {"kind": "camera"})),
            backoff_initial_s=0.2, backoff_max_s=2.0, tls=tls)
        write_xray(folders[0], "bag-1", third, "dicom", seed=1)
        write_xray(folders[0], "bag-2", fourth, "png", seed=2, findings=[
            {"category": "BATTERY", "description": "lithium cells", "confidence": 0.93, "alarm": True}])
        write_camera(folders[1], "label-1", third, seed=3)
        try:
            return await _scan(config, expected=8)
        finally:
            await dws.close()
            await scale.close()


async def _scan(config: Config, expected: int, within_s: float = 60.0) -> int:
    queue = AsyncQueue(config.queue_path)
    adapter = Adapter(config, queue)
    seen: list[Decision] = []
    adapter.board.subscribe(lambda d: (seen.append(d), print(d.line(), flush=True)))
    tasks = [asyncio.ensure_future(job) for job in adapter.jobs()]
    try:
        for _ in range(int(within_s / 0.1)):
            if len(seen) >= expected:
                break
            await asyncio.sleep(0.1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await queue.close()
    if len(seen) < expected:
        print(f"only {len(seen)} of {expected} acks came from {config.target} within {within_s:.0f} s")
        return 1
    print(f"{len(seen)} readings, {sum(d.decision == 'PASS' for d in seen)} PASS, "
          f"{sum(d.decision != 'PASS' for d in seen)} diverted or rejected")
    return 0
