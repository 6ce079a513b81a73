"""The evidence log's Merkle tree against a naive RFC 6962 implementation, published vectors and tampering."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Mapping
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.evidence import merkle
from gateway.core.evidence.merkle import MerkleError, StoredRange
from tests.conftest import FIXTURES

BIG = 70_000  # past 65,536, so level-16 nodes are stored and read
LEAVES = [hashlib.sha256(i.to_bytes(4, "big")).digest()[: i % 7 + 1] for i in range(BIG)]  # leaf data


# The reference: RFC 6962's recursive definitions, word for word, over the leaf data.
@cache
def naive_mth(start: int, stop: int) -> bytes:
    n = stop - start
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + LEAVES[start]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(start, start + k) + naive_mth(start + k, stop)).digest()


def naive_path(m: int, start: int, stop: int) -> list[bytes]:
    n = stop - start
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return naive_path(m, start, start + k) + [naive_mth(start + k, stop)]
    return naive_path(m - k, start + k, stop) + [naive_mth(start, start + k)]


def naive_subproof(m: int, start: int, stop: int, b: bool) -> list[bytes]:
    n = stop - start
    if m == n:
        return [] if b else [naive_mth(start, stop)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return naive_subproof(m, start, start + k, b) + [naive_mth(start + k, stop)]
    return naive_subproof(m - k, start + k, stop, False) + [naive_mth(start, start + k)]


def build_store(size: int, seed: int) -> dict[tuple[int, int], bytes]:
    """A store filled the way the appender fills it: batches of random sizes, reading only what it is told."""
    rng, store, old = random.Random(seed), {}, 0
    while old < size:
        new = min(size, old + rng.choice([1, 3, 40, 255, 256, 700, 3000]))
        fetched = {k: store[k] for r in merkle.needed_for_append(old, new) for k in r.keys()}
        fresh = {(0, i): merkle.leaf_hash(LEAVES[i]) for i in range(old, new)}
        rows = merkle.stored_nodes_completed(old, new, {**fetched, **fresh})
        store.update(fresh)
        store.update({(level, i): h for level, i, h in rows})
        old = new
    return store


STORE_300 = build_store(300, seed=1)
STORE_BIG = build_store(BIG, seed=2)


def only(store: Mapping[tuple[int, int], bytes], ranges: tuple[StoredRange, ...]) -> dict[tuple[int, int], bytes]:
    """Just the hashes the ranges name: a computation that reads anything else raises."""
    return {k: store[k] for r in ranges for k in r.keys()}


class Recording(Mapping[tuple[int, int], bytes]):
    """A store that remembers which hashes were read."""

    def __init__(self, inner: Mapping[tuple[int, int], bytes]) -> None:
        self.inner, self.read = inner, set()

    def __getitem__(self, key: tuple[int, int]) -> bytes:
        self.read.add(key)
        return self.inner[key]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)


def test_hashes_are_the_rfc_6962_domain_separated_ones() -> None:
    assert merkle.leaf_hash(b"") == bytes.fromhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert merkle.node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert merkle.root_hash(0, {}) == bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


@pytest.mark.slow
def test_every_tree_of_up_to_300_leaves_matches_the_naive_one() -> None:
    for size in range(1, 301):
        root = merkle.root_hash(size, only(STORE_300, merkle.needed_for_root(size)))
        assert root == naive_mth(0, size), size
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, only(STORE_300, merkle.needed_for_inclusion(index, size)))
            assert proof == naive_path(index, 0, size), (index, size)
            assert merkle.verify_inclusion(merkle.leaf_hash(LEAVES[index]), index, size, proof, root)


@pytest.mark.slow
def test_every_consistency_proof_up_to_300_leaves_matches_the_naive_one() -> None:
    for new in range(1, 301):
        for old in range(1, new + 1):
            proof = merkle.consistency_proof(old, new, only(STORE_300, merkle.needed_for_consistency(old, new)))
            assert proof == naive_subproof(old, 0, new, True), (old, new)
            assert merkle.verify_consistency(old, new, naive_mth(0, old), naive_mth(0, new), proof), (old, new)


def test_the_appender_stores_exactly_the_complete_aligned_subtrees_at_levels_8_and_16() -> None:
    upper = {k: h for k, h in STORE_BIG.items() if k[0] > 0}
    assert sorted(upper) == [(8, i) for i in range(BIG >> 8)] + [(16, 0)]
    assert all(h == naive_mth(i << level, (i + 1) << level) for (level, i), h in upper.items())


@settings(max_examples=150, deadline=None)
@given(st.integers(1, BIG).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(0, n))))
def test_large_trees_match_the_naive_one(case: tuple[int, int, int]) -> None:
    size, index, old = case
    assert merkle.root_hash(size, only(STORE_BIG, merkle.needed_for_root(size))) == naive_mth(0, size)
    proof = merkle.inclusion_proof(index, size, only(STORE_BIG, merkle.needed_for_inclusion(index, size)))
    assert proof == naive_path(index, 0, size)
    consistency = merkle.consistency_proof(old, size, only(STORE_BIG, merkle.needed_for_consistency(old, size)))
    assert consistency == (naive_subproof(old, 0, size, True) if old else [])
    assert merkle.verify_consistency(old, size, naive_mth(0, old), naive_mth(0, size), consistency)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, BIG).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(1, n))))
def test_needed_names_exactly_what_is_read_in_few_ranges(case: tuple[int, int, int]) -> None:
    size, index, old = case
    for needed, compute in [
        (merkle.needed_for_root(size), lambda s: merkle.root_hash(size, s)),
        (merkle.needed_for_inclusion(index, size), lambda s: merkle.inclusion_proof(index, size, s)),
        (merkle.needed_for_consistency(old, size), lambda s: merkle.consistency_proof(old, size, s)),
    ]:
        recording = Recording(STORE_BIG)
        compute(recording)
        assert recording.read == {k for r in needed for k in r.keys()}
        assert len(needed) <= 12  # a handful of contiguous ranges, not hundreds of single keys
        for level in {r.level for r in needed}:
            assert sum(r.stop - r.start for r in needed if r.level == level) <= 2 * 256


@settings(max_examples=80, deadline=None)
@given(st.integers(0, BIG - 1).flatmap(lambda o: st.tuples(st.just(o), st.integers(o, min(BIG, o + 5000)))))
def test_an_append_reads_only_the_partial_blocks(case: tuple[int, int]) -> None:
    old, new = case
    needed = merkle.needed_for_append(old, new)
    fresh = {(0, i): STORE_BIG[(0, i)] for i in range(old, new)}
    rows = merkle.stored_nodes_completed(old, new, {**only(STORE_BIG, needed), **fresh})
    assert all(start * (1 << r.level) < old for r in needed for start in (r.stop - 1,))  # only earlier hashes
    assert all(r.stop - r.start < 256 for r in needed)
    expected = {k for k in STORE_BIG if k[0] > 0 and old < (k[1] + 1) << k[0] <= new}
    assert {(level, i) for level, i, _ in rows} == expected
    assert all(STORE_BIG[(level, i)] == h for level, i, h in rows)


def test_the_published_rfc_6962_vectors() -> None:
    vectors = json.loads((FIXTURES / "evidence" / "rfc6962_vectors.json").read_text())
    leaves = [merkle.leaf_hash(bytes.fromhex(d)) for d in vectors["leaves"]]
    store = {(0, i): h for i, h in enumerate(leaves)}
    for size, root in enumerate(vectors["roots"], 1):
        assert merkle.root_hash(size, store).hex() == root
    for v in vectors["inclusion"]:
        proof = [bytes.fromhex(h) for h in v["proof"]]
        assert merkle.inclusion_proof(v["index"], v["size"], store) == proof
        root = bytes.fromhex(vectors["roots"][v["size"] - 1])
        assert merkle.verify_inclusion(leaves[v["index"]], v["index"], v["size"], proof, root)
    for v in vectors["consistency"]:
        proof = [bytes.fromhex(h) for h in v["proof"]]
        assert merkle.consistency_proof(v["old"], v["new"], store) == proof
        old_root, new_root = (bytes.fromhex(vectors["roots"][s - 1]) for s in (v["old"], v["new"]))
        assert merkle.verify_consistency(v["old"], v["new"], old_root, new_root, proof)


def _flipped(proof: list[bytes], i: int) -> list[bytes]:
    return [bytes([h[0] ^ 8]) + h[1:] if j == i else h for j, h in enumerate(proof)]


@pytest.mark.parametrize(("index", "size"), [(0, 8), (5, 8), (2, 3), (1, 5), (200, 257), (299, 300)])
def test_a_tampered_inclusion_proof_fails(index: int, size: int) -> None:
    leaf, root = merkle.leaf_hash(LEAVES[index]), naive_mth(0, size)
    proof = naive_path(index, 0, size)
    assert merkle.verify_inclusion(leaf, index, size, proof, root)
    bad = [
        (leaf, index + 1, size, proof, root), (leaf, index - 1, size, proof, root),
        (leaf, index, size * 2, proof, root), (leaf, index, size // 2, proof, root),
        (b"wrong leaf", index, size, proof, root), (leaf, index, size, proof, merkle.EMPTY_ROOT),
        (leaf, index, size, proof + [root], root),
        (leaf, index, size, [root] + proof, root), (leaf, index, size, proof[:-1], root),
        *((leaf, index, size, _flipped(proof, i), root) for i in range(len(proof))),
    ]
    assert not any(merkle.verify_inclusion(*case) for case in bad)


@pytest.mark.parametrize(("old", "new"), [(1, 8), (6, 8), (2, 5), (6, 7), (100, 300), (256, 300), (257, 300)])
def test_a_tampered_consistency_proof_fails(old: int, new: int) -> None:
    r1, r2, proof = naive_mth(0, old), naive_mth(0, new), naive_subproof(old, 0, new, True)
    assert merkle.verify_consistency(old, new, r1, r2, proof)
    bad = [
        (old - 1, new, r1, r2, proof), (old + 1, new, r1, r2, proof), (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof), (old, new, b"wrong", r2, proof), (old, new, r1, b"wrong", proof),
        (old, new, r2, r1, proof), (old, new, r1, r2, []), (old, new, r1, r2, proof + [r1]),
        (old, new, r1, r2, [r2] + proof), (old, new, r1, r2, proof[:-1]),
        *((old, new, r1, r2, _flipped(proof, i)) for i in range(len(proof))),
    ]
    assert not any(merkle.verify_consistency(*case) for case in bad)


def test_consistency_edge_cases() -> None:
    r = naive_mth(0, 5)
    assert merkle.verify_consistency(5, 5, r, r, [])
    assert not merkle.verify_consistency(5, 5, r, naive_mth(0, 4), [])
    assert not merkle.verify_consistency(5, 5, r, r, [r])
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, r, [])
    assert not merkle.verify_consistency(0, 5, r, r, [])
    assert not merkle.verify_consistency(6, 5, r, r, [])
    assert merkle.consistency_proof(5, 5, {}) == [] and merkle.consistency_proof(0, 5, {}) == []


def test_a_missing_or_bad_stored_hash_is_named() -> None:
    store = dict(STORE_300)
    del store[(0, 290)]
    with pytest.raises(MerkleError, match="lacks the hash at level 0, index 290"):
        merkle.root_hash(300, store)
    store[(0, 7)] = b"short"
    with pytest.raises(MerkleError, match="level 0, index 7 is not 32 bytes"):
        merkle.inclusion_proof(0, 300, store)
    with pytest.raises(MerkleError, match="lacks the hash at level 8, index 0"):
        merkle.root_hash(300, {k: h for k, h in STORE_300.items() if k[0] == 0})


def test_sizes_out_of_range_are_refused() -> None:
    for call in (lambda: merkle.inclusion_proof(5, 5, {}), lambda: merkle.needed_for_inclusion(-1, 5),
                 lambda: merkle.consistency_proof(6, 5, {}), lambda: merkle.needed_for_append(9, 8),
                 lambda: merkle.root_hash(-1, {})):
        with pytest.raises(MerkleError):
            call()
    assert not merkle.verify_inclusion(merkle.leaf_hash(b""), 0, 0, [], merkle.EMPTY_ROOT)
