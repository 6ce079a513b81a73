"""`python -m gateway health`: asks a gateway's grpc.health.v1 service whether it serves; for health checks.

Exit 0 when the answer is SERVING, 1 for any other answer or when no answer came within --timeout (a closed
port, a process that accepts but does not speak gRPC, a gateway shutting down). A container's HEALTHCHECK or
a Kubernetes exec probe runs it inside the gateway's own container, so it dials GATEWAY_LISTEN by default,
with a wildcard host (0.0.0.0, [::]) replaced by the loopback address. It dials plaintext unless the client
TLS variables are set, as for every client (GATEWAY_TLS_CA, GATEWAY_TLS_CLIENT_CERT/KEY and, since the probe
dials 127.0.0.1, GATEWAY_TLS_SERVER_NAME when the certificate does not name that address).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

DEFAULT_TARGET = "127.0.0.1:50051"
# A wildcard listen address is not one to dial: the probe runs beside the gateway, so it dials loopback.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "::": "[::1]", "": "127.0.0.1"}
# The client side of gateway.security.tls: any of them set means TLS.
_TLS_VARIABLES = ("GATEWAY_TLS_CA", "GATEWAY_TLS_CLIENT_CERT", "GATEWAY_TLS_CLIENT_KEY")


def register(sub: Any) -> None:
    """Adds the `health` command."""
    p = sub.add_parser("health", help="check a gateway through grpc.health.v1 (exit 0 when SERVING)")
    p.add_argument("--target", default="",
                   help=f"HOST:PORT to ask (default: $GATEWAY_LISTEN on loopback, else {DEFAULT_TARGET})")
    p.add_argument("--service", default="",
                   help="the service to ask about, e.g. courier.v1.Acceptance (default: the whole server)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer (default 2)")
    p.set_defaults(func=run)


def probe_target(given: str, listen: str | None = None) -> str:
    """--target if given, else GATEWAY_LISTEN with a wildcard host made loopback, else the default."""
    if given:
        return given
    listen = os.environ.get("GATEWAY_LISTEN", "") if listen is None else listen
    if not listen:
        return DEFAULT_TARGET
    host, _, port = listen.rpartition(":")
    return f"{_WILDCARDS.get(host, host)}:{port}"


def _channel(target: str) -> Any:
    """Plaintext, or TLS as the GATEWAY_TLS_* client variables say (as for every other client of the gateway)."""
    import grpc

    if not any(os.environ.get(name) for name in _TLS_VARIABLES):
        return grpc.insecure_channel(target)  # cryptography is not even imported: a probe runs often
    from gateway.security.tls import client_tls_from_env

    tls = client_tls_from_env()
    assert tls is not None
    extra = [("grpc.ssl_target_name_override", tls.server_name)] if tls.server_name else []
    return grpc.secure_channel(target, tls.credentials(), options=extra)


def check(target: str, service: str, timeout: float) -> tuple[bool, str]:
    """Calls Health/Check once; (serving, what to print): the status's name, or why there was none."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with _channel(target) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as err:
            code = err.code() if isinstance(err, grpc.Call) else None
            name = code.name if code is not None else "ERROR"
            return False, f"{name}: {err.details() if isinstance(err, grpc.Call) else err}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return answer.status == health_pb2.HealthCheckResponse.SERVING, status


def run(args: argparse.Namespace) -> int:
    """Prints `TARGET STATUS` (to stderr when not serving) and returns 0 only for SERVING."""
    if not args.timeout > 0:
        print("gateway health: --timeout must be more than 0", file=sys.stderr)
        return 2
    target = probe_target(args.target)
    if target.rpartition(":")[2] in ("", "0"):
        print(f"gateway health: {target} names no port to ask (set --target)", file=sys.stderr)
        return 2
    from gateway.settings import SettingsError

    try:
        serving, status = check(target, args.service, args.timeout)
    except SettingsError as exc:  # a client TLS file that cannot be read, named
        print(f"gateway health: bad setting: {exc}", file=sys.stderr)
        return 2
    label = f"{target} {args.service}".rstrip()
    print(f"{label} {status}", file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m gateway.commands.health`: the same check without loading every other command (HEALTHCHECK)."""
    p = argparse.ArgumentParser(prog="python -m gateway.commands.health", description=__doc__)
    register(p.add_subparsers(dest="command", required=True))
    return int(run(p.parse_args(["health", *(sys.argv[1:] if argv is None else argv)])))


if __name__ == "__main__":
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    raise SystemExit(main())
