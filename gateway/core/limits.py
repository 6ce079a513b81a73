"""Per-principal rate limits: a token bucket per principal, its rate and burst set per role."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.core.model import Role


@dataclass(frozen=True)
class Rate:
    """A sustained rate (calls per second) and a burst (calls allowed at once after a quiet spell).

    An infinite rate means no limit.
    """

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not math.isinf(self.per_second) and (not self.per_second > 0 or self.burst < 1):
            raise ValueError("a rate needs calls per second above 0 and a burst of at least 1")

    @property
    def unlimited(self) -> bool:
        """Whether this rate never refuses."""
        return math.isinf(self.per_second)


UNLIMITED = Rate(math.inf, 0)


def most_generous(rates: Iterable[Rate]) -> Rate | None:
    """The highest rate and the largest burst among several (a principal's roles); None for none at all."""
    found = list(rates)
    if not found:
        return None
    if any(r.unlimited for r in found):
        return UNLIMITED
    return Rate(max(r.per_second for r in found), max(r.burst for r in found))


class TokenBucket:
    """Holds up to `burst` tokens, refilled at `per_second`; each call takes one."""

    __slots__ = ("rate", "_tokens", "_stamp")

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self._tokens = float(rate.burst)
        self._stamp = now

    def take(self, now: float) -> float:
        """Takes a token if there is one and answers 0.0; otherwise answers the seconds until there is one."""
        rate = self.rate
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(float(rate.burst), self._tokens + elapsed * rate.per_second)
            self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / rate.per_second


class RateLimiter:
    """One bucket per principal, at the most generous rate of its roles; roles without a rate are unlimited."""

    def __init__(self, per_role: Mapping[Role, Rate]) -> None:
        self._per_role = dict(per_role)
        self._buckets: dict[int, TokenBucket] = {}
        self._rates: dict[frozenset[Role], Rate] = {}

    def rate_of(self, roles: frozenset[Role]) -> Rate:
        """The rate a principal with these roles is held to."""
        rate = self._rates.get(roles)
        if rate is None:
            rate = most_generous(self._per_role.get(r, UNLIMITED) for r in roles) or UNLIMITED
            self._rates[roles] = rate
        return rate

    def admit(self, principal_id: int, roles: frozenset[Role], now: float) -> float:
        """0.0 if the principal may make a call now (and counts it); else the seconds to wait before retrying."""
        rate = self.rate_of(roles)
        if rate.unlimited:
            return 0.0
        bucket = self._buckets.get(principal_id)
        if bucket is None or bucket.rate != rate:  # new, or its roles changed: a fresh, full bucket
            bucket = self._buckets[principal_id] = TokenBucket(rate, now)
        return bucket.take(now)
