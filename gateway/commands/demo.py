"""`python -m gateway demo`: one parcel through verify, accept, store and dispatch, each answer printed."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.panel import Panel
from rich.pretty import Pretty

from courier.v1 import acceptance_pb2, acceptance_pb2_grpc, common_pb2, custody_pb2, custody_pb2_grpc
from gateway.security.tls import ClientTLS, client_tls_from_env, open_channel
from gateway.settings import SettingsError

console = Console()
DEFAULT_TARGET = "127.0.0.1:50051"


def register(sub: Any) -> None:
    """Adds the `demo` command."""
    p = sub.add_parser("demo", help="verify, accept, store and dispatch one parcel, printing each answer")
    p.add_argument("--target", default="",
                   help=f"HOST:PORT of the gateway (default: $GATEWAY_LISTEN, else {DEFAULT_TARGET})")
    p.add_argument("--token", default="", help="defaults to $GATEWAY_TOKEN, then .var/dev-token")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs the demo against --target; returns the exit status."""
    try:
        tls = client_tls_from_env()
    except SettingsError as exc:
        print(f"gateway: bad setting: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_demo(target_of(args.target), args.token, tls))


def target_of(given: str) -> str:
    """--target, else GATEWAY_LISTEN (the environment's, then make run's .var/env), else the default port."""
    from gateway.commands.dev import dev_env

    return given or dev_env().get("GATEWAY_LISTEN") or DEFAULT_TARGET
# The demo sender is in the simulator's demo registry (gateway/data/demo_registry.json).
DEMO_SENDER = {"number": "110101199003071233", "name": "张伟", "phone": "13800138000"}


def _token(given: str) -> str:
    if given:
        return given
    if os.environ.get("GATEWAY_TOKEN"):
        return os.environ["GATEWAY_TOKEN"]
    path = Path(".var/dev-token")
    return path.read_text().strip() if path.exists() else ""


def _show(title: str, message: Any) -> None:
    body = MessageToDict(message, preserving_proto_field_name=True)
    console.print(Panel(Pretty(body, expand_all=True), title=title, expand=False))


def _accept_request(sender_ref: str) -> acceptance_pb2.AcceptParcelRequest:
    waybill = f"SF{secrets.randbelow(10**12):012d}"
    return acceptance_pb2.AcceptParcelRequest(
        idempotency_key=f"demo-{waybill}", waybill_no=waybill, sender_ref=sender_ref,
        sender_address=common_pb2.Address(region_code="110101", detail="东城区东华门街道 1 号"),
        recipient=acceptance_pb2.Recipient(
            name="李娜", phone="13912345678",
            address=common_pb2.Address(region_code="310104", detail="徐汇区漕溪北路 88 号 1201 室")),
        items=[acceptance_pb2.Item(description="书籍", category="books", quantity=2, declared_value_fen=8800)],
        inspection=acceptance_pb2.OpenBoxInspection(
            outcome=acceptance_pb2.INSPECTION_OUTCOME_INSPECTED, notes="两本书，已验视"),
        terminal_id="demo-terminal-01",
    )


async def run_demo(target: str, token: str, tls: ClientTLS | None = None) -> int:
    """Runs the demo (over TLS when `tls` is given); returns a process exit code."""
    token = _token(token)
    if not token:
        console.print("no token: pass --token, set GATEWAY_TOKEN, or run `make run` first (.var/dev-token)")
        return 2
    metadata = (("authorization", f"Bearer {token}"),)
    async with open_channel(target, tls) as channel:
        acceptance = acceptance_pb2_grpc.AcceptanceStub(channel)
        custody = custody_pb2_grpc.CustodyStub(channel)
        try:
            verified = await acceptance.VerifySender(acceptance_pb2.VerifySenderRequest(
                document_type=common_pb2.DOCUMENT_TYPE_RESIDENT_ID, document_number=DEMO_SENDER["number"],
                name=DEMO_SENDER["name"], phone=DEMO_SENDER["phone"], terminal_id="demo-terminal-01",
            ), metadata=metadata)
            _show("VerifySender", verified)
            accepted = await acceptance.AcceptParcel(_accept_request(verified.sender_ref), metadata=metadata)
            _show("AcceptParcel", accepted)
            if accepted.decision != acceptance_pb2.ACCEPT_DECISION_ACCEPTED:
                decision = acceptance_pb2.AcceptDecision.Name(accepted.decision)
                console.print(f"the parcel was not accepted ({decision}): the hits above say why; the demo stops")
                return 1
            move = custody_pb2.CustodyMoveRequest(waybill_no=accepted.waybill_no, location="BJ-DC-01/A3",
                                                  terminal_id="demo-terminal-01")
            _show("StoreParcel", await custody.StoreParcel(move, metadata=metadata))
            _show("DispatchParcel", await custody.DispatchParcel(move, metadata=metadata))
            _show("GetParcel", await custody.GetParcel(
                custody_pb2.GetParcelRequest(waybill_no=accepted.waybill_no), metadata=metadata))
            try:
                await custody.StoreParcel(move, metadata=metadata)
            except grpc.aio.AioRpcError as err:
                console.print(f"StoreParcel again (not allowed): {err.code().name}: {err.details()}")
        except grpc.aio.AioRpcError as err:
            console.print(f"[red]{err.code().name}[/red] from the gateway at {target}: {err.details()}")
            if err.code() is grpc.StatusCode.UNAUTHENTICATED:
                console.print("the token was not accepted there: is that the gateway `make run` started "
                              "(its token is in .var/dev-token)? Pass --target and --token to say which")
            return 1
    return 0
