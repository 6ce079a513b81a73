"""Hypothesis strategies for hostile input: any protobuf message built from its descriptor, bodies that are not
protobuf at all, and corrupt images.

`messages(descriptor)` fills every field kind the protos use (strings, bytes, ints at their bounds, enums with
defined and undefined numbers, nested and repeated messages, oneofs, proto3 `optional`), so a field or an RPC
added later is fuzzed without touching this file. `mutations(seed)` starts from a valid request and spoils some
of its fields, so the fuzzer also gets past the first validation and into the use cases.
"""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

# Hostile pieces of text: SQL, format strings, control characters, NUL, bidirectional and invisible marks,
# line and paragraph separators, non-BMP characters, and what normalisation folds.
NASTY_TEXT = (
    "", " ", "'", "\"", "'; DROP TABLE shipments; --", "' OR '1'='1", "\\", "%s%s%n", "{0}{name}", "$1",
    "\x00", "a\x00b", "\x01", "\t", "\n", "\r\n", "\x1b[31m", "\x7f", "\x85", "\x9f",
    "\u200b", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2028", "\u2029", "\ufeff", "\ufffd", "\uffff",
    "😀", "𠀀", "张伟", "張偉", "阿沛·阿旺晋美", "Ｓ Ｆ１２３", "ﬁ", "İ", "ß", "e\u0301", "Ω",
    "110101199003071233", "13800138000", "SF1234567890", "CASE-2026-0042", "110101", "高仿", "1:1",
    "null", "None", "NaN", "-1", "0", "9" * 40, "A" * 65, "<script>", "../../etc/passwd", "%00", "\\x00",
)
HUGE_TEXT_MAX = 100_000  # well under GRPC_MAX_MESSAGE_BYTES (16 MiB), big enough for every field's limit
INT32 = (-(2**31), -1, 0, 1, 2**31 - 1)
INT64 = (-(2**63), -(2**31) - 1, -1, 0, 1, 8, 32, 500, 1000, 100_000, 10**8, 10**11, 2**31, 2**63 - 1)
UINT64 = (0, 1, 2**32 - 1, 2**64 - 1)


def hostile_text() -> st.SearchStrategy[str]:
    """Any valid-UTF-8 text, weighted towards what breaks code: nasty pieces, their mixtures, huge and empty."""
    pieces = st.sampled_from(NASTY_TEXT)
    return st.one_of(
        pieces,
        st.lists(st.one_of(pieces, st.text(max_size=8)), min_size=1, max_size=6).map("".join),
        st.text(st.characters(codec="utf-8"), max_size=80),
        st.tuples(pieces, st.integers(1, HUGE_TEXT_MAX)).map(lambda p: ((p[0] or "x") * p[1])[:p[1]]),
    )


def hostile_bytes() -> st.SearchStrategy[bytes]:
    """Bytes fields: empty, junk, huge, and real images (whole, truncated or with a byte flipped)."""
    return st.one_of(st.just(b""), st.binary(max_size=64), st.integers(1, HUGE_TEXT_MAX).map(lambda n: b"\xff" * n),
                     corrupt_images())


def _int_strategy(bounds: tuple[int, ...], low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(bounds), st.integers(low, high))


