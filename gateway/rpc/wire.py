"""Request bodies off the wire: bytes that do not parse, and enum numbers the proto does not define.

gRPC calls a method's deserializer before any handler runs, and an exception there is answered UNKNOWN
with a Python class name. So every deserializer at the door is wrapped: it never raises, and what it
cannot accept becomes a Rejected value that the interceptor answers INVALID_ARGUMENT with a plain message
naming the field where one can be named (a string that is not UTF-8, an undefined enum number, a Timestamp
outside what a Timestamp may hold).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from gateway.core.errors import FieldViolation

Deserializer = Callable[[bytes], Any]


@dataclass(frozen=True)
class Rejected:
    """A request body the door refuses, with why (as field violations)."""

    violations: tuple[FieldViolation, ...]


def safe_deserializer(deserialize: Deserializer | None, message_type: type[Message] | None) -> Deserializer | None:
    """Wraps a method's deserializer so that it returns Rejected instead of raising."""
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            message = deserialize(data)
        except (DecodeError, ValueError, TypeError, RuntimeError):  # upb reports bad bytes as DecodeError
            return Rejected(tuple(_undecodable(data, message_type)))
        if isinstance(message, Message):
            found = enum_violations(message)
            if found:
                return Rejected(tuple(found))
        return message

    return parse


def message_type_of(deserialize: Deserializer | None) -> type[Message] | None:
    """The message class behind a generated deserializer (`Class.FromString`), if it is one."""
    owner = getattr(deserialize, "__self__", None)
    return owner if isinstance(owner, type) and issubclass(owner, Message) else None


def _undecodable(data: bytes, message_type: type[Message] | None) -> Iterator[FieldViolation]:
    name = message_type.DESCRIPTOR.name if message_type is not None else "request"
    where = _bad_utf8(data, message_type.DESCRIPTOR) if message_type is not None else None
    if where:
        yield FieldViolation(where, "is not valid UTF-8 text")
    else:
        yield FieldViolation("", f"the request body is not a valid {name} message (malformed protobuf)")


# Wire types of the protobuf encoding.
_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise DecodeError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _bad_utf8(data: bytes, descriptor: Descriptor, prefix: str = "") -> str | None:
    """The path of the first string field that is not UTF-8, found by walking the wire format."""
    at, counts = 0, dict[int, int]()
    try:
        while at < len(data):
            key, at = _varint(data, at)
            number, wire = key >> 3, key & 7
            if wire == _VARINT:
                _, at = _varint(data, at)
            elif wire in (_I64, _I32):
                at += 8 if wire == _I64 else 4
            elif wire == _LEN:
                size, at = _varint(data, at)
                chunk, at = data[at:at + size], at + size
                field = descriptor.fields_by_number.get(number)
                if field is None:
                    continue
                path = _path(prefix, field, counts)
                if field.type == FieldDescriptor.TYPE_STRING:
                    try:
                        chunk.decode("utf-8")
                    except UnicodeDecodeError:
                        return path
                elif field.type == FieldDescriptor.TYPE_MESSAGE:
                    found = _bad_utf8(chunk, field.message_type, path)
                    if found:
                        return found
            else:
                return None
    except DecodeError:
        return None
    return None


def _path(prefix: str, field: FieldDescriptor, counts: dict[int, int]) -> str:
    name = f"{prefix}.{field.name}" if prefix else field.name
    if field.is_repeated:
        index = counts.get(field.number, 0)
        counts[field.number] = index + 1
        return f"{name}[{index}]"
    return name


# What a google.protobuf.Timestamp may hold: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_TIMESTAMP = "google.protobuf.Timestamp"
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


@functools.cache
def _enum_plan(descriptor: Descriptor) -> tuple[tuple[FieldDescriptor, frozenset[int] | None], ...]:
    """The fields of a message type that are enums, Timestamps or lead to them, with each enum's defined numbers."""
    plan: list[tuple[FieldDescriptor, frozenset[int] | None]] = []
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_ENUM:
            plan.append((field, frozenset(v.number for v in field.enum_type.values)))
        elif field.type == FieldDescriptor.TYPE_MESSAGE and not field.message_type.GetOptions().map_entry:
            if field.message_type.full_name == _TIMESTAMP or (
                    field.message_type is not descriptor and _enum_plan(field.message_type)):
                plan.append((field, None))
    return tuple(plan)


def _timestamp_violation(at: str, value: Message) -> FieldViolation | None:
    seconds, nanos = value.seconds, value.nanos  # type: ignore[attr-defined]
    if _MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos <= 999_999_999:
        return None
    return FieldViolation(at, f"is not a valid time (seconds {seconds}, nanos {nanos}): a Timestamp lies between "
                              "0001-01-01 and 9999-12-31 with nanos from 0 to 999999999")


def enum_violations(message: Message, prefix: str = "") -> list[FieldViolation]:
    """Every enum field of the message (nested ones included) holding a number its enum does not define, and
    every Timestamp holding seconds or nanos out of its range."""
    found: list[FieldViolation] = []
    for field, defined in _enum_plan(message.DESCRIPTOR):
        name = f"{prefix}.{field.name}" if prefix else field.name
        value = getattr(message, field.name)
        repeated = field.is_repeated
        if defined is not None:
            for i, number in enumerate(value if repeated else (value,)):
                if number not in defined:
                    at = f"{name}[{i}]" if repeated else name
                    found.append(FieldViolation(at, f"unknown value {number} (not defined in {field.enum_type.name})"))
        elif field.message_type.full_name == _TIMESTAMP:
            for i, item in enumerate(value if repeated else ((value,) if message.HasField(field.name) else ())):
                bad = _timestamp_violation(f"{name}[{i}]" if repeated else name, item)
                if bad is not None:
                    found.append(bad)
        elif repeated:
            for i, item in enumerate(value):
                found += enum_violations(item, f"{name}[{i}]")
        elif message.HasField(field.name):
            found += enum_violations(value, name)
    return found
