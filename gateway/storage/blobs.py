"""Images and other large bytes, content-addressed (SHA-256) in a directory: the same bytes are stored once.

A blob is written to a temporary file, flushed to disk, then renamed into place, and the directory entry is
flushed too, so a blob named in a committed row is never missing or partial after a crash. The directory
is a setting (BLOB_STORE_DIR); gateways on several hosts share one (a network file system) or each keeps
its own behind the same database only when scans of a parcel always reach the same host.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path

from gateway.core.errors import FieldViolation, InvalidInput, NotFound

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobStore:
    """A directory of blobs named by their SHA-256: <root>/<2 hex>/<2 hex>/<64 hex>."""

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self._root = root
        self._max = max_bytes
        root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        """Where a blob lives (whether or not it is there)."""
        return self._root / digest[:2] / digest[2:4] / digest

    async def put(self, data: bytes) -> str:
        """Stores the bytes (once) and returns their SHA-256 in hex, after they are durably on disk."""
        if len(data) > self._max:
            raise InvalidInput([FieldViolation("content", f"must be at most {self._max} bytes, got {len(data)}")])
        digest = hashlib.sha256(data).hexdigest()
        if not self.path(digest).exists():
            await asyncio.to_thread(self._write, digest, data)
        return digest

    def _write(self, digest: str, data: bytes) -> None:
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=final.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)  # the same content under the same name: a racing writer is harmless
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def get(self, digest: str) -> bytes:
        """A blob's bytes; NotFound when it is not stored here."""
        if not _SHA256.fullmatch(digest):
            raise InvalidInput([FieldViolation("sha256", "must be 64 lower-case hex digits")])
        path = self.path(digest)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound(f"no blob {digest}", field="sha256") from None
