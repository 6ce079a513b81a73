"""What /proc says about a process: CPU seconds, resident memory now and at its peak."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float | None:
    """utime + stime of the process (all its threads), plus its reaped children's if asked; None when gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:  # cutime + cstime: what children that already exited used
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def machine_busy_seconds() -> float | None:
    """CPU seconds every core of the machine spent busy so far (all of /proc/stat but idle and iowait)."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb(pid: int) -> float | None:
    """VmRSS now, in MB."""
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else kb / 1024


def hwm_mb(pid: int) -> float | None:
    """VmHWM, the peak resident size over the process's whole life, in MB."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else kb / 1024


def parent_pid(pid: int) -> int | None:
    """The parent's process id, or None when the process is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def children(pid: int) -> list[int]:
    """Direct children of a process (a postmaster's backends)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and parent_pid(int(entry.name)) == pid:
            found.append(int(entry.name))
    return found


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of a process and all its children, live or exited (PostgreSQL: postmaster and backends)."""
    # Children first: one reaped between the two reads is then counted twice (a tick) rather than not at all.
    live = sum(c for c in map(cpu_seconds, children(pid)) if c is not None)
    own = cpu_seconds(pid, reaped_children=True)
    return None if own is None else own + live


def is_postgres(pid: int) -> bool:
    """Whether the pid is a local PostgreSQL process (a remote server's pid means nothing here)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in ("postgres", "postmaster")
    except OSError:
        return False


class Sampler:
    """Samples a process's VmRSS every `period_s` while running; keeps the maximum."""

    def __init__(self, pid: int | None, period_s: float = 0.2) -> None:
        self.pid, self.period_s = pid, period_s
        self.max_rss_mb: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts sampling in the background."""
        if self.pid is not None:
            self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        deadline = time.monotonic() + 3600  # bounded even if nobody stops it
        while time.monotonic() < deadline:
            self._sample()
            await asyncio.sleep(self.period_s)

    def _sample(self) -> None:
        value = rss_mb(self.pid) if self.pid is not None else None
        if value is not None:
            self.max_rss_mb = max(self.max_rss_mb or 0.0, value)

    async def stop(self) -> float | None:
        """Stops sampling; returns the maximum VmRSS seen, in MB."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._sample()
        return self.max_rss_mb
