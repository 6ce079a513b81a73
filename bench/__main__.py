"""`python -m bench [--quick] [--scenarios a,b] ...`: see bench.config for every option."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any


async def _run_stoppable(cfg: Any) -> None:
    """Runs the benchmark; SIGTERM (a CI timeout, `kill`) cancels it like Ctrl-C, so everything is stopped."""
    from bench.runner import run_bench

    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await run_bench(cfg)


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; exit code 0 when it ran (targets missed are figures, not failures)."""
    import uvloop

    from bench.config import from_args

    cfg = from_args(argv)
    try:
        uvloop.run(_run_stoppable(cfg))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bench: interrupted; the gateway, its helpers and the cluster were stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
