"""Principals and their tokens."""

from __future__ import annotations

import asyncpg

from gateway.core.errors import AlreadyExists
from gateway.core.model import Principal, Role
from gateway.security.credentials import generate_token, hash_token
from gateway.storage.db import translate_errors


class PrincipalRepository:
    """Owns the SQL of principals and api_tokens."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @translate_errors
    async def create_token(self, name: str, roles: frozenset[Role]) -> tuple[Principal, str]:
        """Creates the principal if new (or updates its roles) and issues a token, returned once."""
        token = generate_token()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO principals (name, roles) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET roles = EXCLUDED.roles RETURNING id",
                name, sorted(r.value for r in roles),
            )
            try:
                await conn.execute(
                    "INSERT INTO api_tokens (principal_id, token_hash) VALUES ($1, $2)", row["id"], hash_token(token)
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists("token collision; try again") from None
        return Principal(row["id"], name, roles), token

    @translate_errors
    async def by_token_hash(self, digest: bytes) -> Principal | None:
        """The principal of a live token, or None."""
        row = await self._pool.fetchrow(
            "SELECT p.id, p.name, p.roles FROM api_tokens t JOIN principals p ON p.id = t.principal_id"
            " WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND p.disabled_at IS NULL",
            digest,
        )
        if row is None:
            return None
        return Principal(row["id"], row["name"], frozenset(Role(r) for r in row["roles"]))

    @translate_errors
    async def revoke_all(self, name: str) -> int:
        """Revokes every token of a principal; returns how many."""
        status = await self._pool.execute(
            "UPDATE api_tokens SET revoked_at = now() FROM principals p"
            " WHERE p.id = api_tokens.principal_id AND p.name = $1 AND revoked_at IS NULL",
            name,
        )
        return int(status.split()[-1])

    @translate_errors
    async def system_principal(self, name: str, roles: frozenset[Role]) -> Principal:
        """A principal with no token, under which the gateway itself acts (re-screening holds)."""
        row = await self._pool.fetchrow(
            "INSERT INTO principals (name, roles) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET roles = EXCLUDED.roles RETURNING id",
            name, sorted(r.value for r in roles),
        )
        return Principal(row["id"], name, roles)
