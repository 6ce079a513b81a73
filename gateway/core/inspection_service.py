"""The Inspection use cases: record one result, and record a scanner's stream in order, many at a time."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from typing import Any, Protocol

from gateway.core.errors import InvalidInput
from gateway.core.inspection import (
    ImageRole,
    PreparedScan,
    Routing,
    ScanCommand,
    ScanResult,
    normalise_scan,
    scan_violations,
)
from gateway.core.model import Actor, ReasonRecord
from gateway.core.photos import image_fingerprint, media_type

# How many of a stream's events may be in flight at once: enough for group commit to gather a batch,
# few enough that an adapter's resend after a failure is short.
STREAM_WINDOW = 256


class ScanRepository(Protocol):
    """Records prepared scans against the parcel as it stands (locking it), once per event_id."""

    async def record(self, scan: PreparedScan, actor: Actor) -> ScanResult: ...


class BlobStore(Protocol):
    """Keeps bytes content-addressed: put returns the SHA-256 (hex), durably stored once."""

    async def put(self, data: bytes) -> str: ...


class ImageScreener(Protocol):
    """Screens perceptual hashes of goods photos against the live list's image fingerprints."""

    def screen_images(self, hashes: tuple[int, ...]) -> tuple[dict[str, Any], ...]: ...


def invalid_event(cmd: ScanCommand, violations: list[Any]) -> ScanResult:
    """The ack of an event that breaks a field's limits: diverted, nothing recorded."""
    reasons = tuple(ReasonRecord("INVALID_EVENT", f"{v.field}: {v.description}", v.field) for v in violations)
    return ScanResult(cmd.event_id, Routing.DIVERT_TO_HOLD, reasons, waybill_no=cmd.waybill_no)


class InspectionService:
    """RecordInspection and StreamScans over three ports: the scans, the blobs and the live list."""

    def __init__(self, scans: ScanRepository, blobs: BlobStore, screener: ImageScreener, *,
                 max_image_bytes: int) -> None:
        self._scans = scans
        self._blobs = blobs
        self._screener = screener
        self._max_image_bytes = max_image_bytes

    async def record(self, cmd: ScanCommand, actor: Actor) -> ScanResult:
        """Records one result; InvalidInput naming each bad field, nothing recorded."""
        cmd = normalise_scan(cmd)
        violations = scan_violations(cmd, max_image_bytes=self._max_image_bytes)
        if violations:
            raise InvalidInput(violations)
        return await self._scans.record(await self._prepare(cmd), actor)

    async def record_stream(self, commands: AsyncIterable[ScanCommand], actor: Actor) -> AsyncIterator[ScanResult]:
        """One result per command, in order; up to STREAM_WINDOW in flight so their writes share commits."""
        pending: asyncio.Queue[Awaitable[ScanResult] | BaseException | None] = asyncio.Queue(STREAM_WINDOW)
        reader = asyncio.get_running_loop().create_task(self._read(commands, actor, pending))
        try:
            while (item := await pending.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield await item
        finally:
            reader.cancel()
            while not pending.empty():
                left = pending.get_nowait()
                if isinstance(left, asyncio.Future):
                    left.cancel()

    async def _read(self, commands: AsyncIterable[ScanCommand], actor: Actor,
                    pending: asyncio.Queue[Awaitable[ScanResult] | BaseException | None]) -> None:
        loop = asyncio.get_running_loop()
        # A resend of an event still in flight on this stream waits for it, so the first sent is the one
        # recorded and the later one is answered as its replay, whatever order their commits would take.
        in_flight: dict[str, asyncio.Task[ScanResult]] = {}
        try:
            async for cmd in commands:
                task = loop.create_task(self._one(cmd, actor, in_flight.get(cmd.event_id)))
                in_flight[cmd.event_id] = task
                task.add_done_callback(functools.partial(_forget, in_flight, cmd.event_id))
                await pending.put(task)
        except Exception as error:  # handed to the writer, which ends the stream with its status
            await pending.put(error)
            return
        await pending.put(None)

    async def _one(self, cmd: ScanCommand, actor: Actor, earlier: asyncio.Task[ScanResult] | None) -> ScanResult:
        if earlier is not None:
            await asyncio.wait((earlier,))
        cmd = normalise_scan(cmd)
        violations = scan_violations(cmd, max_image_bytes=self._max_image_bytes)
        if violations:
            return invalid_event(cmd, violations)
        return await self._scans.record(await self._prepare(cmd), actor)

    async def _prepare(self, cmd: ScanCommand) -> PreparedScan:
        """Stores the images (durably, before anything refers to them) and screens the goods photos."""
        hashes: list[int] = []
        reasons: list[ReasonRecord] = []
        digests: list[str] = []
        for i, image in enumerate(cmd.images):
            digests.append(await self._blobs.put(image.content))
            kind = media_type(image.content)
            if not kind:
                reasons.append(ReasonRecord("IMAGE_UNREADABLE", "is not a JPEG, PNG or DICOM image",
                                            f"images[{i}]"))
            elif image.role is ImageRole.ITEM_PHOTO:
                found = await asyncio.to_thread(image_fingerprint, image.content)  # decoding is the slow part
                if found is None:
                    reasons.append(ReasonRecord("IMAGE_UNREADABLE", "the goods photo could not be decoded",
                                                f"images[{i}]"))
                else:
                    hashes.append(found)
        hits = self._screener.screen_images(tuple(hashes)) if hashes else ()
        return PreparedScan(cmd, tuple(digests), hits, tuple(reasons))


def _forget(in_flight: dict[str, asyncio.Task[ScanResult]], key: str, done: asyncio.Task[ScanResult]) -> None:
    if in_flight.get(key) is done:
        del in_flight[key]
