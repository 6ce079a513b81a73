"""A scale station simulator: an MT-SICS scale on a TCP port, and (optionally) its barcode reader on another.

The scale answers S, SI and SIR from a scripted plan, one step per answer (S skips dynamic steps, as a real
scale waits until stable); when the plan is spent the pan is empty (S S 0.00 g). Steps:

    S:500  S:1.25kg  stable weight          D:120       dynamic weight
    I  +  -  ES  EL  ET                     the status answers (busy, overload, underload, errors)
    X                                       an unknown status code (S X ... g)
    junk                                    a malformed answer line
    code:SF1234567890                       the reader sends this code (consumes no answer)
    noread  badcode                         the reader sends NOREAD, or a malformed line

`parcel_plan` scripts parcels the way a belt delivers them: the code, two unstable readings while the
parcel settles, the stable weight twice, then the empty pan. The plan starts once the reader (if any) has
a client, so no code is sent to nobody.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from inspection.devices import mtsics

log = logging.getLogger("inspection.simulators")
EMPTY = "S:0"


def parcel_plan(parcels: list[tuple[str, int]], bad: dict[int, str] | None = None) -> list[str]:
    """Steps for parcels (code, grams); bad maps a parcel's index to a step put before its stable weight."""
    plan: list[str] = [EMPTY]
    for i, (code, grams) in enumerate(parcels):
        plan += [f"code:{code}" if code else "noread", f"D:{grams * 3 // 10}", f"D:{grams * 9 // 10}"]
        plan += [bad[i]] if bad and i in bad else []
        plan += [f"S:{grams}", f"S:{grams}", EMPTY, EMPTY]
    return plan


def answer_line(step: str) -> bytes:
    """The scale's answer line for one plan step."""
    fixed = {"I": b"S I\r\n", "+": b"S +\r\n", "-": b"S -\r\n", "ES": b"ES\r\n", "EL": b"EL\r\n",
             "ET": b"ET\r\n", "X": b"S X     100.00 g\r\n", "junk": b"\xfe\x01garbled\r\n"}
    if step in fixed:
        return fixed[step]
    status, _, value = step.partition(":")
    if status not in ("S", "D") or not value:
        raise ValueError(f"not a scale plan step: {step!r}")
    if value.endswith("kg"):
        return mtsics.format_weight(status, float(value[:-2]) * 1000, "kg")
    return mtsics.format_weight(status, float(value.removesuffix("g")))


class ScaleSimulator:
    """The scale's TCP server (and the reader's, when reader_port is given)."""

    def __init__(self, plan: list[str], interval_s: float = 0.05) -> None:
        self.plan = deque(plan)
        self.interval_s = interval_s
        self.readers: list[asyncio.StreamWriter] = []
        self.clients: list[asyncio.StreamWriter] = []
        self.commands: list[str] = []
        self._servers: list[asyncio.Server] = []

    async def start(self, port: int = 0, reader_port: int | None = None, host: str = "127.0.0.1") -> int:
        """Listens; returns the scale's port (the reader's is reader_address once started)."""
        scale = await asyncio.start_server(self._scale_client, host, port)
        self._servers.append(scale)
        if reader_port is not None:
            self._servers.append(await asyncio.start_server(self._reader_client, host, reader_port))
        return int(scale.sockets[0].getsockname()[1])

    @property
    def reader_port(self) -> int:
        """The reader's port."""
        return int(self._servers[1].sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stops listening and drops the clients."""
        for server in self._servers:
            server.close()
        for writer in self.readers + self.clients:
            writer.close()

    async def _reader_client(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.readers.append(writer)

    async def _scale_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        repeat: asyncio.Task[None] | None = None
        self.clients.append(writer)
        try:
            while line := await reader.readline():
                command = line.decode("ascii", errors="replace").strip()
                self.commands.append(command)
                if repeat is not None:
                    repeat.cancel()
                    repeat = None
                if command == "SIR":
                    repeat = asyncio.create_task(self._repeat(writer))
                else:
                    writer.write(await self.answer(command))
                    await writer.drain()
        except ConnectionError:
            pass  # the adapter went away: the plan waits for the next connection
        finally:
            if repeat is not None:
                repeat.cancel()
            writer.close()

    async def _repeat(self, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(await self.answer("SI"))
            await writer.drain()
            await asyncio.sleep(self.interval_s)

    async def answer(self, command: str) -> bytes:
        """The answer to one command, taking the plan's next step (and sending any codes before it)."""
        if command not in ("S", "SI"):
            return b"ES\r\n"
        if self._servers[1:] and not self.readers:
            return answer_line(EMPTY)  # the station's reader is not listened to yet
        while self.plan:
            step = self.plan.popleft()
            if step.startswith("code:") or step in ("noread", "badcode"):
                await self._send_code(step)
            elif not (command == "S" and step.startswith("D:")):
                return answer_line(step)
        return answer_line(EMPTY)

    async def _send_code(self, step: str) -> None:
        line = {"noread": b"NOREAD\r\n", "badcode": b"\xff\xfe\x07bad\r\n"}.get(step)
        line = line or step.removeprefix("code:").encode("ascii") + b"\r\n"
        for writer in list(self.readers):
            try:
                writer.write(line)
                await writer.drain()
            except ConnectionError:
                self.readers.remove(writer)
        # The code goes over another connection than the weight: give it time to arrive first.
        await asyncio.sleep(self.interval_s)
