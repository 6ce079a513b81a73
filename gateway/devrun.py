"""`make run`: the gateway on a cluster of its own under .var/, with dev keys, the simulator and a token."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import sys
from dataclasses import replace
from importlib import resources
from pathlib import Path

from gateway.core.model import Role
from gateway.pgcluster import Cluster, ClusterError, find_bindir
from gateway.privacy import generate_key
from gateway.settings import SettingsError, load_settings

VAR = Path(".var")


def ensure_dev_keys(var: Path) -> dict[str, str]:
    """Development keys, made once under .var/ and kept (mode 600) so that stored data stays readable."""
    path = var / "keys.env"
    if not path.exists():
        var.mkdir(parents=True, exist_ok=True)
        lines = [f"GATEWAY_DATA_KEY={base64.b64encode(generate_key()).decode()}",
                 f"GATEWAY_INDEX_KEY={base64.b64encode(generate_key()).decode()}",
                 f"IDENTITY_AUTHORITY_KEY={secrets.token_urlsafe(16)}"]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


def run_dev(listen: str) -> int:
    """Starts everything, serves until Ctrl-C, then stops the gateway and the cluster cleanly."""
    env = {**ensure_dev_keys(VAR), **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}}
    cluster = None
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    else:
        try:
            find_bindir()
            cluster = Cluster(VAR.resolve() / "pg")
            cluster.start()
        except ClusterError as exc:
            print(f"make run: {exc}", file=sys.stderr)
            return 1
        env["DATABASE_URL"] = cluster.dsn()
        print(f"PostgreSQL {cluster.data_dir} on port {cluster.port} (socket {cluster.socket_dir})", flush=True)
    env["GATEWAY_LISTEN"] = listen
    _write_env_file(env)
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        print(f"gateway: bad setting: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        uvloop.run(_serve_dev(settings, env["IDENTITY_AUTHORITY_KEY"]))
    except KeyboardInterrupt:
        pass
    finally:
        if cluster is not None:
            cluster.stop()
            print("PostgreSQL stopped", flush=True)
    return 0


def _write_env_file(env: dict[str, str]) -> None:
    """.var/env: the settings of this run, for the CLI (`set -a; . .var/env; set +a`)."""
    keys = ("DATABASE_URL", "GATEWAY_DATA_KEY", "GATEWAY_INDEX_KEY")
    path = VAR / "env"
    path.write_text("".join(f"{k}='{env[k]}'\n" for k in keys))
    path.chmod(0o600)


async def _serve_dev(settings, authority_key: str) -> None:  # type: ignore[no-untyped-def]
    from gateway.server import serve
    from gateway.simulators.identity_authority import start_simulator
    from gateway.storage.db import create_pool, migrate_dsn
    from gateway.storage.principals import PrincipalRepository

    applied = await migrate_dsn(settings.database_url)
    print("migrations: " + (", ".join(applied) or "current"), flush=True)
    registry = Path(str(resources.files("gateway.data") / "demo_registry.json"))
    simulator = await start_simulator(registry, api_key=authority_key)
    print(f"identity-authority simulator on {simulator.url} (registry {registry})", flush=True)
    settings = replace(settings, identity_authority_url=simulator.url, identity_authority_key=authority_key)
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        _, token = await PrincipalRepository(pool).create_token("dev-admin", frozenset(Role))
    finally:
        await pool.close()
    (VAR / "dev-token").write_text(token + "\n")
    (VAR / "dev-token").chmod(0o600)
    print(f"development admin token (all roles; also in .var/dev-token):\n  {token}", flush=True)
    print("try: .venv/bin/python -m gateway demo", flush=True)
    try:
        await serve(settings)
    finally:
        await simulator.close()
        await asyncio.sleep(0)
