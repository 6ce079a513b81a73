"""A scale station: an MT-SICS scale, and the barcode reader that tells it which parcel is on it.

A scale cannot know the waybill, so a station pairs the last code its reader read with the next stable
weight: the code comes first (the parcel passes the reader on its way onto the scale), then the weight.

* A code, then a stable weight of at least min_weight_g: one SCALE event with the waybill and the weight.
* A stable weight with no code waiting: a SCALE event with the weight, no waybill, unreadable NO_CODE.
* A code with no stable weight within pair_timeout_s, or before the next code: a SCALE event with the
  waybill and no weight, unreadable NO_WEIGHT.
* A code the reader could not read (NOREAD, a malformed line): the weight's event carries that reason.
* One parcel is one weight: after a reading the scale must come back under min_weight_g (the parcel taken
  off) before the next stable weight counts. Dynamic answers are never a weight.
* An answer the adapter cannot read (an unknown status code, a malformed line) or an overload while the
  station waits for a parcel's weight: one unreadable event, carrying the waiting code, for the whole run
  of bad answers (bad answers about a parcel already weighed are logged and counted only).
  Busy (S I) and underload answers are logged; ES, EL and ET are logged and counted, and the command is
  sent again. A scale that never answers is asked again after 2 s.

A scale without a reader sends every weight as unreadable NO_CODE: it is never paired by guess.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from courier.v1 import inspection_pb2 as pb
from inspection import metrics
from inspection.config import Device
from inspection.devices import mtsics
from inspection.devices.link import LineReader, Link, reconnecting
from inspection.events import Sink, Unreadable, event, mark_unreadable, sha256_hex

log = logging.getLogger("inspection.devices")
ANSWER_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Code:
    """A code the station's reader sent: the waybill, or why it could not be read; with its raw line."""

    value: str | Unreadable
    raw: bytes
    at: float


class Pairing:
    """The station's waiting code, and the events that pairing (or failing to pair) produces."""

    def __init__(self, device: Device, sink: Sink) -> None:
        self.device, self.sink = device, sink
        self.timeout_s: float = device.opt("pair_timeout_s")
        self._waiting: Code | None = None

    async def offer(self, value: str | Unreadable, raw: bytes) -> None:
        """A code from the reader: the one waiting before it is sent without a weight."""
        if self._waiting is not None:
            await self._without_weight(self._waiting, "another code came before a stable weight")
        self._waiting = Code(value, raw, time.monotonic())

    async def expire(self) -> None:
        """Sends a code that waited longer than pair_timeout_s without a weight."""
        if self._waiting is not None and time.monotonic() - self._waiting.at > self.timeout_s:
            code, self._waiting = self._waiting, None
            await self._without_weight(code, f"no stable weight within {self.timeout_s:g} s")

    async def run(self) -> None:
        """Expires waiting codes even while the scale is silent."""
        while True:
            await asyncio.sleep(0.25)
            await self.expire()

    async def weighed(self, grams: int, raw: bytes) -> None:
        """A stable weight: one event with the waiting code, or unreadable NO_CODE without one."""
        code, self._waiting = self._waiting, None
        ev = self._event(code, measurements=pb.Measurements(weight_g=grams))
        if code is None:
            mark_unreadable(ev, Unreadable("NO_CODE", "a stable weight with no code read before it"), raw)
        elif isinstance(code.value, Unreadable):
            mark_unreadable(ev, code.value, code.raw)
        await self.sink.put(ev)

    async def failed(self, why: Unreadable, raw: bytes) -> None:
        """An answer that is no weight while a parcel may be on the scale: unreadable, with the waiting code."""
        code, self._waiting = self._waiting, None
        await self.sink.put(mark_unreadable(self._event(code), why, raw))

    async def _without_weight(self, code: Code, detail: str) -> None:
        why = code.value if isinstance(code.value, Unreadable) else Unreadable("NO_WEIGHT", detail)
        await self.sink.put(mark_unreadable(self._event(code), why, code.raw))

    def _event(self, code: Code | None, **fields: object) -> pb.ScanEvent:
        waybill = code.value if code is not None and isinstance(code.value, str) else ""
        return event(pb.SCAN_KIND_SCALE, self.device.id, self.device.location, waybill=waybill, **fields)


class ScaleAdapter:
    """Polls (S, SI) or listens to (SIR) an MT-SICS scale and feeds its weights to the pairing."""

    def __init__(self, device: Device, pairing: Pairing) -> None:
        self.device, self.pairing = device, pairing
        self.command: str = device.opt("command")
        self.min_g: int = device.opt("min_weight_g")
        self._armed, self._faulted = True, False

    async def run(self) -> None:
        """Reads forever, reconnecting when the link drops."""
        await reconnecting(self.device.id, self.device.connection, self._session)

    async def _session(self, link: Link) -> None:
        reader = LineReader(link, 64)
        await link.write(mtsics.command(self.command))
        while True:
            line = await reader.next(ANSWER_TIMEOUT_S)
            if line is None:
                log.warning("device %s: no answer to %s within %.0f s", self.device.id, self.command, ANSWER_TIMEOUT_S)
            else:
                await self.answer(mtsics.parse(line), line)
            if self.command != "SIR" or line is None:
                await asyncio.sleep(self.device.opt("poll_interval_s") if line is not None else 0)
                await link.write(mtsics.command(self.command))

    async def answer(self, answer: mtsics.Answer | Unreadable, raw: bytes) -> None:
        """One answer from the scale, through the station's rules (see the module docstring)."""
        if isinstance(answer, Unreadable):
            await self._fault(answer, raw)
            return
        self._faulted = False
        if answer.is_weight and answer.grams < self.min_g:
            self._armed = True  # the pan is empty again: the next stable weight is a new parcel
        elif answer.kind == "stable" and self._armed:
            self._armed = False
            await self.pairing.weighed(answer.grams, raw)
        elif answer.kind == "overload" and self._armed:
            self._armed = False
            await self.pairing.failed(Unreadable("OVERLOAD", "the scale is overloaded"), raw)
        elif not answer.is_weight:
            self._status(answer)

    async def _fault(self, why: Unreadable, raw: bytes) -> None:
        if self._faulted or not self._armed:
            # The parcel on the pan already has its event (or this run of bad answers has one): logged and
            # counted only, so one parcel never becomes two events.
            log.warning("device %s: unreadable answer (%s), sha256 %s", self.device.id, why.text(), sha256_hex(raw))
            metrics.UNREADABLE.labels(device=self.device.id, reason=why.reason).inc()
            return
        self._faulted, self._armed = True, False
        await self.pairing.failed(why, raw)

    def _status(self, answer: mtsics.Answer) -> None:
        if answer.kind in ("syntax_error", "logical_error", "transmission_error"):
            log.warning("device %s: the scale answered %s", self.device.id, answer.kind)
            metrics.UNREADABLE.labels(device=self.device.id, reason=answer.kind.upper()).inc()
        elif answer.kind == "underload":
            log.warning("device %s: underload (is the pan in place?)", self.device.id)
        else:
            log.debug("device %s: %s", self.device.id, answer.kind)
