"""A folder a camera or an X-ray machine drops image files into, watched for new complete files.

A file is taken when it is complete: its size and modification time have not changed for settle_s. A
writer that writes under a temporary name and renames the finished file into place (rename-in-place)
never shows a partial file at all. Hidden files (a leading dot) and names ending .tmp, .part or .partial
are a writer's work in progress and are never taken; `<image>.json` is the image's sidecar and travels with
it. The folder is looked at every poll_s.

Each taken file becomes one event (inspection.devices.files), written to the queue, and only then moved,
with its sidecar, to done/ (read) or bad/ (unreadable). The queue remembers each file by name and content
hash, so a file that was queued but not yet moved when the adapter was killed is not queued again on restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from pathlib import Path

from inspection.config import Device
from inspection.devices.files import Outcome, file_event, oversized, sidecar_of
from inspection.events import Sink, sha256_hex

log = logging.getLogger("inspection.devices")
WORK_IN_PROGRESS = (".tmp", ".part", ".partial")


class FolderWatcher:
    """Takes complete files from a folder, queues their events and moves them to done/ or bad/."""

    def __init__(self, device: Device, sink: Sink) -> None:
        assert device.connection.directory is not None
        self.device, self.sink = device, sink
        self.folder = device.connection.directory
        self.settle_s: float = device.opt("settle_s")
        self._seen: dict[str, tuple[int, int, float]] = {}

    async def run(self) -> None:
        """Watches forever."""
        for sub in ("done", "bad"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        while True:
            await self.scan()
            await asyncio.sleep(self.device.opt("poll_s"))

    async def scan(self) -> int:
        """One look at the folder: takes every file that is complete; returns how many it took."""
        taken = 0
        for path in await asyncio.to_thread(self._candidates):
            if self._complete(path):
                await self.take(path)
                taken += 1
        return taken

    def _candidates(self) -> list[Path]:
        try:
            entries = sorted(os.scandir(self.folder), key=lambda e: e.name)
        except FileNotFoundError:
            log.warning("device %s: folder %s is missing", self.device.id, self.folder)
            return []
        return [Path(e.path) for e in entries if e.is_file(follow_symlinks=False) and _is_image_name(e.name)]

    def _complete(self, path: Path) -> bool:
        try:
            st = path.stat()
        except FileNotFoundError:
            self._seen.pop(path.name, None)
            return False
        now = time.monotonic()
        size_mtime = (st.st_size, st.st_mtime_ns)
        before = self._seen.get(path.name)
        if before is None or before[:2] != size_mtime:
            self._seen[path.name] = (*size_mtime, now)
            return False
        return now - before[2] >= self.settle_s

    async def take(self, path: Path) -> Outcome:
        """Reads one file (and its sidecar), queues its event, then moves both away."""
        limit: int = self.device.opt("max_image_bytes")
        content, digest, sidecar, mtime, size = await asyncio.to_thread(_read, path, limit)
        if content is None:
            outcome = oversized(self.device, digest, size, limit, mtime)
        else:
            outcome = await asyncio.to_thread(file_event, self.device, content, sidecar, mtime)
        key = f"file:{self.device.id}:{path.name}:{digest}"
        event_id = await self.sink.put(outcome.event, source_key=key)
        await asyncio.to_thread(self._move, path, "done" if outcome.read else "bad")
        self._seen.pop(path.name, None)
        log.info("device %s: %s -> %s (%s)", self.device.id, path.name, "done" if outcome.read else "bad", event_id)
        return outcome

    def _move(self, path: Path, sub: str) -> None:
        (self.folder / sub).mkdir(exist_ok=True)
        for source in (path, Path(sidecar_of(path))):
            if source.exists():
                target = self.folder / sub / source.name
                if target.exists():  # a name used again: keep both, the older one stamped
                    target.rename(target.with_name(f"{target.name}.{time.time_ns()}"))
                os.replace(source, target)


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and not name.endswith(".json") and not name.endswith(WORK_IN_PROGRESS)


def _read(path: Path, limit: int) -> tuple[bytes | None, str, bytes | None, float, int]:
    """The file's bytes (None past the limit: only hashed, in chunks), their SHA-256, the sidecar, the mtime
    and the size."""
    side = Path(sidecar_of(path))
    sidecar = side.read_bytes() if side.exists() else None
    st = path.stat()
    if st.st_size <= limit:
        content = path.read_bytes()
        return content, sha256_hex(content), sidecar, st.st_mtime, len(content)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return None, digest.hexdigest(), sidecar, st.st_mtime, st.st_size
