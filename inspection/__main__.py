"""Command line of the scanner side: `python -m inspection <command> ...`; each command is a module of
inspection.commands with `register(subparsers)`, found at start, so commands are added one file each."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil

# The adapter never forks a child that uses gRPC; set before grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import inspection.commands as commands  # noqa: E402


def parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per module of inspection.commands."""
    p = argparse.ArgumentParser(prog="python -m inspection", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parser().parse_args(argv)
    raise SystemExit(args.func(args) or 0)


if __name__ == "__main__":
    main()
