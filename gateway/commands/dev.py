"""`python -m gateway dev` (`make run`): the gateway on a cluster of its own under .var/, with dev keys, the
identity-authority simulator and a token.

Every setting of the README's table is honoured: what the environment sets wins over the development
defaults (GATEWAY_LISTEN moves the port, DATABASE_URL replaces the managed cluster, IDENTITY_AUTHORITY_URL
replaces the simulator, GATEWAY_DATA_KEY and GATEWAY_INDEX_KEY replace the development keys).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from gateway.core.model import Role
from gateway.security.sealing import generate_key
from gateway.settings import Settings, SettingsError, load_settings
from gateway.storage.cluster import Cluster, ClusterError, find_bindir

VAR = Path(".var")
# What `make run` writes to .var/env for the other commands (token, blocklist import, demo) to find it.
SHARED_SETTINGS = ("DATABASE_URL", "GATEWAY_DATA_KEY", "GATEWAY_INDEX_KEY", "GATEWAY_LISTEN")


def register(sub: Any) -> None:
    """Adds the `dev` command."""
    p = sub.add_parser("dev", help="what `make run` runs: everything managed under .var/")
    p.add_argument("--listen", default=None,
                   help="HOST:PORT to serve on (default: $GATEWAY_LISTEN, else 127.0.0.1:50051)")
    p.set_defaults(func=lambda args: run_dev(listen=args.listen))


def ensure_dev_keys(var: Path) -> dict[str, str]:
    """Development keys, made once under .var/ and kept (mode 600) so that stored data stays readable."""
    path = var / "keys.env"
    wanted = {"GATEWAY_DATA_KEY": lambda: base64.b64encode(generate_key()).decode(),
              "GATEWAY_INDEX_KEY": lambda: base64.b64encode(generate_key()).decode(),
              "IDENTITY_AUTHORITY_KEY": lambda: secrets.token_urlsafe(16),
              "EVIDENCE_SIGNING_KEY": lambda: base64.b64encode(generate_key()).decode()}
    var.mkdir(parents=True, exist_ok=True)
    found = _pairs(path) if path.exists() else {}
    missing = [k for k in wanted if k not in found]  # a keys file from an older version gains the new keys
    if missing:
        with path.open("a") as out:
            out.writelines(f"{k}={wanted[k]()}\n" for k in missing)
        path.chmod(0o600)
    return _pairs(path)


def _pairs(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip().strip("'") for k, v in pairs}


def dev_env(environ: Mapping[str, str] | None = None, var: Path = VAR) -> dict[str, str]:
    """The environment, with what `make run` wrote to .var/env filling the settings it does not set.

    So `token create` and `blocklist import` reach make run's cluster with no `source` step; a variable
    set in the environment always wins.
    """
    env = dict(os.environ if environ is None else environ)
    path = var / "env"
    if path.is_file() and not env.get("DATABASE_URL"):
        for key, value in _pairs(path).items():
            if not env.get(key):
                env[key] = value
    return env


def run_dev(listen: str | None) -> int:
    """Starts everything, serves until Ctrl-C, then stops the gateway and the cluster cleanly."""
    keys = ensure_dev_keys(VAR)
    env = {**keys, **{k: v for k, v in os.environ.items() if v != ""}}
    if listen:
        env["GATEWAY_LISTEN"] = listen
    env.setdefault("GATEWAY_LISTEN", "127.0.0.1:50051")
    env.setdefault("LOG_FORMAT", "text")  # a terminal reads make run's log; serve's default is json
    try:
        load_settings({**env, "DATABASE_URL": env.get("DATABASE_URL", "postgresql://check")})
    except SettingsError as exc:  # before a cluster is started for nothing
        print(f"gateway: bad setting: {exc}", file=sys.stderr)
        return 2
    cluster = None
    if not env.get("DATABASE_URL"):
        try:
            find_bindir()
            cluster = Cluster(VAR.resolve() / "pg")
            cluster.start()
        except ClusterError as exc:
            print(f"make run: {exc}", file=sys.stderr)
            return 1
        env["DATABASE_URL"] = cluster.dsn()
        print(f"PostgreSQL {cluster.data_dir} on port {cluster.port} (socket {cluster.socket_dir})", flush=True)
    _write_env_file(env)
    try:
        return _serve(load_settings(env), keys["IDENTITY_AUTHORITY_KEY"], env)
    finally:
        (VAR / "env").unlink(missing_ok=True)
        if cluster is not None:
            cluster.stop()
            print("PostgreSQL stopped", flush=True)


def _serve(settings: Settings, simulator_key: str, env: dict[str, str]) -> int:
    import uvloop

    from gateway.logs import configure
    from gateway.server import ListenError

    configure(settings.log_level, settings.log_format)
    try:
        return uvloop.run(_serve_dev(settings, simulator_key, env))
    except KeyboardInterrupt:
        pass
    except ListenError as exc:
        print(f"gateway: bad setting: {exc}", file=sys.stderr)
        return 2
    return 0


def _write_env_file(env: dict[str, str]) -> None:
    """.var/env: the settings of this run, for the other commands (and `set -a; . .var/env; set +a`)."""
    path = VAR / "env"
    path.write_text("".join(f"{k}='{env[k]}'\n" for k in SHARED_SETTINGS if env.get(k)))
    path.chmod(0o600)


async def _serve_dev(settings: Settings, simulator_key: str, env: dict[str, str]) -> int:
    from gateway.server import serve
    from gateway.simulators.identity_authority import start_simulator
    from gateway.storage.db import create_pool, migrate_dsn
    from gateway.storage.principals import PrincipalRepository

    applied = await migrate_dsn(settings.database_url)
    print("migrations: " + (", ".join(applied) or "current"), flush=True)
    simulator = None
    if not settings.identity_authority_url:
        registry = Path(str(resources.files("gateway.data") / "demo_registry.json"))
        simulator = await start_simulator(registry, api_key=simulator_key)
        print(f"identity-authority simulator on {simulator.url} (registry {registry})", flush=True)
        settings = replace(settings, identity_authority_url=simulator.url, identity_authority_key=simulator_key)
    else:
        print(f"identity authority: {settings.identity_authority_url} (IDENTITY_AUTHORITY_URL)", flush=True)
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        _, token = await PrincipalRepository(pool).create_token("dev-admin", frozenset(Role))
    finally:
        await pool.close()
    (VAR / "dev-token").write_text(token + "\n")
    (VAR / "dev-token").chmod(0o600)
    print(f"development admin token (all roles; also in .var/dev-token):\n  {token}", flush=True)
    print("try: .venv/bin/python -m gateway demo", flush=True)
    if not settings.tls_cert:
        from gateway.security.tls import is_loopback

        where = "on loopback only" if is_loopback(settings.listen) else "off loopback (GATEWAY_ALLOW_PLAINTEXT=1)"
        print(f"make run serves plaintext (no TLS), {where}: {settings.listen}; README's Transport security "
              "says how to serve TLS and mutual TLS", flush=True)
    try:
        if settings.processes > 1:  # make run serves one process unless GATEWAY_PROCESSES says more
            from gateway.server import check_listen
            from gateway.supervisor import supervise

            check_listen(settings.listen)
            return await supervise(settings, settings.processes, {
                **os.environ, **env, "IDENTITY_AUTHORITY_URL": settings.identity_authority_url,
                "IDENTITY_AUTHORITY_KEY": settings.identity_authority_key})
        await serve(settings)
        return 0
    finally:
        if simulator is not None:
            await simulator.close()
        await asyncio.sleep(0)

