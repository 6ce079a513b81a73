"""A barcode reader simulator: a TCP server sending one code per line (CR LF) to whoever connects.

Lines not yet sent when the adapter disconnects go to the next connection. Bad output on demand: the
codes "noread" (the reader's NOREAD) and "malformed" (bytes that are not ASCII) stand for themselves.
"""

from __future__ import annotations

import asyncio
from collections import deque

SPECIAL = {"noread": b"NOREAD\r\n", "malformed": b"\xff\xfe\x00\x07SF12\r\n"}


def code_line(code: str) -> bytes:
    """The line the reader sends for a code (or a special bad output)."""
    return SPECIAL.get(code) or code.encode("ascii") + b"\r\n"


class ReaderSimulator:
    """Sends its lines, one every interval_s, to the connected adapter."""

    def __init__(self, codes: list[str], interval_s: float = 0.1) -> None:
        self.pending = deque(code_line(c) for c in codes)
        self.interval_s = interval_s
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
                writer.write(self.pending[0])
                await writer.drain()
                self.pending.popleft()
                await asyncio.sleep(self.interval_s)
            await reader.read()
        except ConnectionError:
            pass  # the adapter went away; what is left goes to the next connection
        finally:
            writer.close()
