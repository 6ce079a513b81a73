"""One door for every call: request ids, deadlines, authentication, limits, the per-RPC role table, error
mapping, metrics and the access log.

The door wraps each method's handler once, when its service is added to the server (`GatewayInterceptor.door`),
rather than as a grpc.aio interceptor: an interceptor is awaited on every call and rebuilt the handler each
time (its deserializer, its metrics' labels), work that does not change from one call of a method to the next.

Every call gets a request id: the caller's `x-request-id` metadata when it is well formed (1 to 64 letters,
digits and . _ : -, and nothing like a phone or document number), else a new one. It is sent back in the
trailing metadata (`x-request-id`, on errors too) and carried by every log line of the call (gateway.logs).
One access line per call at INFO (logger gateway.access): method, principal's name, status code, duration.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import grpc

from gateway.core.errors import DomainError, InvalidInput, PermissionDenied, Unauthenticated
from gateway.core.model import Principal, Role
from gateway.logs import CallContext, current_call, enter_call, redact
from gateway.rpc.limits import DoorLimits, LimitExceeded
from gateway.rpc.metrics import CALLS, LATENCY, OBSERVERS
from gateway.rpc.status import rich_status
from gateway.rpc.tokens import TokenCache
from gateway.rpc.wire import Rejected, message_type_of, safe_deserializer

log = logging.getLogger(__name__)
access = logging.getLogger("gateway.access")
_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")

REQUEST_ID = "x-request-id"
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")

# Methods that need no token: health checks and reflection, so probes and grpcurl work.
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                   "/grpc.reflection.v1.ServerReflection/")


def current_principal() -> Principal:
    """The principal of the call being served."""
    return _principal.get()


class GatewayInterceptor:
    """Authenticates every call, applies the role table, and turns core errors into rich statuses."""

    def __init__(self, tokens: TokenCache, role_table: Mapping[str, frozenset[Role]], *,
                 on_refused: Refused | None = None, audited_prefixes: tuple[str, ...] = (),
                 limits: DoorLimits | None = None) -> None:
        self._tokens = tokens
        self._roles = role_table
        self._on_refused = on_refused
        self._audited = audited_prefixes
        self._limits = limits

    def door(self, server: grpc.aio.Server) -> Door:
        """The server as the generated `add_*_to_server` functions see it: every handler they add is wrapped."""
        return Door(server, self.wrap)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The method's handler behind the door (once per method, not per call)."""
        if method.startswith(PUBLIC_PREFIXES):
            return _wrap(handler, method, None, None)
        roles = self._roles.get(method, frozenset())  # a method missing from the table is closed to all
        return _wrap(handler, method, lambda ctx, request: self._authorize(ctx, request, method, roles), self._limits)

    async def _authorize(self, context: grpc.aio.ServicerContext, request: Any, method: str,
                         roles: frozenset[Role]) -> Principal:
        token = _bearer(context.invocation_metadata() or ())
        if not token:
            raise Unauthenticated("missing authorization: Bearer <token> metadata")
        principal = await self._tokens.authenticate(token)
        if self._limits is not None:
            self._limits.admit(principal)  # every authenticated call counts, a refused one too
        if not principal.roles & roles:
            wanted = ", ".join(sorted(r.value for r in roles)) or "none"
            refused = PermissionDenied(f"{method} needs one of the roles: {wanted}")
            if self._on_refused is not None and method.startswith(self._audited):
                await self._on_refused(principal, method, request, refused)
            raise refused
        return principal


Wrap = Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]


