"""The command line's commands: one module each, each with `register(subparsers)` and a function it runs."""

from __future__ import annotations

import sys

from gateway.settings import Settings, SettingsError, load_settings


def settings_or_exit() -> Settings:
    """The settings of the environment, or exit 2 with a one-line message naming the bad one."""
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"gateway: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def database_url_or_exit() -> str:
    """DATABASE_URL, or exit 2 saying it is needed (and how `make run`'s cluster provides it)."""
    from gateway.commands.dev import dev_env

    found = dev_env().get("DATABASE_URL", "")
    if not found:
        print("gateway: bad setting: DATABASE_URL: required but not set (or start `make run`, whose "
              "cluster the commands find through .var/env)", file=sys.stderr)
        raise SystemExit(2)
    return found
