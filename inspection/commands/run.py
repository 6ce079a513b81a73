"""`python -m inspection run --config FILE`: the configured device adapters, forwarding to the gateway."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from inspection.config import ConfigError, load


def register(sub: Any) -> None:
    """Adds the `run` command."""
    p = sub.add_parser("run", help="run the configured device adapters and forward their readings")
    p.add_argument("--config", required=True, type=Path, help="the site's TOML configuration file")
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port (0: off)")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validates the configuration (exit 2 naming the bad key), then runs until SIGTERM or Ctrl-C."""
    try:
        config = load(args.config)
    except ConfigError as err:
        print(f"inspection run: bad configuration: {err}", file=sys.stderr)
        return 2
    if not 0 <= args.metrics_port <= 65535:
        print("inspection run: bad --metrics-port: must be 0 to 65535", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr="127.0.0.1")
        logging.getLogger("inspection").info("metrics on 127.0.0.1:%d", args.metrics_port)
    from inspection.runner import run as run_adapter

    _event_loop()
    asyncio.run(run_adapter(config))
    return 0


def _event_loop() -> None:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
