"""The adapter process: the configured devices, the durable queue and the forwarder, run together."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from inspection.config import Config, Device
from inspection.devices.dws import DwsAdapter
from inspection.devices.folder import FolderWatcher
from inspection.devices.reader import ReaderAdapter
from inspection.devices.scale import Pairing, ScaleAdapter
from inspection.forwarder import Backoff, Forwarder
from inspection.queue import AsyncQueue
from inspection.routing import RoutingBoard

log = logging.getLogger("inspection")
KEEP_ACKED_S = 24 * 3600.0
Job = Callable[[], Awaitable[None]]


@dataclass
class Adapter:
    """Everything one `run` drives; `board` is where the sorting line's driver subscribes."""

    config: Config
    queue: AsyncQueue
    board: RoutingBoard = field(default_factory=RoutingBoard)

    def jobs(self) -> list[Awaitable[None]]:
        """The coroutines that make up the adapter: one per device (two per scale station), the forwarder."""
        cfg = self.config
        forwarder = Forwarder(self.queue, cfg.target, cfg.token, self.board,
                              Backoff(cfg.backoff_initial_s, cfg.backoff_max_s), cfg.ack_timeout_s, tls=cfg.tls)
        jobs: list[Awaitable[None]] = [forwarder.run(), self._prune()]
        stations = {d.id: Pairing(d, self.queue) for d in cfg.devices if d.type == "scale"}
        for device in cfg.devices:
            jobs.extend(supervised(device.id, job) for job in self._device_jobs(device, stations))
        return jobs

    def _device_jobs(self, device: Device, stations: dict[str, Pairing]) -> list[Job]:
        if device.type == "scale":
            pairing = stations[device.id]
            return [ScaleAdapter(device, pairing).run, pairing.run]
        if device.type == "reader":
            paired = next((p for p in stations.values() if p.device.opt("reader") == device.id), None)
            return [ReaderAdapter(device, self.queue, paired.offer if paired else None).run]
        if device.type == "dws":
            return [DwsAdapter(device, self.queue).run]
        return [FolderWatcher(device, self.queue).run]

    async def _prune(self) -> None:
        while True:
            removed = await self.queue.prune(KEEP_ACKED_S)
            if removed:
                log.info("pruned %d acknowledged events older than a day", removed)
            await asyncio.sleep(600)


async def supervised(name: str, job: Job, pause_s: float = 5.0) -> None:
    """Runs a device's job; if it fails, logs why and starts it again, so one device never stops the rest."""
    while True:
        try:
            await job()
        # A bug or an unforeseen error in one device's code: logged with its traceback, the device restarted.
        except Exception:
            log.exception("device %s failed; restarting it in %.0f s", name, pause_s)
        await asyncio.sleep(pause_s)


async def run(config: Config) -> None:
    """Runs the adapter until SIGTERM or SIGINT."""
    queue = AsyncQueue(config.queue_path)
    adapter = Adapter(config, queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.ensure_future(job) for job in adapter.jobs()]
    log.info("adapter running: %d devices, queue %s (%d pending), gateway %s", len(config.devices),
             config.queue_path, queue.sync.depth(), config.target)
    waiter = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await queue.close()
    for task in done:
        if task is not waiter:
            task.result()  # a job that stopped on its own stopped on an error: raise it
    log.info("adapter stopped")
