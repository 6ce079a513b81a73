"""What every `investigate` action shares: the gateway and token it uses, the case, errors, times and JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table
from rich.text import Text

from courier.v1 import common_pb2, investigation_pb2, investigation_pb2_grpc
from gateway.commands.demo import DEFAULT_TARGET, target_of
from gateway.security.tls import ClientTLS, client_tls_from_env, open_channel
from gateway.settings import SettingsError

# Dates and times without a zone are read, and every time is shown, in the zone the couriers work in.
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
CASE_VARIABLE = "INVESTIGATION_CASE"
CALL_TIMEOUT_S = 120.0  # a case's export can be large; no unary call should hang forever on a stuck gateway
# Bundles can be large: the gateway's own limit (GRPC_MAX_MESSAGE_BYTES) decides, not the client's 4 MB default.
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", -1),
                   # A dead connection under a quiet watch is found by pings; the server allows one per 5 minutes.
                   ("grpc.keepalive_time_ms", 330_000), ("grpc.keepalive_timeout_ms", 20_000),
                   ("grpc.http2.max_pings_without_data", 0))


@dataclass
class Session:
    """One invocation: where the gateway is, the caller's token, the case, and how to print."""

    target: str
    token: str
    case_no: str
    as_json: bool
    out: Console = field(default_factory=Console)
    stub: investigation_pb2_grpc.InvestigationStub | None = None
    tls: ClientTLS | None = None  # from the GATEWAY_TLS_* client settings; None: plaintext

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The call metadata carrying the token."""
        return (("authorization", f"Bearer {self.token}"),)

    def open(self) -> grpc.aio.Channel:
        """A new channel to the gateway (a watch opens one per attempt, so each reconnect starts afresh)."""
        return open_channel(self.target, self.tls, CHANNEL_OPTIONS)

    @property
    def investigation(self) -> investigation_pb2_grpc.InvestigationStub:
        """The Investigation stub on this invocation's channel."""
        assert self.stub is not None, "the channel is opened by launch()"
        return self.stub


Action = Callable[[Session, argparse.Namespace], Awaitable[int]]


def token_of(given: str) -> str:
    """--token, else $GATEWAY_TOKEN, else make run's .var/dev-token; empty when there is none."""
    if given:
        return given
    if os.environ.get("GATEWAY_TOKEN"):
        return os.environ["GATEWAY_TOKEN"]
    path = Path(".var/dev-token")
    return path.read_text().strip() if path.exists() else ""


def common_options(*, case: bool) -> argparse.ArgumentParser:
    """The options every action takes; with case, --case too (required unless $INVESTIGATION_CASE is set)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--target", default="", help=f"HOST:PORT of the gateway (default: $GATEWAY_LISTEN, then make "
                                                f"run's .var/env, else {DEFAULT_TARGET})")
    p.add_argument("--token", default="", help="an investigator's token (default: $GATEWAY_TOKEN, then "
                                               ".var/dev-token)")
    p.add_argument("--json", dest="as_json", action="store_true",
                   help="print each answer as one JSON line (the proto's JSON, field names as in the proto)")
    if case:
        default = os.environ.get(CASE_VARIABLE, "")
        p.add_argument("--case", dest="case_no", metavar="CASE_NO", default=default, required=not default,
                       help=f"the case this call belongs to (default: ${CASE_VARIABLE})")
    return p


def launch(action: Action, *, interrupted: int = 130) -> Callable[[argparse.Namespace], int]:
    """The function argparse calls: resolves target and token, runs the action, turns failures into statuses."""
    def run(args: argparse.Namespace) -> int:
        session = Session(target_of(args.target), token_of(args.token), getattr(args, "case_no", ""), args.as_json)
        if not session.token:
            print("gateway: no token: pass --token, set GATEWAY_TOKEN, or run `make run` first (.var/dev-token)",
                  file=sys.stderr)
            return 2
        try:
            session.tls = client_tls_from_env()
        except SettingsError as exc:
            print(f"gateway: bad setting: {exc}", file=sys.stderr)
            return 2
        try:
            return asyncio.run(_call(action, session, args))
        except KeyboardInterrupt:
            return interrupted
    return run


async def _call(action: Action, session: Session, args: argparse.Namespace) -> int:
    async with session.open() as channel:
        session.stub = investigation_pb2_grpc.InvestigationStub(channel)
        try:
            return await action(session, args)
        except grpc.aio.AioRpcError as error:
            report(error, session.target)
            return 1


def report(error: grpc.aio.AioRpcError, target: str) -> None:
    """One line naming the code, the gateway and the details, then each bad field on its own line (stderr)."""
    print(f"{error.code().name} from the gateway at {target}: {error.details()}", file=sys.stderr)
    for name, description in bad_fields(error):
        print(f"  {name}: {description}", file=sys.stderr)
    if error.code() is grpc.StatusCode.UNAUTHENTICATED:
        print("  the token was not accepted there: pass --target and --token to say which gateway and token",
              file=sys.stderr)


def bad_fields(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The google.rpc.BadRequest field violations a failed call carries, in order."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(error)
    except ValueError:  # a status whose details disagree with the call's code: the one line says enough
        return []
    found: list[tuple[str, str]] = []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [(v.field, v.description) for v in bad.field_violations]
    return found


def moment(text: str) -> datetime:
    """An ISO 8601 date or time: a date alone is its start; without a zone, Asia/Shanghai's (argparse type)."""
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r} (e.g. 2026-03-01 or "
                                         "2026-03-01T08:30+08:00)") from None
    return found if found.tzinfo else found.replace(tzinfo=LOCAL_ZONE)


