"""Token look-ups at the door, cached briefly."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from gateway.core.model import Principal
from gateway.security.credentials import hash_token


class TokenCache:
    """Answers token look-ups from memory for a few seconds, so every call does not cost a query."""

    def __init__(self, lookup: Callable[[bytes], Awaitable[Principal | None]], ttl_s: float) -> None:
        self._lookup = lookup
        self._ttl = ttl_s
        self._entries: dict[bytes, tuple[float, Principal | None]] = {}

    async def principal(self, token: str) -> Principal | None:
        """The token's principal, or None for an unknown, revoked or disabled token."""
        digest = hash_token(token)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = await self._lookup(digest)
        if len(self._entries) > 10_000:  # bounded: a flood of bad tokens must not grow memory
            self._entries.clear()
        self._entries[digest] = (now + self._ttl, found)
        return found
