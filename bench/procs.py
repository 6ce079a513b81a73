"""Child processes of the harness (gateway, simulator, echo server): started, awaited until ready, stopped."""

from __future__ import annotations

import asyncio
import collections
import signal
from dataclasses import dataclass, field
from pathlib import Path


class ChildFailed(RuntimeError):
    """A child process exited or never said it was ready; the message carries its last output."""


@dataclass
class ChildProcess:
    """A running child with its output drained into a bounded tail (a full pipe would stall it)."""

    name: str
    proc: asyncio.subprocess.Process
    ready_line: str
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))
    _drains: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The child's process id (the Python process itself: started without a shell)."""
        return self.proc.pid

    @classmethod
    async def start(cls, name: str, argv: list[str], ready: str, *, env: dict[str, str], cwd: Path,
                    timeout_s: float = 60.0) -> ChildProcess:
        """Starts argv and waits for the stdout line starting with `ready`."""
        proc = await asyncio.create_subprocess_exec(*argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, start_new_session=True)
        child = cls(name, proc, "")
        child._drains.append(asyncio.create_task(child._drain(proc.stderr)))
        try:
            child.ready_line = await asyncio.wait_for(child._await_ready(ready), timeout_s)
        except (TimeoutError, ChildFailed):
            await child.stop(grace_s=1.0)
            raise ChildFailed(f"{name} did not start: " + " | ".join(list(child.tail)[-8:])) from None
        child._drains.append(asyncio.create_task(child._drain(proc.stdout)))
        return child

    async def _await_ready(self, ready: str) -> str:
        assert self.proc.stdout is not None
        for _ in range(10_000):  # bounded: a child prints a handful of lines before it is ready
            raw = await self.proc.stdout.readline()
            if not raw:
                await self.proc.wait()
                raise ChildFailed(f"{self.name} exited with {self.proc.returncode}")
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            if line.startswith(ready):
                return line
        raise ChildFailed(f"{self.name} printed too much before it was ready")

    async def _drain(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while raw := await stream.readline():
            self.tail.append(raw.decode(errors="replace").rstrip())

    def address(self) -> str:
        """The HOST:PORT at the end of the ready line ("... listening on [http://]HOST:PORT")."""
        return self.ready_line.rsplit(" ", 1)[-1].removeprefix("http://")

    async def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after grace_s; returns the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace_s)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for task in self._drains:
            task.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)
        return self.proc.returncode
