"""A DWS station simulator: a TCP server sending one record per parcel (inspection.devices.dws's layout).

Each record is sent, then the station waits up to answer_s for ACK or NAK; a record with neither (the
adapter gone) is sent again on the next connection, as a real station does. Bad output on demand, per
record: "truncated" (the first 30 bytes, then a pause), "checksum", "unknown-status", "junk" (a line of
text where a record should be).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque

from inspection.devices.dws import ACK, NAK, STX, checksum, format_record

log = logging.getLogger("inspection.simulators")
BAD_KINDS = ("truncated", "checksum", "unknown-status", "junk")


def record_for(sequence: int, waybill: str, bad: str = "", rng: random.Random | None = None) -> bytes:
    """A record for one parcel with plausible dimensions, or the bad output named."""
    rng = rng or random.Random(sequence)
    dims = (rng.randint(100, 800), rng.randint(80, 600), rng.randint(20, 400))
    record = format_record(sequence, waybill, dims, rng.randint(50, 30_000))
    if bad == "truncated":
        return record[:30]
    if bad == "checksum":
        return record[:54] + (b"00" if record[54:56] != b"00" else b"11") + record[56:]
    if bad == "unknown-status":
        body = record[1:53] + b"Z"
        return bytes([STX]) + body + checksum(body) + record[56:]
    if bad == "junk":
        return b"HELLO FROM THE DWS\r\n"
    if bad:
        raise ValueError(f"unknown bad output {bad!r} (known: {', '.join(BAD_KINDS)})")
    return record


class DwsSimulator:
    """Sends records to whoever connects, resending each until it is answered."""

    def __init__(self, records: list[bytes], interval_s: float = 0.05, answer_s: float = 5.0) -> None:
        self.pending = deque(records)
        self.interval_s, self.answer_s = interval_s, answer_s
        self.answers: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._clients: list[asyncio.StreamWriter] = []

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Listens; returns the port."""
        self._server = await asyncio.start_server(self._client, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stops listening and drops the clients."""
        if self._server is not None:
            self._server.close()
        for writer in self._clients:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.append(writer)
        try:
            while self.pending:
                if not await self._send(reader, writer, self.pending[0]):
                    return
                self.pending.popleft()
                await asyncio.sleep(self.interval_s)
            await reader.read()  # stay connected, as a station does, until the adapter goes
        except ConnectionError:
            pass  # the adapter went away; the unanswered record goes again on the next connection
        finally:
            writer.close()

    async def _send(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytes) -> bool:
        writer.write(record)
        await writer.drain()
        if not record.startswith(bytes([STX])):
            return True  # junk is not answered
        try:
            async with asyncio.timeout(self.answer_s):
                answer = await reader.readexactly(1)
        except (TimeoutError, asyncio.IncompleteReadError):
            return False
        self.answers.append(answer)
        return answer in (ACK, NAK)
