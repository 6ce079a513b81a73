"""A barcode reader (hand-held or fixed over the belt) that sends one code per line over TCP.

Protocol: each read is one line of ASCII ending CR, LF or CR LF; the reader's "no read" is the line
NOREAD. A line is the waybill when it is 8 to 32 characters [A-Z0-9-] once surrounding spaces are dropped;
nothing is upper-cased or repaired (never a guess). Anything else is unreadable: NO_READ, NOT_A_WAYBILL
(printable ASCII of another shape), MALFORMED_LINE (not ASCII, control characters, or longer than 256
bytes).

A reader on its own sends each line as a HANDHELD event. A reader named by a scale's `reader` option is
part of that scale station instead: its codes pair with the scale's weights (inspection.devices.scale).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from courier.v1 import inspection_pb2 as pb
from inspection.config import Device
from inspection.devices.link import Link, lines, reconnecting
from inspection.events import Sink, Unreadable, event, is_waybill, unreadable_event

__all__ = ["ReaderAdapter", "is_waybill", "parse"]

MAX_LINE = 256
NO_READ = "NOREAD"


def parse(line: bytes) -> str | Unreadable:
    """The waybill a line carries, or why it is unreadable; never raises."""
    if len(line) > MAX_LINE:
        return Unreadable("MALFORMED_LINE", f"a line longer than {MAX_LINE} bytes")
    try:
        text = line.decode("ascii").strip(" ")
    except UnicodeDecodeError:
        return Unreadable("MALFORMED_LINE", "not ASCII")
    if not text.isprintable():
        return Unreadable("MALFORMED_LINE", "control characters in the line")
    if text == NO_READ:
        return Unreadable("NO_READ", "the reader could not read the label")
    if not is_waybill(text):
        return Unreadable("NOT_A_WAYBILL", "a code that is not a waybill number")
    return text


CodeHandler = Callable[[str | Unreadable, bytes], Awaitable[None]]


class ReaderAdapter:
    """Reads lines from a reader; each goes to `on_code` (a scale station) or becomes a HANDHELD event."""

    def __init__(self, device: Device, sink: Sink, on_code: CodeHandler | None = None) -> None:
        self.device, self.sink = device, sink
        self.on_code = on_code or self._handheld

    async def run(self) -> None:
        """Reads forever, reconnecting when the link drops."""
        await reconnecting(self.device.id, self.device.connection, self._session)

    async def _session(self, link: Link) -> None:
        async for line in lines(link, MAX_LINE):
            await self.on_code(parse(line), line)

    async def _handheld(self, code: str | Unreadable, raw: bytes) -> None:
        d = self.device
        if isinstance(code, Unreadable):
            await self.sink.put(unreadable_event(pb.SCAN_KIND_HANDHELD, d.id, d.location, code, raw))
        else:
            await self.sink.put(event(pb.SCAN_KIND_HANDHELD, d.id, d.location, waybill=code))
