"""Driving any method of the gateway with raw bodies over a real channel, and judging its answer.

A body is sent as bytes (no client-side serializer), so what reaches the server is exactly what the fuzzer
made: a generated message, or bytes that are not one. Every call has a deadline, so a hang fails the test.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.server import SERVICE_NAMES

# Never an answer to any input: a bug (INTERNAL, UNKNOWN), a lie about data (DATA_LOSS), or a hang.
FORBIDDEN = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS,
                       grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED})
CALL_DEADLINE_S = 20.0   # generous: the machine is shared and loaded; a real hang still fails
WATCH_WINDOW_S = 0.4     # a watch that was accepted waits for leads: give it this long, then hang up


def served_methods() -> list[MethodDescriptor]:
    """Every method of every service the gateway serves, from the descriptors (a new RPC is included)."""
    pool = descriptor_pool.Default()
    return [m for name in SERVICE_NAMES for m in pool.FindServiceByName(name).methods]


def path_of(method: MethodDescriptor) -> str:
    """The method's gRPC path."""
    return f"/{method.containing_service.full_name}/{method.name}"


@dataclass
class Answer:
    """What one call came back with."""

    code: grpc.StatusCode
    details: str
    violations: list[tuple[str, str]]     # google.rpc.BadRequest (field, description)
    responses: list[bytes]
    watching: bool = False                 # a server stream still open (waiting) when we hung up
    client_lost_status: bool = False       # the client library replaced the server's status (see send)

    def describe(self) -> str:
        """One line for an assertion message."""
        return f"{self.code.name}: {self.details!r} {self.violations}"


def _violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)
    found: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [(v.field, v.description) for v in bad.field_violations]
    return found


# grpcio's asyncio client replaces the server's status with its own INTERNAL "Internal error from Core" (debug
# string: Failed "execute_batch" ... SendMessageOperation) when the server ended a client stream, say with
# INVALID_ARGUMENT for its first message, while the client was still writing the next (grpc/grpc#36066; fix
# proposed in grpc/grpc#43486). The server answered correctly; the client lost it. Such a call is sent again,
# up to this many times, so the server's own answer is judged.
CLIENT_LOST_STATUS_RETRIES = 8


def _client_lost_status(error: grpc.aio.AioRpcError) -> bool:
    return (error.code() == grpc.StatusCode.INTERNAL and error.details() == "Internal error from Core"
            and "execute_batch" in (error.debug_error_string() or ""))


async def send(channel: grpc.aio.Channel, method: MethodDescriptor, bodies: list[bytes],
               metadata: tuple[tuple[str, str], ...]) -> Answer:
    """Calls the method with these bodies (one for a unary request; any number for a client stream)."""
    for _ in range(CLIENT_LOST_STATUS_RETRIES):
        answer = await _send_once(channel, method, bodies, metadata)
        if not answer.client_lost_status:
            return answer
    return answer


async def _send_once(channel: grpc.aio.Channel, method: MethodDescriptor, bodies: list[bytes],
                     metadata: tuple[tuple[str, str], ...]) -> Answer:
    path = path_of(method)
    responses: list[bytes] = []
    try:
        if method.client_streaming and method.server_streaming:
            call = channel.stream_stream(path)(iter(bodies), metadata=metadata, timeout=CALL_DEADLINE_S)
            responses = [r async for r in call]
        elif method.client_streaming:
            responses = [await channel.stream_unary(path)(iter(bodies), metadata=metadata, timeout=CALL_DEADLINE_S)]
        elif method.server_streaming:
            return await _watch(channel.unary_stream(path)(bodies[0], metadata=metadata, timeout=CALL_DEADLINE_S))
        else:
            responses = [await channel.unary_unary(path)(bodies[0], metadata=metadata, timeout=CALL_DEADLINE_S)]
    except grpc.aio.AioRpcError as error:
        return Answer(error.code(), error.details() or "", _violations(error), responses,
                      client_lost_status=method.client_streaming and _client_lost_status(error))
    return Answer(grpc.StatusCode.OK, "", [], responses)


async def _watch(call: grpc.aio.UnaryStreamCall) -> Answer:
    """Reads a server stream that may stay open: its first message, its end, or WATCH_WINDOW_S of waiting."""
    responses: list[bytes] = []
    try:
        first = await asyncio.wait_for(call.read(), WATCH_WINDOW_S)
        if first is not grpc.aio.EOF:
            responses.append(first)
    except TimeoutError:
        call.cancel()
        return Answer(grpc.StatusCode.OK, "", [], responses, watching=True)
    except grpc.aio.AioRpcError as error:
        return Answer(error.code(), error.details() or "", _violations(error), responses)
    code = await call.code()
    if code == grpc.StatusCode.OK or responses:
        call.cancel()
        return Answer(grpc.StatusCode.OK, "", [], responses, watching=True)
    return Answer(code, await call.details() or "", [], responses)


_INDEX = re.compile(r"\[\d+\]$")
# Violations about the request as a whole rather than one field: Screen with nothing to screen ("request"), a
# search with no filter besides the case ("filters").
WHOLE_REQUEST = frozenset({"request", "filters"})
_STREAM_POSITION = re.compile(r"^message \d+(: )?")


def names_a_field(path: str, descriptor: Descriptor) -> bool:
    """True when a violation's field path (items[0].description; "message 2: event_id" on a stream) names a
    field or oneof of the request type, all the way down."""
    path = _STREAM_POSITION.sub("", path)
    if path in WHOLE_REQUEST:
        return True
    if not path:
        return False
    current: Descriptor | None = descriptor
    for part in path.split("."):
        part = _INDEX.sub("", part)
        if current is None:
            return False
        if part in current.fields_by_name:
            current = current.fields_by_name[part].message_type
        elif part in current.oneofs_by_name:
            current = None
        else:
            return False
    return True
