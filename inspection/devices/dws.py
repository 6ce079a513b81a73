"""A dimension-weight-scan (DWS) station sending fixed-width, Cubiscan-style records over TCP or serial.

One record is 57 bytes, ASCII between STX and ETX:

    offset  bytes  field
    0       1      STX (0x02)
    1       1      record type: "D" (a dimension-weight record)
    2       6      the station's record sequence number, 000000 to 999999 (wraps)
    8       20     waybill, left-aligned, space-padded; all spaces when the station read no code
    28      6      length in mm, digits, zero-padded
    34      6      width in mm
    40      6      height in mm
    46      7      weight in grams
    53      1      status: "G" good, "N" no read (no code), "M" measurement failed
    54      2      checksum: two upper-case hex digits, the XOR of bytes 1 to 53 (type to status)
    56      1      ETX (0x03)

CR and LF between records are ignored. After each record the adapter answers ACK (0x06) once the reading
is written to the queue, or NAK (0x15) for a record it could not read (which is queued as an unreadable
event all the same); a station that got no answer sends the record again, and the sequence number with
the record's hash keeps a resent record from becoming a second reading.

Parsed strictly: a record cut short (a new STX before ETX, the link closing or no byte for
record_timeout_s mid-record, fewer than 57 bytes) is TRUNCATED_RECORD; bytes outside a record, a record
too long, a field that is not digits, an unknown record type or a waybill of the wrong shape are
MALFORMED_RECORD; BAD_CHECKSUM; UNKNOWN_STATUS; OUT_OF_RANGE (a side past 100000 mm); NO_READ and
MEASUREMENT_FAILED as the station says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from courier.v1 import inspection_pb2 as pb
from inspection.config import Device
from inspection.devices.link import Link, LinkClosed, reconnecting
from inspection.events import Sink, Unreadable, event, is_waybill, mark_unreadable, sha256_hex

STX, ETX, ACK, NAK = 0x02, 0x03, b"\x06", b"\x15"
RECORD_LEN = 57
MAX_SIDE_MM = 100_000
DIGITS = re.compile(rb"[0-9]+")


@dataclass(frozen=True)
class Record:
    """One parsed DWS record."""

    sequence: int
    waybill: str
    length_mm: int
    width_mm: int
    height_mm: int
    weight_g: int
    status: str


def checksum(body: bytes) -> bytes:
    """The two hex digits of the XOR of a record's bytes from the type to the status."""
    value = 0
    for byte in body:
        value ^= byte
    return f"{value:02X}".encode("ascii")


def format_record(sequence: int, waybill: str, dims_mm: tuple[int, int, int], weight_g: int,
                  status: str = "G") -> bytes:
    """A record as a station sends it (for the simulator and the tests)."""
    body = (b"D" + f"{sequence % 1_000_000:06d}".encode() + waybill.encode("ascii").ljust(20)[:20]
            + b"".join(f"{v:06d}".encode() for v in dims_mm) + f"{weight_g:07d}".encode() + status.encode("ascii"))
    return bytes([STX]) + body + checksum(body) + bytes([ETX])


def parse_record(frame: bytes) -> Record | Unreadable:
    """Parses one frame from STX to ETX; never raises."""
    if len(frame) < RECORD_LEN:
        return Unreadable("TRUNCATED_RECORD", f"{len(frame)} of {RECORD_LEN} bytes")
    if len(frame) > RECORD_LEN or frame[0] != STX or frame[-1] != ETX:
        return Unreadable("MALFORMED_RECORD", "not one STX ... ETX record of 57 bytes")
    body, check = frame[1:54], frame[54:56]
    if body[:1] != b"D":
        return Unreadable("MALFORMED_RECORD", "an unknown record type")
    if checksum(body) != check:
        return Unreadable("BAD_CHECKSUM", "the record's checksum does not match")
    numbers = [body[1:7], body[27:33], body[33:39], body[39:45], body[45:52]]
    if not all(DIGITS.fullmatch(n) for n in numbers):
        return Unreadable("MALFORMED_RECORD", "a numeric field holds other characters")
    return _fields(body, [int(n) for n in numbers])


