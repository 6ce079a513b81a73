"""A bare grpc.aio echo service, the ceiling the gateway is measured against: `python -m bench.echo --port 0`.

It is defined with generic handlers and bytes pass-through (no serializers), so it needs no .proto and costs
only what grpc.aio itself costs: one unary method and one bidirectional stream that answers each message.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator

import grpc

SERVICE = "bench.Echo"
UNARY = f"/{SERVICE}/Unary"
STREAM = f"/{SERVICE}/Stream"
PAYLOAD = bytes(range(100))  # the 100-byte message every echo call carries


async def _unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def _stream(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    async for message in requests:
        yield message


def handler() -> grpc.GenericRpcHandler:
    """The echo service's handler: request and response are the raw bytes on the wire."""
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(_unary),
        "Stream": grpc.stream_stream_rpc_method_handler(_stream),
    })


async def serve(host: str, port: int) -> None:
    """Serves until SIGINT or SIGTERM; prints the bound address first."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler(),))
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"echo listening on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    import uvloop

    p = argparse.ArgumentParser(prog="python -m bench.echo", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    uvloop.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
