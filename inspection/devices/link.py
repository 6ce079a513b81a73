"""Byte links to devices: TCP through asyncio, serial through pyserial (on a worker thread), one interface.

A serial `port` may be a device path (/dev/ttyUSB0, COM3) or any pyserial URL (socket://host:port,
rfc2217://host:port for a serial-over-LAN converter), which is also how the tests drive the serial code
over a real socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import serial

from inspection.config import Connection

log = logging.getLogger("inspection.devices")


class Link:
    """A byte stream to a device. read() answers None when nothing came within wait_s, b"" when closed."""

    async def read(self, size: int, wait_s: float) -> bytes | None:
        """Up to size bytes; None when nothing came within wait_s; b"" once the link is closed."""
        raise NotImplementedError

    async def write(self, data: bytes) -> None:
        """Sends bytes."""
        raise NotImplementedError

    async def close(self) -> None:
        """Closes the link."""
        raise NotImplementedError


class TcpLink(Link):
    """A TCP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def read(self, size: int, wait_s: float) -> bytes | None:
        """StreamReader.read with a timeout."""
        # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation that lands as the read
        # completes, and a device that never stops sending (MT-SICS SIR) then makes its adapter uncancellable.
        try:
            async with asyncio.timeout(wait_s):
                return await self._reader.read(size)
        except TimeoutError:
            return None
        except ConnectionError:
            return b""

    async def write(self, data: bytes) -> None:
        """Writes and drains."""
        self._writer.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        """Closes the socket."""
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass  # already reset by the peer: closed either way


class SerialLink(Link):
    """A pyserial port; its blocking calls run on a thread of their own."""

    def __init__(self, port: serial.SerialBase) -> None:
        self._port = port
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="serial")

    async def _call(self, fn: Callable[..., bytes | None | int]) -> bytes | None | int:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def read(self, size: int, wait_s: float) -> bytes | None:
        """One byte within wait_s, then whatever else is waiting, up to size."""
        def blocking() -> bytes | None:
            try:
                self._port.timeout = wait_s
                first = self._port.read(1)
                if not first:
                    return None
                more = self._port.in_waiting
                return first + (self._port.read(min(more, size - 1)) if more else b"")
            except serial.SerialException:
                return b""  # the port went away (unplugged, or the socket:// peer closed)
        return await self._call(blocking)  # type: ignore[return-value]

    async def write(self, data: bytes) -> None:
        """Writes all bytes."""
        await self._call(lambda: self._port.write(data))

    async def close(self) -> None:
        """Closes the port."""
        await self._call(self._port.close)  # type: ignore[arg-type]
        self._pool.shutdown(wait=False)


async def open_link(conn: Connection, connect_s: float = 5.0) -> Link:
    """Connects to a device; raises OSError (serial.SerialException is one) when it cannot."""
    if conn.serial:
        port = await asyncio.to_thread(serial.serial_for_url, conn.serial, baudrate=conn.baud, timeout=0.2)
        return SerialLink(port)
    async with asyncio.timeout(connect_s):
        reader, writer = await asyncio.open_connection(conn.host, conn.port)
    return TcpLink(reader, writer)


def describe(conn: Connection) -> str:
    """Where a device is, for log lines."""
    return f"serial {conn.serial} @{conn.baud}" if conn.serial else f"tcp {conn.host}:{conn.port}"


class LinkClosed(ConnectionError):
    """The device closed the link."""


class LineReader:
    """Lines from a link, without their CR/LF. A line longer than max_line comes cut at max_line + 1 bytes,
    so the caller sees it is too long, and the rest of it, up to its end of line, is dropped."""

    def __init__(self, link: Link, max_line: int) -> None:
        self._link, self._max = link, max_line
        self._buffer, self._skipping = b"", False

    async def next(self, wait_s: float) -> bytes | None:
        """The next non-empty line; None when none came within wait_s; raises LinkClosed at the end."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while (line := self._take()) is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            chunk = await self._link.read(4096, remaining)
            if chunk == b"":
                raise LinkClosed("the device closed the link")
            self._buffer += chunk or b""
        return line

    def _take(self) -> bytes | None:
        while (cut := _line_end(self._buffer)) >= 0:
            line, self._buffer = self._buffer[:cut], self._buffer[cut + 1:]
            if self._skipping:
                self._skipping = False
            elif line:
                return line
        if len(self._buffer) > self._max and not self._skipping:
            line, self._buffer, self._skipping = self._buffer[:self._max + 1], b"", True
            return line
        if self._skipping:
            self._buffer = b""
        return None


async def lines(link: Link, max_line: int) -> AsyncIterator[bytes]:
    """Every line from a link until it closes (LineReader without timeouts)."""
    reader = LineReader(link, max_line)
    while True:
        try:
            line = await reader.next(3600.0)
        except LinkClosed:
            return
        if line is not None:
            yield line


def _line_end(buffer: bytes) -> int:
    ends = [i for i in (buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0]
    return min(ends) if ends else -1


async def reconnecting(name: str, conn: Connection, session: Callable[[Link], Awaitable[None]],
                       cap_s: float = 10.0) -> None:
    """Runs session over a link forever, reconnecting with a capped doubling delay when the link is lost."""
    delay = 0.2
    while True:
        try:
            link = await open_link(conn)
        except (OSError, TimeoutError) as err:
            log.warning("device %s: cannot connect (%s): %s; retrying in %.1f s", name, describe(conn), err, delay)
            await asyncio.sleep(delay)
            delay = min(cap_s, delay * 2)
            continue
        log.info("device %s: connected (%s)", name, describe(conn))
        delay = 0.2
        try:
            await session(link)
        except (OSError, serial.SerialException) as err:
            log.warning("device %s: link lost: %s", name, err)
        finally:
            await link.close()
        await asyncio.sleep(delay)
