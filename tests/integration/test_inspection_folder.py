"""The folder watcher with real files: X-ray DICOS/PNG with sidecars, label photos, and every kind of bad file."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courier.v1 import inspection_pb2 as pb
from inspection.config import Connection, Device
from inspection.devices.folder import FolderWatcher
from inspection.queue import AsyncQueue
from inspection.simulators.files import write_atomically, write_camera, write_xray

ALARM = [{"category": "KNIFE", "description": "blade shape", "confidence": 0.8, "alarm": True}]


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[AsyncQueue]:
    """A real queue file."""
    q = AsyncQueue(tmp_path / "queue.sqlite")
    yield q
    await q.close()


def folder_device(path: Path, kind: str, **options: object) -> Device:
    path.mkdir(parents=True, exist_ok=True)
    options = {"kind": kind, "settle_s": 0.1, **options}
    return Device(f"{kind}-1", "folder", Connection(directory=path), "HUB/x", options)


async def take_all(watcher: FolderWatcher, expected: int, within: float = 20.0) -> None:
    taken = 0
    for _ in range(int(within / 0.05)):
        taken += await watcher.scan()
        if taken >= expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"took {taken} of {expected} files")


async def test_xray_files_and_their_sidecars(queue: AsyncQueue, tmp_path: Path) -> None:
    device = folder_device(tmp_path / "xray", "xray")
    write_xray(device.connection.directory, "a", "SF6000000001", "dicom", seed=1)
    write_xray(device.connection.directory, "b", "SF6000000002", "png", ALARM, seed=2)
    write_xray(device.connection.directory, "c", "SF6000000003", "jpeg", seed=3)
    write_xray(device.connection.directory, "d", "SF6000000004", "dicom", bad="corrupt", seed=4)
    write_xray(device.connection.directory, "e", "SF6000000005", "png", bad="bad-sidecar", seed=5)
    write_xray(device.connection.directory, "f", "SF6000000006", "png", bad="not-image", seed=6)
    write_xray(device.connection.directory, "g", "SF6000000007", "dicom", bad="oversized", seed=7)
    await take_all(FolderWatcher(device, queue), 7)
    found = [p.event for p in await queue.pending(limit=100)]
    assert [(e.waybill_no, e.unreadable.split(":")[0]) for e in found] == [
        ("SF6000000001", ""), ("SF6000000002", ""), ("SF6000000003", ""), ("", "CORRUPT_IMAGE"),
        ("", "BAD_SIDECAR"), ("", "NOT_AN_IMAGE"), ("", "OVERSIZED_IMAGE")]
    assert [(i.role, i.media_type) for i in found[0].images] == [(pb.IMAGE_ROLE_XRAY, "application/dicom")]
    assert found[0].device_time.ToDatetime().year == 2026 and found[0].kind == pb.SCAN_KIND_XRAY
    assert [(f.category, f.alarm) for f in found[1].findings] == [("KNIFE", True)]
    assert all(not e.images and len(e.raw_sha256) == 64 for e in found[3:])
    folder = device.connection.directory
    assert sorted(os.listdir(folder / "done")) == sorted(
        ["a.dcm", "a.dcm.json", "b.png", "b.png.json", "c.jpeg", "c.jpeg.json"])
    assert sorted(os.listdir(folder / "bad")) == sorted(
        ["d.dcm", "d.dcm.json", "e.png", "e.png.json", "f.png", "f.png.json", "g.dcm", "g.dcm.json"])
    assert sorted(os.listdir(folder)) == ["bad", "done"]


async def test_waybills_that_disagree_or_are_missing_are_never_guessed(queue: AsyncQueue, tmp_path: Path) -> None:
    device = folder_device(tmp_path / "xray", "xray")
    folder = device.connection.directory
    path = write_xray(folder, "a", "SF6100000001", "dicom", seed=1)
    write_atomically(Path(f"{path}.json"), json.dumps({"waybill": "SF6100000002"}).encode())
    png = write_xray(folder, "b", "SF6100000003", "png", seed=2)
    os.remove(f"{png}.json")  # an export with no sidecar: nothing names its waybill
    await take_all(FolderWatcher(device, queue), 2)
    found = [p.event for p in await queue.pending(limit=100)]
    assert [(e.waybill_no, e.unreadable.split(":")[0], len(e.images)) for e in found] == [
        ("", "WAYBILL_CONFLICT", 1), ("", "NO_WAYBILL", 1)]


async def test_a_growing_file_is_taken_only_once_complete(queue: AsyncQueue, tmp_path: Path) -> None:
    device = folder_device(tmp_path / "xray", "xray", settle_s=0.5)
    folder = device.connection.directory
    write_xray(tmp_path, "whole", "SF6200000001", "dicom", seed=1)
    content = (tmp_path / "whole.dcm").read_bytes()
    (folder / "partial.dcm.tmp").write_bytes(content)  # a writer's work in progress: never taken
    watcher = FolderWatcher(device, queue)
    with (folder / "slow.dcm").open("wb") as f:
        f.write(content[:1000])
        f.flush()
        assert await watcher.scan() == 0
        await asyncio.sleep(0.3)
        f.write(content[1000:])
        f.flush()
        assert await watcher.scan() == 0, "taken while still growing"
    await take_all(watcher, 1)
    (event,) = [p.event for p in await queue.pending()]
    assert event.images[0].content == content and (folder / "partial.dcm.tmp").exists()


async def test_a_file_queued_but_not_moved_is_not_queued_again(queue: AsyncQueue, tmp_path: Path) -> None:
    device = folder_device(tmp_path / "xray", "xray")
    path = write_xray(device.connection.directory, "a", "SF6300000001", "dicom", seed=1)
    watcher = FolderWatcher(device, queue)
    outcome = await watcher.take(path)
    # As if the adapter was killed between the queue's commit and the move: the file is back in place.
    os.replace(device.connection.directory / "done" / "a.dcm", path)
    await watcher.take(path)
    assert [p.event_id for p in await queue.pending()] == [outcome.event.event_id]


async def test_label_photos_are_read_back(queue: AsyncQueue, tmp_path: Path) -> None:
    device = folder_device(tmp_path / "camera", "camera", goods=True)
    folder = device.connection.directory
    write_camera(folder, "a", "SF6400000001", seed=1)
    write_camera(folder, "b", "SF6400000002", seed=2, symbology="QRCode")
    write_camera(folder, "c", "SF6400000003", bad="corrupt", seed=3)
    await take_all(FolderWatcher(device, queue), 3)
    found = [p.event for p in await queue.pending(limit=100)]
    assert [(e.waybill_no, e.unreadable.split(":")[0]) for e in found] == [
        ("SF6400000001", ""), ("SF6400000002", ""), ("", "CORRUPT_IMAGE")]
    assert [i.role for i in found[0].images] == [pb.IMAGE_ROLE_LABEL, pb.IMAGE_ROLE_ITEM_PHOTO]
    assert found[0].kind == pb.SCAN_KIND_CAMERA and found[0].images[0].media_type == "image/jpeg"
    assert sorted(os.listdir(folder / "done")) == ["a.jpg", "b.jpg"] and os.listdir(folder / "bad") == ["c.jpg"]
