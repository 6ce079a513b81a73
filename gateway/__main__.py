"""Command line: `python -m gateway [serve|dev|migrate|token|blocklist|demo|health|doctor] ...`; a module each."""

from __future__ import annotations

import argparse
import os

# The gateway never forks a child that uses gRPC (pg_ctl and initdb are exec'd), so gRPC's fork
# handlers only print a warning at each subprocess; set before grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from gateway.commands import (  # noqa: E402
    blocklist,
    customers,
    demo,
    dev,
    doctor,
    evidence,
    health,
    investigate,
    keys,
    migrate,
    partitions,
    serve,
    token,
)

COMMANDS = (serve, dev, migrate, token, customers, blocklist, evidence, investigate, keys, partitions, demo, health,
            doctor)


def parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per module of gateway.commands."""
    p = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    sub = p.add_subparsers(dest="command")
    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point; with no command, serves."""
    args = parser().parse_args(argv)
    if args.command is None:
        args = parser().parse_args(["serve", *(argv or [])])
    raise SystemExit(args.func(args) or 0)


if __name__ == "__main__":
    main()