class Door:
    """Stands in for the server while services are added, wrapping each handler they register."""

    def __init__(self, server: grpc.aio.Server, wrap: Wrap) -> None:
        self._server = server
        self._wrap = wrap

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(tuple(_WrappedGeneric(h, self._wrap) for h in handlers))

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]) -> None:
        self._server.add_registered_method_handlers(
            service, {name: self._wrap(f"/{service}/{name}", h) for name, h in handlers.items()})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class _WrappedGeneric(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A generic handler whose answers are wrapped, each method's once (the set of methods is the service's)."""

    def __init__(self, inner: grpc.GenericRpcHandler, wrap: Wrap) -> None:
        self._inner = inner
        self._wrap = wrap
        self._done: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._inner.service(details)
        if handler is None:
            return None
        method = details.method
        done = self._done.get(method)
        if done is None or done[0] is not handler:
            done = self._done[method] = (handler, self._wrap(method, handler))
        return done[1]


def _bearer(metadata: Any) -> str:
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer "):].strip()
    return ""


Authorize = Callable[[grpc.aio.ServicerContext, Any], Awaitable[Principal]] | None
# Told of a call the door refused for want of a role: (principal, method, request or None for a client stream).
Refused = Callable[[Principal, str, Any, PermissionDenied], Awaitable[None]]


def _request_id(context: grpc.aio.ServicerContext) -> str:
    """The caller's x-request-id if well formed, else a new one."""
    for key, value in context.invocation_metadata() or ():
        # An id that looks like a phone or document number is replaced: it would reach every log line of the call.
        if key == REQUEST_ID and isinstance(value, str) and _WELL_FORMED_ID.fullmatch(value) \
                and redact(value) == value:
            return value
    return secrets.token_hex(8)


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str,
                 trailing: Any = ()) -> None:
    """Aborts the call with the request id added to the trailing metadata (abort replaces what was set)."""
    call = current_call()
    extra = ((REQUEST_ID, call.request_id),) if call is not None else ()
    await context.abort(code, details, (*tuple(trailing or ()), *extra))


async def _fail(context: grpc.aio.ServicerContext, method: str, error: Exception) -> None:
    if isinstance(error, DomainError):
        status = rich_status(error)
        CALLS.labels(method, status.code.name).inc()
        await _abort(context, status.code, status.details, status.trailing_metadata)
    log.exception("unexpected error in %s", method, exc_info=error)
    CALLS.labels(method, "INTERNAL").inc()
    await _abort(context, grpc.StatusCode.INTERNAL, "internal error; it was logged")


def _wrap(handler: grpc.RpcMethodHandler, method: str, authorize: Authorize,
          limits: DoorLimits | None) -> grpc.RpcMethodHandler:
    deserialize = safe_deserializer(handler.request_deserializer, message_type_of(handler.request_deserializer))
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _unary(handler.unary_unary, method, authorize, False, None), deserialize, handler.response_serializer)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            _unary(handler.stream_unary, method, authorize, True, limits), deserialize,
            handler.response_serializer)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _streaming(handler.unary_stream, method, authorize, False, limits), deserialize,
            handler.response_serializer)
    return grpc.stream_stream_rpc_method_handler(
        _streaming(handler.stream_stream, method, authorize, True, limits), deserialize,
        handler.response_serializer)


def _checked(request: Any, streamed: bool) -> Any:
    """The request, or InvalidInput for a body the wire layer rejected (each streamed one as it arrives)."""
    if streamed:
        return _checked_stream(request)
    if isinstance(request, Rejected):
        raise InvalidInput(list(request.violations))
    return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    position = 0
    async for request in requests:
        position += 1
        if isinstance(request, Rejected):
            raise InvalidInput([replace(v, field=f"message {position}" + (f": {v.field}" if v.field else ""))
                                for v in request.violations])
        yield request


async def _enter(context: grpc.aio.ServicerContext, method: str, authorize: Authorize, request: Any,
                 streams: DoorLimits | None) -> Principal | None:
    """Checks the deadline, the token, the limits and the role; answers the principal if it holds an open stream
    slot that the caller must give back (streams given), else None."""
    await _before_deadline(context, method)
    if authorize is None:
        return None
    try:
        principal = await authorize(context, None if hasattr(request, "__aiter__") else request)
        _principal.set(principal)
        call = current_call()
        if call is not None:
            enter_call(CallContext(call.request_id, method, redact(principal.name)))
        await _before_deadline(context, method)  # the look-up may have taken what was left
        if streams is None:
            return None
        streams.open_stream(principal)
        return principal
    except LimitExceeded as refused:
        CALLS.labels(method, refused.status.code.name).inc()
        await _abort(context, refused.status.code, refused.status.details, refused.status.trailing_metadata)
        raise  # abort raises; this is never reached


