"""The evidence appender against real PostgreSQL: a backlog (hashed in a thread) and a small round (hashed in the
event loop) give the same leaves the records themselves give, and one tree over all of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.evidence.merkle import node_hash
from gateway.core.evidence.records import record_leaf_hash
from gateway.core.evidence_service import EvidenceService, Signer
from gateway.live import evidence as appender_module
from gateway.live.evidence import EvidenceAppender
from gateway.storage.db import create_pool
from gateway.storage.evidence import EvidenceRepository


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    found = await create_pool(db_dsn, min_size=1, max_size=2)
    yield found
    await found.close()


async def _audits(pool: asyncpg.Pool, n: int, start: int) -> None:
    pid = await pool.fetchval("INSERT INTO principals (name, roles) VALUES ($1, '{investigator}') RETURNING id",
                              f"inv-{start}")
    await pool.executemany("INSERT INTO audit_records (principal_id, principal, method, case_no, status, at)"
                           " VALUES ($1, 'inv', 'Search', $2, 'OK', $3)",
                           [(pid, f"CASE-{start + i}", datetime.now(UTC)) for i in range(n)])


def _root(leaves: list[bytes]) -> bytes:
    """RFC 6962's tree hash, computed here from the leaves alone."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(_root(leaves[:split]), _root(leaves[split:]))


async def test_a_backlog_and_a_small_round_log_the_leaves_their_records_give(pool: asyncpg.Pool) -> None:
    repo = EvidenceRepository(pool)
    service = EvidenceService(repo, Signer("test", Ed25519PrivateKey.generate()), origin="test/evidence",
                              past_keys=(), clock=lambda: datetime.now(UTC))
    appender = EvidenceAppender(pool, repo, service)
    backlog = appender_module.INLINE_HASHES + 44  # more than a round hashed in the loop: the thread takes it
    await _audits(pool, backlog, 0)
    assert await appender.append_pending() == backlog
    await _audits(pool, 5, backlog)  # a small round: hashed in the loop
    assert await appender.append_pending() == 5

    leaves = []
    for index in range(backlog + 5):
        found = await repo.leaf_record(index)
        assert found is not None, index
        record, stored = found
        assert stored == record_leaf_hash(record), index  # the leaf is its record's, whichever path hashed it
        leaves.append(stored)
    firsts = [await repo.leaf_record(i) for i in (0, backlog, backlog + 4)]
    assert [found[0]["case_no"] for found in firsts if found] == ["CASE-0", f"CASE-{backlog}", f"CASE-{backlog + 4}"]
    head = await service.sign_now()
    assert head.tree_size == backlog + 5 and head.root_hash == _root(leaves)