def timestamp(when: datetime | None) -> Timestamp | None:
    """A datetime as a protobuf Timestamp (None stays None, so the field stays unset)."""
    if when is None:
        return None
    found = Timestamp()
    found.FromDatetime(when.astimezone(UTC))
    return found


def shown_time(ts: Timestamp) -> str:
    """A Timestamp in Asia/Shanghai time to the second; empty when it is unset."""
    if not ts.seconds and not ts.nanos:
        return ""
    return ts.ToDatetime(tzinfo=UTC).astimezone(LOCAL_ZONE).isoformat(sep=" ", timespec="seconds")


def as_dict(message: Message) -> dict[str, Any]:
    """The proto3 JSON form of a message, every field present, integers as numbers."""
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True,
                         unquote_int64_if_possible=True)


def emit(message: Message | dict[str, Any]) -> None:
    """Prints one JSON line (stdout, flushed: a script reading a watch sees each lead as it comes)."""
    body = message if isinstance(message, dict) else as_dict(message)
    sys.stdout.write(json.dumps(body, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def cell(value: object) -> Text:
    """A table cell of recorded text: never read as rich markup (a note may hold brackets), never cut short."""
    return Text("" if value is None else str(value), overflow="fold")


def enum_name(enum: Any, value: int, prefix: str) -> str:
    """An enum value's name without its prefix ("HELD" for PARCEL_STATE_HELD); empty when unspecified."""
    name = enum.Name(value) if value in enum.values() else str(value)
    return "" if name.endswith("_UNSPECIFIED") else name.removeprefix(prefix)


def region(code: str) -> str:
    """A division code with its name when the division table knows it: "310104 上海市徐汇区"."""
    from gateway.core.identity.regions import region_name

    name = region_name(code) if len(code) == 6 and code.isdigit() else None
    return f"{code} {name}" if name else code


def say(out: Console, line: str, style: str = "") -> None:
    """Prints one line as written: no markup, and not broken at the terminal's width (a command stays whole)."""
    out.print(Text(line, style=style), soft_wrap=True)


def facts(rows: list[tuple[str, object]]) -> Table:
    """A grid of named facts, one a row, leaving out the empty ones."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in rows:
        if value not in ("", None):
            grid.add_row(cell(key), cell(value))
    return grid


def party(p: investigation_pb2.PartyRecord, *, address: bool = True) -> str:
    """A party in full, one fact a line: name, document, credit code, phone, region (and the address)."""
    kind = enum_name(common_pb2.DocumentType, p.document_type, "DOCUMENT_TYPE_")
    parts = [p.name, f"{kind} {p.document_number}".strip(), f"credit code {p.credit_code}" if p.credit_code else "",
             p.phone, region(p.region_code), p.address if address else ""]
    return "\n".join(x for x in parts if x)
