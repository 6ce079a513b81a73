"""The door's limits: calls per second and open streams per principal, refused with RESOURCE_EXHAUSTED."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.core.limits import Rate, RateLimiter
from gateway.core.model import Principal, Role
from gateway.rpc.status import DOMAIN

# gRPC's own server pushback key (gRFC A6): a client whose retry policy lists RESOURCE_EXHAUSTED waits this long.
PUSHBACK_KEY = "grpc-retry-pushback-ms"


class LimitExceeded(Exception):
    """A call refused at the door for a limit; status is what the caller is answered."""

    def __init__(self, status: grpc.Status) -> None:
        super().__init__(status.details)
        self.status = status


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def exhausted(message: str, reason: str, *, retry_after_s: float | None = None,
              metadata: dict[str, str] | None = None) -> grpc.Status:
    """A RESOURCE_EXHAUSTED status with ErrorInfo and, when a retry delay is known, RetryInfo and pushback."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {})
    details = [_pack(info)]
    if retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(math.ceil(retry_after_s * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    status = rpc_status.to_status(status_pb2.Status(
        code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message=message, details=details))
    if retry_after_s is None:
        return status
    pushback = ((PUSHBACK_KEY, str(math.ceil(retry_after_s * 1000))),)
    return _Status(status.code, status.details, (*status.trailing_metadata, *pushback))


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


class DoorLimits:
    """Per-principal rate limits (a token bucket at its roles' most generous rate) and a cap on open streams."""

    def __init__(self, per_role: dict[Role, Rate], max_streams: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rates = RateLimiter(per_role)
        self._max_streams = max_streams
        self._streams: dict[int, int] = {}
        self._clock = clock

    @classmethod
    def from_settings(cls, rate_limits: Iterable[tuple[str, float, int]], max_streams: int) -> DoorLimits:
        """From RATE_LIMITS and MAX_STREAMS_PER_PRINCIPAL as the settings hold them."""
        return cls({Role(role): Rate(rate, burst) for role, rate, burst in rate_limits}, max_streams)

    def admit(self, principal: Principal) -> None:
        """Counts one call; raises LimitExceeded with the delay to wait when the principal is over its rate."""
        wait = self._rates.admit(principal.id, principal.roles, self._clock())
        if wait <= 0:
            return
        rate = self._rates.rate_of(principal.roles)
        raise LimitExceeded(exhausted(
            f"rate limit exceeded: {principal.name} may make {rate.per_second:g} calls per second"
            f" (bursts of {rate.burst}); retry in {math.ceil(wait * 1000)} ms",
            "RATE_LIMITED", retry_after_s=wait,
            metadata={"retry_after_ms": str(math.ceil(wait * 1000)), "limit_per_second": f"{rate.per_second:g}",
                      "burst": str(rate.burst)}))

    def open_stream(self, principal: Principal) -> None:
        """Counts one more open stream; raises LimitExceeded if the principal already has the most allowed."""
        open_now = self._streams.get(principal.id, 0)
        if open_now >= self._max_streams:
            raise LimitExceeded(exhausted(
                f"too many open streams: {principal.name} already has {open_now}, the most allowed;"
                " close one and retry", "TOO_MANY_STREAMS", metadata={"max_streams": str(self._max_streams)}))
        self._streams[principal.id] = open_now + 1

    def close_stream(self, principal: Principal) -> None:
        """Counts one stream fewer (however it ended)."""
        left = self._streams.get(principal.id, 0) - 1
        if left > 0:
            self._streams[principal.id] = left
        else:
            self._streams.pop(principal.id, None)

    def open_streams(self, principal_id: int) -> int:
        """How many streams the principal has open now."""
        return self._streams.get(principal_id, 0)