def _fields(body: bytes, numbers: list[int]) -> Record | Unreadable:
    waybill_field, status = body[7:27], chr(body[52])
    waybill = waybill_field.rstrip(b" ").decode("ascii", errors="replace")
    if waybill and not is_waybill(waybill):
        return Unreadable("MALFORMED_RECORD", "the waybill field is not a waybill number")
    if status not in "GNM":
        return Unreadable("UNKNOWN_STATUS", "a DWS status this adapter does not know")
    if max(numbers[1:4]) > MAX_SIDE_MM:
        return Unreadable("OUT_OF_RANGE", f"a side past {MAX_SIDE_MM} mm")
    return Record(numbers[0], waybill, numbers[1], numbers[2], numbers[3], numbers[4], status)


class Framer:
    """Cuts a byte stream into frames: ("record", STX..ETX), ("truncated", a cut record), ("junk", bytes
    outside records, or a record too long to be one). Feed it bytes; call cut() when the stream pauses."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._in_record = False

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        """The frames completed by these bytes."""
        frames: list[tuple[str, bytes]] = []
        for byte in data:
            frames.extend(self._byte(byte))
        return frames

    def _byte(self, byte: int) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        if byte == STX:
            out = self.cut()
            self._in_record = True
        elif not self._in_record and byte in b"\r\n":
            return out  # line ends between records
        self._buffer.append(byte)
        if self._in_record and byte == ETX:
            out.append(("record", bytes(self._buffer)))
            self._buffer.clear()
            self._in_record = False
        elif len(self._buffer) > RECORD_LEN:
            out.append(("junk", bytes(self._buffer)))
            self._buffer.clear()
            self._in_record = False
        return out

    def cut(self) -> list[tuple[str, bytes]]:
        """Whatever is buffered, as a truncated record or as junk (line ends alone are dropped)."""
        data, in_record = bytes(self._buffer), self._in_record
        self._buffer.clear()
        self._in_record = False
        if in_record:
            return [("truncated", data)]
        return [("junk", data)] if data else []


def read_frame(kind: str, data: bytes) -> Record | Unreadable:
    """What a frame holds."""
    if kind == "record":
        return parse_record(data)
    if kind == "truncated":
        return Unreadable("TRUNCATED_RECORD", f"the record stopped after {len(data)} bytes")
    return Unreadable("MALFORMED_RECORD", "bytes outside a record")


class DwsAdapter:
    """Reads a DWS station's records, queues each as a DWS event, and answers ACK or NAK."""

    def __init__(self, device: Device, sink: Sink) -> None:
        self.device, self.sink = device, sink
        self.idle_s: float = device.opt("record_timeout_s")

    async def run(self) -> None:
        """Reads forever, reconnecting when the link drops."""
        await reconnecting(self.device.id, self.device.connection, self._session)

    async def _session(self, link: Link) -> None:
        framer = Framer()
        while True:
            data = await link.read(4096, self.idle_s)
            frames = framer.cut() if data is None or data == b"" else framer.feed(data)
            for kind, frame in frames:
                await self._frame(link, kind, frame)
            if data == b"":
                raise LinkClosed("the station closed the link")

    async def _frame(self, link: Link, kind: str, frame: bytes) -> None:
        parsed = read_frame(kind, frame)
        await self.sink.put(self.to_event(parsed, frame), source_key=self._key(parsed, frame))
        if kind != "junk" or isinstance(parsed, Record):
            await link.write(ACK if isinstance(parsed, Record) else NAK)

    def _key(self, parsed: Record | Unreadable, frame: bytes) -> str:
        # Only a whole record can come again (the station resends it when the ACK was lost).
        return f"dws:{self.device.id}:{parsed.sequence}:{sha256_hex(frame)}" if isinstance(parsed, Record) else ""

    def to_event(self, parsed: Record | Unreadable, frame: bytes) -> pb.ScanEvent:
        """The DWS event of one frame."""
        d = self.device
        if isinstance(parsed, Unreadable):
            return mark_unreadable(event(pb.SCAN_KIND_DWS, d.id, d.location), parsed, frame)
        ev = event(pb.SCAN_KIND_DWS, d.id, d.location, waybill=parsed.waybill, measurements=pb.Measurements(
            weight_g=parsed.weight_g, length_mm=parsed.length_mm, width_mm=parsed.width_mm,
            height_mm=parsed.height_mm))
        if parsed.status == "N" or not parsed.waybill:
            mark_unreadable(ev, Unreadable("NO_READ", "the station read no code"), frame)
        elif parsed.status == "M":
            mark_unreadable(ev, Unreadable("MEASUREMENT_FAILED", "the station could not measure"), frame)
        return ev