async def _before_deadline(context: grpc.aio.ServicerContext, method: str) -> None:
    """Answers DEADLINE_EXCEEDED, and starts nothing, if the caller's deadline has already passed."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        CALLS.labels(method, "DEADLINE_EXCEEDED").inc()
        await _abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed before it was started")


def _begin(context: grpc.aio.ServicerContext, method: str) -> None:
    """Gives the call its request id: in the log context, and in the trailing metadata of a call that succeeds."""
    rid = _request_id(context)
    enter_call(CallContext(rid, method))
    context.set_trailing_metadata(((REQUEST_ID, rid),))


def _code_of(context: grpc.aio.ServicerContext, failed: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(failed, (asyncio.CancelledError, GeneratorExit)):
        return "CANCELLED"
    return "OK" if failed is None else "INTERNAL"


def _log_access(context: grpc.aio.ServicerContext, started: float, failed: BaseException | None) -> None:
    """The call's access line (and its latency), whichever way it ended."""
    elapsed = time.perf_counter() - started
    if access.isEnabledFor(logging.INFO):
        call = current_call()
        access.info("answered", extra={"code": _code_of(context, failed), "duration_ms": round(elapsed * 1000, 3),
                                       "principal": call.principal if call is not None else None})


def _unary(behavior: Callable[..., Awaitable[Any]], method: str, authorize: Authorize,
           streamed: bool, streams: DoorLimits | None) -> Callable[..., Any]:
    ok, latency = CALLS.labels(method, "OK"), LATENCY.labels(method)  # bound once, not looked up per call
    observe = OBSERVERS.get(method)

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        _begin(context, method)
        holder = None
        failed: BaseException | None = None
        try:
            holder = await _enter(context, method, authorize, request, streams)
            response = await behavior(_checked(request, streamed), context)
        except grpc.aio.AbortError as aborted:
            failed = aborted
            raise
        except Exception as error:  # every failure is answered with a mapped status, never a bare traceback
            failed = error
            await _fail(context, method, error)
            raise
        except BaseException as gone:  # cancelled: the caller left or its deadline passed
            failed = gone
            raise
        finally:  # cancelled, failed, past its deadline or answered: the stream's slot is given back
            if holder is not None and streams is not None:
                streams.close_stream(holder)
            latency.observe(time.perf_counter() - started)
            _log_access(context, started, failed)
        ok.inc()
        if observe is not None:
            observe(response)
        return response

    return call


def _streaming(behavior: Callable[..., AsyncIterator[Any]], method: str, authorize: Authorize,
               streamed: bool, streams: DoorLimits | None) -> Callable[..., Any]:
    observe = OBSERVERS.get(method)

    async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        started = time.perf_counter()
        _begin(context, method)
        holder = None
        failed: BaseException | None = None
        try:
            holder = await _enter(context, method, authorize, request, streams)
            async for response in behavior(_checked(request, streamed), context):
                if observe is not None:
                    observe(response)
                yield response
        except grpc.aio.AbortError as aborted:
            failed = aborted
            raise
        except Exception as error:  # as above: mapped status, traceback only in the log
            failed = error
            await _fail(context, method, error)
            raise
        except BaseException as gone:
            failed = gone
            raise
        finally:  # as above: the slot is given back however the stream ended
            if holder is not None and streams is not None:
                streams.close_stream(holder)
            _log_access(context, started, failed)
        CALLS.labels(method, "OK").inc()

    return call
