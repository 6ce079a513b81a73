"""Principals and their tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.core.errors import AlreadyExists
from gateway.core.model import Principal, Role
from gateway.security.credentials import generate_token, hash_token
from gateway.storage.db import translate_errors

_ROLE_VALUES = frozenset(r.value for r in Role)


@dataclass(frozen=True)
class TokenRecord:
    """A token as the door needs it: whose it is, until when it is good, and whether it was revoked."""

    principal: Principal
    expires_at: datetime | None
    revoked: bool


class PrincipalRepository:
    """Owns the SQL of principals and api_tokens."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @translate_errors
    async def create_token(self, name: str, roles: frozenset[Role], *,
                           expires_at: datetime | None = None) -> tuple[Principal, str]:
        """Creates the principal if new (or updates its roles) and issues a token, returned once; it stops
        working at expires_at when given."""
        token = generate_token()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO principals (name, roles) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET roles = EXCLUDED.roles RETURNING id",
                name, sorted(r.value for r in roles),
            )
            try:
                await conn.execute(
                    "INSERT INTO api_tokens (principal_id, token_hash, expires_at) VALUES ($1, $2, $3)",
                    row["id"], hash_token(token), expires_at,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists("token collision; try again") from None
        return Principal(row["id"], name, roles), token

    @translate_errors
    async def by_token_hash(self, digest: bytes) -> TokenRecord | None:
        """The token (live, expired or revoked) of an enabled principal, or None for an unknown one."""
        row = await self._pool.fetchrow(
            "SELECT p.id, p.name, p.roles, t.expires_at, t.revoked_at IS NOT NULL AS revoked"
            " FROM api_tokens t JOIN principals p ON p.id = t.principal_id"
            " WHERE t.token_hash = $1 AND p.disabled_at IS NULL",
            digest,
        )
        if row is None:
            return None
        # A role this version does not know (a newer one wrote it) grants nothing here: the door answers
        # PERMISSION_DENIED, where Role(r) raised ValueError and every call of the principal was INTERNAL.
        roles = frozenset(Role(r) for r in row["roles"] if r in _ROLE_VALUES)
        principal = Principal(row["id"], row["name"], roles)
        return TokenRecord(principal, row["expires_at"], row["revoked"])

    @translate_errors
    async def revoke_all(self, name: str) -> int:
        """Revokes every token of a principal; returns how many (every gateway process is told at commit)."""
        status = await self._pool.execute(
            "UPDATE api_tokens SET revoked_at = now() FROM principals p"
            " WHERE p.id = api_tokens.principal_id AND p.name = $1 AND revoked_at IS NULL",
            name,
        )
        return int(status.split()[-1])

    @translate_errors
    async def revoke_token(self, token: str) -> bool:
        """Revokes one token, given as issued; False if it is unknown or was revoked already."""
        status = await self._pool.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
            hash_token(token),
        )
        return status.split()[-1] != "0"

    @translate_errors
    async def system_principal(self, name: str, roles: frozenset[Role]) -> Principal:
        """A principal with no token, under which the gateway itself acts (re-screening holds)."""
        row = await self._pool.fetchrow(
            "INSERT INTO principals (name, roles) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET roles = EXCLUDED.roles RETURNING id",
            name, sorted(r.value for r in roles),
        )
        return Principal(row["id"], name, roles)