_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_INT32: _int_strategy(INT32, -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: _int_strategy(INT32, -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: _int_strategy(INT32, -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: _int_strategy(INT64, -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: _int_strategy(INT64, -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: _int_strategy(INT64, -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: _int_strategy((0, 1, 2**32 - 1), 0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: _int_strategy((0, 1, 2**32 - 1), 0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: _int_strategy(UINT64, 0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: _int_strategy(UINT64, 0, 2**64 - 1),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32, allow_nan=True, allow_infinity=True),
}


def field_value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    """One value (not a list) for a field of any type."""
    if field.type == FieldDescriptor.TYPE_STRING:
        return hostile_text()
    if field.type == FieldDescriptor.TYPE_BYTES:
        return hostile_bytes()
    if field.type == FieldDescriptor.TYPE_ENUM:
        defined = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(defined), st.sampled_from((-1, max(defined) + 1, 2**31 - 1, -(2**31))),
                         st.integers(-(2**31), 2**31 - 1))
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    return _SCALARS[field.type]


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    if field.is_repeated:
        target = getattr(message, field.name)
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value:
                target.add().CopyFrom(item)
        else:
            target.extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(message, field.name).CopyFrom(value)
    else:
        setattr(message, field.name, value)


def _list_of(field: FieldDescriptor, depth: int) -> st.SearchStrategy[list[Any]]:
    one = field_value(field, depth)
    many = 60 if field.type != FieldDescriptor.TYPE_MESSAGE else 12  # past limits such as 50 items
    return st.one_of(st.lists(one, max_size=3), st.lists(one, min_size=4, max_size=many)) if depth < 2 \
        else st.lists(one, max_size=2)


@st.composite
def _message(draw: st.DrawFn, descriptor: Descriptor, depth: int) -> Message:
    message = GetMessageClass(descriptor)()
    if depth > 3:
        return message
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue  # left unset (for a oneof, another member may be set; the last one set wins)
        value = draw(_list_of(field, depth) if field.is_repeated else field_value(field, depth))
        _assign(message, field, value)
    return message


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of this type: each field set or not, to any value its type can hold (see module doc)."""
    return _message(descriptor, depth)


@st.composite
def mutations(draw: st.DrawFn, seed: Message) -> Message:
    """A valid message with some of its fields (at any depth) replaced by generated values or cleared."""
    message = type(seed)()
    message.CopyFrom(seed)
    _mutate(draw, message, 0)
    return message


def _mutate(draw: st.DrawFn, message: Message, depth: int) -> None:
    for field in message.DESCRIPTOR.fields:
        what = draw(st.sampled_from(("keep", "keep", "keep", "replace", "clear", "into")))
        if what == "clear":
            message.ClearField(field.name)
        elif what == "replace":
            message.ClearField(field.name)
            _assign(message, field, draw(_list_of(field, depth) if field.is_repeated else field_value(field, depth)))
        elif what == "into" and field.type == FieldDescriptor.TYPE_MESSAGE and depth < 3:
            if field.is_repeated:
                for item in getattr(message, field.name):
                    _mutate(draw, item, depth + 1)
            elif message.HasField(field.name):
                _mutate(draw, getattr(message, field.name), depth + 1)


# -- bodies that are not protobuf, or not valid UTF-8 where a string must be --

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string_field_numbers(descriptor: Descriptor) -> list[int]:
    return [f.number for f in descriptor.fields if f.type == FieldDescriptor.TYPE_STRING]


# Text that is not UTF-8: lone surrogates the way CESU-8 / Java's modified UTF-8 writes them, overlong forms,
# a cut multibyte sequence, bytes UTF-8 never uses.
BAD_UTF8 = (b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb8\x80", b"\xc0\x80", b"\xe0\x80\xaf",
            b"\xe4\xb8", b"\xff", b"\xfe\xff", b"\x80", b"\xf4\x90\x80\x80", "张".encode("gbk"))


@st.composite
def bad_utf8_bodies(draw: st.DrawFn, descriptor: Descriptor) -> tuple[bytes, str]:
    """A body that is a valid message except that one string field holds bytes that are not UTF-8, with the
    name of that field."""
    fields = [f for f in descriptor.fields if f.type == FieldDescriptor.TYPE_STRING]
    field = draw(st.sampled_from(fields))
    good = draw(st.text(max_size=6)).encode()
    bad = good + draw(st.sampled_from(BAD_UTF8)) + draw(st.text(max_size=6)).encode()
    prefix = draw(messages(descriptor)).SerializeToString() if draw(st.booleans()) else b""
    return prefix + _varint(field.number << 3 | 2) + _varint(len(bad)) + bad, field.name


@st.composite
def malformed_bodies(draw: st.DrawFn, descriptor: Descriptor) -> bytes:
    """Bytes that do not parse as the message: truncated varints and lengths, lengths past the end, wire types
    that do not exist, a valid message cut short, and random junk (which may, rarely, parse)."""
    valid = draw(messages(descriptor)).SerializeToString()
    number = draw(st.sampled_from([f.number for f in descriptor.fields] or [1]))
    return draw(st.one_of(
        st.just(_varint(number << 3) + b"\xff" * draw(st.integers(1, 10))),          # a varint that never ends
        st.just(_varint(number << 3 | 2) + _varint(draw(st.integers(1, 2**30)))),    # a length past the end
        st.just(_varint(number << 3 | draw(st.sampled_from((6, 7))))),                # wire types 6 and 7
        st.just(_varint(number << 3 | 3)),                                             # a group never closed
        st.just(b"\x00" + valid),                                                      # field number 0
        st.just(valid + b"\x80") if valid else st.just(b"\x80"),                       # trailing cut varint
    ))


# -- images --

def _photo(width: int = 48, height: int = 32) -> np.ndarray:
    rng = np.random.default_rng(width * 1000 + height)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def real_image(ext: str, width: int = 48, height: int = 32) -> bytes:
    """A real JPEG or PNG made with OpenCV."""
    ok, encoded = cv2.imencode(ext, _photo(width, height))
    assert ok
    return encoded.tobytes()


@functools.cache
def real_dicom(waybill: str = "SF1234567890", seed: int = 1, size: int = 32) -> bytes:
    """A real DICOM (DICOS-like X-ray) file made with pydicom, naming a waybill as the Patient ID; made once per
    process, since its UIDs are fresh each time and hypothesis needs the same bytes to replay an example."""
    from inspection.simulators.files import dicos_bytes, xray_pixels

    return dicos_bytes(waybill, xray_pixels(seed, size))


@st.composite
def corrupt_images(draw: st.DrawFn) -> bytes:
    """A real JPEG, PNG or DICOM: whole, truncated, with bytes flipped, or its header grafted onto junk."""
    kind = draw(st.sampled_from(("jpeg", "png", "dicom")))
    good = real_dicom() if kind == "dicom" else real_image(".jpg" if kind == "jpeg" else ".png")
    how = draw(st.sampled_from(("whole", "truncate", "flip", "graft")))
    if how == "truncate":
        return good[:draw(st.integers(0, len(good) - 1))]
    if how == "flip":
        data = bytearray(good)
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if how == "graft":
        return good[:draw(st.integers(2, 200))] + draw(st.binary(min_size=0, max_size=200))
    return good
