"""Bearer tokens as credentials: made with 256 bits of randomness, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "cgw_"


def generate_token() -> str:
    """A new token with 256 bits of randomness."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """What the database keeps of a token. Tokens are random, so a plain SHA-256 cannot be brute-forced."""
    return hashlib.sha256(token.encode()).digest()
