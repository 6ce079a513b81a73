"""Helpers for tests that run the gateway's commands as processes."""

from __future__ import annotations

import asyncio


async def wait_for_line(stream: asyncio.StreamReader, needle: str, seen: list[str], timeout_s: float = 60) -> str:
    """Reads lines into `seen` until one contains needle and returns it; fails naming what was printed instead."""
    async def find() -> str:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"{needle!r} never printed: {''.join(seen)}")
            seen.append(line)
            if needle in line:
                return line
    return await asyncio.wait_for(find(), timeout_s)
