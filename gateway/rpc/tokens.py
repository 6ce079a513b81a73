"""Token look-ups at the door, cached, and dropped from the cache the moment a token loses its rights."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.core.errors import Unauthenticated
from gateway.core.model import Principal
from gateway.security.credentials import hash_token
from gateway.storage.principals import TokenRecord

MAX_ENTRIES = 10_000  # bounded: a flood of bad tokens must not grow memory


@dataclass(frozen=True)
class _Entry:
    until: float  # monotonic time after which the entry is looked up again
    record: TokenRecord | None


class TokenCache:
    """Answers token look-ups from memory for up to ttl_s, so every call does not cost a query.

    Entries are only trusted while something keeps them honest: the revocation listener evicts an entry
    when its token is revoked, expires differently or its principal changes, and suspends the cache while
    its connection is down (every call then looks up the database) and clears it on reconnecting. An
    eviction also discards any look-up still in flight, which may have read the token before the change.
    """

    def __init__(self, lookup: Callable[[bytes], Awaitable[TokenRecord | None]], ttl_s: float, *,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time) -> None:
        self._lookup = lookup
        self._ttl = ttl_s
        self._clock = clock
        self._wall = wall_clock
        self._entries: dict[bytes, _Entry] = {}
        self._generation = 0  # bumped by every eviction: a look-up that started before one is not cached
        self._suspended = False

    async def authenticate(self, token: str) -> Principal:
        """The token's principal; Unauthenticated naming why for an unknown, revoked or expired token."""
        record = await self.record(token)
        if record is None:
            raise Unauthenticated("the token is not valid")
        if record.revoked:
            raise Unauthenticated("the token has been revoked")
        if record.expires_at is not None and record.expires_at.timestamp() <= self._wall():
            raise Unauthenticated("the token has expired")
        return record.principal

    async def record(self, token: str) -> TokenRecord | None:
        """The token's record, from the cache when it may be trusted, else from the database."""
        digest = hash_token(token)
        now = self._clock()
        if not self._suspended:
            hit = self._entries.get(digest)
            if hit is not None and hit.until > now:
                return hit.record
        generation = self._generation
        found = await self._lookup(digest)
        if self._ttl > 0 and not self._suspended and generation == self._generation:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = _Entry(now + self._ttl, found)
        return found

    def evict_token(self, digest: bytes) -> None:
        """Forgets one token (by its hash): its next call is looked up again."""
        self._generation += 1
        self._entries.pop(digest, None)

    def evict_principal(self, principal_id: int) -> None:
        """Forgets every token of one principal (disabled, or its roles changed)."""
        self._generation += 1
        for digest in [d for d, e in self._entries.items()
                       if e.record is not None and e.record.principal.id == principal_id]:
            del self._entries[digest]

    def clear(self) -> None:
        """Forgets everything."""
        self._generation += 1
        self._entries.clear()

    def suspend(self) -> None:
        """Stops answering from memory (nothing tells this process of revocations now); forgets everything."""
        self._suspended = True
        self.clear()

    def resume(self) -> None:
        """Answers from memory again, starting empty: whatever changed while suspended is read afresh."""
        self.clear()
        self._suspended = False

    @property
    def suspended(self) -> bool:
        """Whether every look-up goes to the database."""
        return self._suspended
