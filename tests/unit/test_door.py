"""The door wraps each method's handler once, when its service is added, for generic and registered handlers."""

from __future__ import annotations

from typing import Any

import grpc

from gateway.rpc.interceptor import Door


class _Server:
    def __init__(self) -> None:
        self.generic: list[Any] = []
        self.registered: dict[str, dict[str, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.registered[service] = handlers

    def add_insecure_port(self, address: str) -> int:
        return 4242


class _Details(grpc.HandlerCallDetails):  # type: ignore[misc]
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def _echo(request: bytes, context: Any) -> bytes:
    return request


def test_every_handler_added_through_the_door_is_wrapped_once_per_method() -> None:
    wrapped: list[str] = []

    def wrap(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        wrapped.append(method)
        return grpc.unary_unary_rpc_method_handler(handler.unary_unary)

    server = _Server()
    door = Door(server, wrap)  # type: ignore[arg-type]
    handlers = {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    door.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.S", handlers),))
    door.add_registered_method_handlers("t.S", handlers)

    assert wrapped == ["/t.S/Echo"]  # the registered one, named in full
    assert server.registered["t.S"]["Echo"] is not handlers["Echo"]
    generic = server.generic[0]
    first = generic.service(_Details("/t.S/Echo"))
    assert first is not handlers["Echo"] and generic.service(_Details("/t.S/Echo")) is first
    assert wrapped == ["/t.S/Echo", "/t.S/Echo"]  # the generic path wrapped it once, not per call
    assert generic.service(_Details("/t.S/Other")) is None  # an unknown method stays unknown
    assert door.add_insecure_port("127.0.0.1:0") == 4242  # everything else is the server's
