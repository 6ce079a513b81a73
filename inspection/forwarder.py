"""Forwarding: the queue's pending events go to the gateway over StreamScans, in order, until each is acked.

One stream at a time. Each stream starts by sending every pending event from the oldest (with the ids they
were given at enqueue), then new ones as they are queued, at most `window` unacknowledged at once. An ack
marks its event acknowledged in the queue and goes to the routing board. A stream that fails (the gateway
down or restarting, UNAVAILABLE, a connection reset, no ack for `ack_timeout_s`) is dropped; the next
attempt waits an exponential back-off with jitter, capped, and resends whatever is still pending. The
gateway answers an event_id it has seen with its first ack, so a resend never records a reading twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

import grpc

from courier.v1 import inspection_pb2 as pb
from courier.v1 import inspection_pb2_grpc
from gateway.security.tls import ClientTLS, describe_client, open_channel
from inspection import metrics
from inspection.queue import AsyncQueue
from inspection.routing import RoutingBoard

log = logging.getLogger("inspection.forwarder")
# Room for the largest event the folder adapters build (images are capped below this).
MAX_MESSAGE = 64 * 1024 * 1024


class StreamLost(Exception):
    """The stream cannot go on; the events in flight are resent on the next one."""


@dataclass
class Backoff:
    """Exponential back-off with jitter: attempt n waits between half and all of min(cap, initial * 2^n)."""

    initial_s: float = 0.5
    cap_s: float = 15.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling up to the cap."""
        ceiling = min(self.cap_s, self.initial_s * 2 ** min(self.attempt, 30))
        self.attempt += 1
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """After a success: the next failure starts from the initial delay again."""
        self.attempt = 0


class Forwarder:
    """Sends the queue to the gateway and records each ack."""

    def __init__(self, queue: AsyncQueue, target: str, token: str, board: RoutingBoard, backoff: Backoff,
                 ack_timeout_s: float = 30.0, window: int = 64, tls: ClientTLS | None = None) -> None:
        self.queue, self.target, self.board, self.backoff = queue, target, board, backoff
        self.tls = tls  # None: plaintext
        self._metadata = (("authorization", f"Bearer {token}"),)
        self.ack_timeout_s, self.window = ack_timeout_s, window
        self._inflight: dict[str, tuple[str, float]] = {}

    async def run(self) -> None:
        """Forwards forever: stream, and on a lost stream wait the back-off and stream again."""
        while True:
            try:
                await self._stream()
            except (grpc.aio.AioRpcError, StreamLost) as err:
                self._log_lost(err)
            metrics.CONNECTED.set(0)
            delay = self.backoff.next()
            log.info("reconnecting to %s in %.1f s (%d pending)", self.target, delay, len(self._inflight))
            await asyncio.sleep(delay)

    def _log_lost(self, err: Exception) -> None:
        if isinstance(err, grpc.aio.AioRpcError):
            level = logging.ERROR if err.code() in (grpc.StatusCode.UNAUTHENTICATED,
                                                    grpc.StatusCode.PERMISSION_DENIED) else logging.WARNING
            log.log(level, "stream to %s lost: %s: %s", self.target, err.code().name, err.details())
        else:
            log.warning("stream to %s lost: %s", self.target, err)

    async def _stream(self) -> None:
        options = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
        async with open_channel(self.target, self.tls, options) as channel:
            call = inspection_pb2_grpc.InspectionStub(channel).StreamScans(metadata=self._metadata)
            self._inflight = {}
            writer = asyncio.create_task(self._write(call))
            try:
                await call.wait_for_connection()
                metrics.CONNECTED.set(1)
                log.info("streaming to %s (%s)", self.target, describe_client(self.tls))
                await self._read(call, writer)
            finally:
                writer.cancel()
                call.cancel()
                await asyncio.gather(writer, return_exceptions=True)

    async def _write(self, call: grpc.aio.StreamStreamCall) -> None:
        last_seq = 0
        while True:
            self.queue.changed.clear()
            room = self.window - len(self._inflight)
            batch = await self.queue.pending(last_seq, room) if room > 0 else []
            for item in batch:
                self._inflight[item.event_id] = (item.event.device_id, time.monotonic())
                try:
                    await call.write(item.event)
                except asyncio.InvalidStateError as err:
                    raise StreamLost("the stream ended while sending") from err
                last_seq = item.seq
            if not batch:
                await self.queue.changed.wait()

    async def _read(self, call: grpc.aio.StreamStreamCall, writer: asyncio.Task[None]) -> None:
        while True:
            ack = await self._next_ack(call, writer)
            device = self._inflight.pop(ack.event_id, ("", 0.0))[0]
            decision = pb.RoutingDecision.Name(ack.decision).removeprefix("ROUTING_DECISION_")
            reasons = ",".join(r.code for r in ack.reasons)
            if not await self.queue.ack(ack.event_id, decision, reasons):
                log.warning("ack for %s, which is not pending here", ack.event_id)
            metrics.ACKS.labels(decision=decision).inc()
            self.board.record(device or ack.event_id.rsplit("-", 2)[0], ack)
            self.backoff.reset()
            self.queue.changed.set()  # room in the window

    async def _next_ack(self, call: grpc.aio.StreamStreamCall, writer: asyncio.Task[None]) -> pb.ScanAck:
        read = asyncio.ensure_future(call.read())
        try:
            while not read.done():
                await asyncio.wait({read, writer}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                if writer.done():
                    writer.result()  # raises what stopped the writer
                    raise StreamLost("the writer stopped")
                self._check_ack_timeout()
        finally:
            read.cancel()
        ack = read.result()
        if ack is grpc.aio.EOF:
            raise StreamLost(f"the gateway ended the stream ({(await call.code()).name})")
        return ack  # type: ignore[no-any-return]

    def _check_ack_timeout(self) -> None:
        if self._inflight:
            oldest = min(sent for _, sent in self._inflight.values())
            if time.monotonic() - oldest > self.ack_timeout_s:
                raise StreamLost(f"no ack for {self.ack_timeout_s:.0f} s")
