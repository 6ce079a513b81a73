"""The RFC 6962 / RFC 9162 Merkle tree of the evidence log, over a store that never recomputes the tree.

Hashes: leaf_hash(d) = SHA-256(0x00 || d), node_hash(l, r) = SHA-256(0x01 || l || r); the tree head of n > 1
leaves splits them at k, the largest power of two below n: MTH(D[n]) = node_hash(MTH(D[0:k]), MTH(D[k:n])).

The store keeps the leaf hashes (level 0, by leaf index) and the hashes of complete aligned subtrees at
levels 8, 16, 24, ...: level L index i is MTH(D[i*2^L : (i+1)*2^L]). Any other node is computed from the
stored hashes of the level group below it, at most 255 of each group, so an append writes a few rows and a
proof reads a few hundred. `needed_*` name what a computation reads, as (level, start, stop) ranges that
storage fetches in one query; the computations take a mapping (level, index) -> hash holding at least that.
The verifiers need no store: they are what the offline bundle verifier runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from gateway.core.errors import DomainError

HASH_SIZE = 32
GROUP = 8  # stored levels are the multiples of this
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 6962: the hash of an empty tree is that of the empty string

Stored = Mapping[tuple[int, int], bytes]
Node = tuple[int, int]  # a tree node, as the leaf range [start, stop) it covers


class MerkleError(DomainError):
    """A tree computation cannot be done: sizes out of range, or a hash the store should hold is missing."""


class StoredRange(NamedTuple):
    """The stored hashes of one level with index in [start, stop)."""

    level: int
    start: int
    stop: int

    def keys(self) -> Iterator[tuple[int, int]]:
        """Each (level, index) the range holds."""
        return ((self.level, i) for i in range(self.start, self.stop))


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two below size (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _reads(node: Node) -> list[StoredRange]:
    """The stored hashes a node is computed from: per level group, the subtrees its size's bits name."""
    start, size = node[0], node[1] - node[0]
    found: list[StoredRange] = []
    level = 0
    while size >> level:
        # Nodes are aligned (start is a multiple of the power of two at or above size), so these divide.
        lo = start + ((size >> (level + GROUP)) << (level + GROUP))
        hi = start + ((size >> level) << level)
        if hi > lo:
            found.append(StoredRange(level, lo >> level, hi >> level))
        level += GROUP
    return found


def _merged(ranges: Iterable[StoredRange]) -> tuple[StoredRange, ...]:
    """The same hashes as few sorted ranges: overlapping and touching ranges of a level joined."""
    out: list[StoredRange] = []
    for r in sorted(ranges):
        if out and out[-1].level == r.level and r.start <= out[-1].stop:
            out[-1] = out[-1]._replace(stop=max(out[-1].stop, r.stop))
        else:
            out.append(r)
    return tuple(out)


def _get(stored: Stored, level: int, index: int) -> bytes:
    """One stored hash, or MerkleError naming it."""
    found = stored.get((level, index))
    if found is None:
        raise MerkleError(f"the store lacks the hash at level {level}, index {index}")
    if len(found) != HASH_SIZE:
        raise MerkleError(f"the stored hash at level {level}, index {index} is not {HASH_SIZE} bytes")
    return found


def _reduce(hashes: list[bytes]) -> bytes:
    """The root of a complete subtree given its nodes of one level (a power of two of them)."""
    sha256 = hashlib.sha256  # inlined node_hash: proofs spend their time here
    while len(hashes) > 1:
        hashes = [sha256(b"\x01" + left + right).digest()
                  for left, right in zip(hashes[::2], hashes[1::2], strict=True)]
    return hashes[0]


def _level(stored: Stored, level: int, start: int, stop: int) -> list[bytes]:
    """The stored hashes of one level with index in [start, stop), or MerkleError naming the first bad one."""
    try:
        found = [stored[(level, i)] for i in range(start, stop)]
    except KeyError:
        found = [_get(stored, level, i) for i in range(start, stop)]
    if found and set(map(len, found)) != {HASH_SIZE}:
        found = [_get(stored, level, i) for i in range(start, stop)]
    return found


def _perfect(start: int, height: int, stored: Stored) -> bytes:
    """The hash of the complete subtree of 2^height leaves from start, from the level group below it."""
    base = height - height % GROUP
    first = start >> base
    return _reduce(_level(stored, base, first, first + (1 << (height - base))))


def _mth(node: Node, stored: Stored) -> bytes:
    """MTH(D[start:stop]) of an aligned node, from the store."""
    start, stop = node
    size = stop - start
    if size & (size - 1) == 0:
        return _perfect(start, size.bit_length() - 1, stored)
    k = _split(size)
    return node_hash(_perfect(start, k.bit_length() - 1, stored), _mth((start + k, stop), stored))


def _path(index: int, size: int) -> list[Node]:
    """RFC 9162 PATH(index, D[size]) as nodes, the leaf's sibling first."""
    nodes: list[Node] = []
    start, stop = 0, size
    while stop - start > 1:
        k = _split(stop - start)
        if index < start + k:
            nodes.append((start + k, stop))
            stop = start + k
        else:
            nodes.append((start, start + k))
            start += k
    return nodes[::-1]


def _subproof(old: int, new: int) -> list[Node]:
    """RFC 9162 SUBPROOF(old, D[new], true) as nodes, deepest first."""
    nodes: list[Node] = []
    start, stop, whole = 0, new, True
    while old - start != stop - start:
        k = _split(stop - start)
        if old - start <= k:
            nodes.append((start + k, stop))
            stop = start + k
        else:
            nodes.append((start, start + k))
            start, whole = start + k, False
    if not whole:
        nodes.append((start, stop))  # the old tree's own right-edge node, which the verifier cannot derive
    return nodes[::-1]


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise MerkleError(f"leaf index {index} is not in a tree of {size} leaves")


def _check_sizes(old: int, new: int) -> None:
    if not 0 <= old <= new:
        raise MerkleError(f"no consistency proof from {old} leaves to {new}: sizes must satisfy 0 <= old <= new")


def _consistency_nodes(old: int, new: int) -> list[Node]:
    _check_sizes(old, new)
    return [] if old in (0, new) else _subproof(old, new)


def needed_for_root(size: int) -> tuple[StoredRange, ...]:
    """The stored hashes root_hash(size) reads."""
    if size < 0:
        raise MerkleError(f"a tree cannot have {size} leaves")
    return _merged(_reads((0, size))) if size else ()


def needed_for_inclusion(index: int, size: int) -> tuple[StoredRange, ...]:
    """The stored hashes inclusion_proof(index, size) reads."""
    _check_index(index, size)
    return _merged(r for node in _path(index, size) for r in _reads(node))


def needed_for_consistency(old: int, new: int) -> tuple[StoredRange, ...]:
    """The stored hashes consistency_proof(old, new) reads."""
    return _merged(r for node in _consistency_nodes(old, new) for r in _reads(node))


def root_hash(size: int, stored: Stored) -> bytes:
    """MTH of the first size leaves."""
    needed_for_root(size)  # checks the size
    return _mth((0, size), stored) if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, stored: Stored) -> list[bytes]:
    """The RFC 9162 inclusion proof (audit path) of leaf index in the tree of size leaves."""
    _check_index(index, size)
    return [_mth(node, stored) for node in _path(index, size)]


def consistency_proof(old: int, new: int, stored: Stored) -> list[bytes]:
    """The RFC 9162 consistency proof between the trees of old and new leaves (empty when old is 0 or new)."""
    return [_mth(node, stored) for node in _consistency_nodes(old, new)]


def needed_for_append(old_size: int, new_size: int) -> tuple[StoredRange, ...]:
    """What stored_nodes_completed reads from the store: the earlier hashes of the blocks the append completes."""
    _check_sizes(old_size, new_size)
    ranges: list[StoredRange] = []
    level = 0
    while (new_size >> (level + GROUP)) > (old_size >> (level + GROUP)):
        block = (old_size >> (level + GROUP)) << (level + GROUP)
        if old_size > block:
            ranges.append(StoredRange(level, block >> level, old_size >> level))
        level += GROUP
    return tuple(ranges)


def stored_nodes_completed(old_size: int, new_size: int, stored: Stored) -> list[tuple[int, int, bytes]]:
    """The (level, index, hash) rows at levels 8, 16, ... that appending leaves old_size..new_size-1 completes.

    `stored` holds what needed_for_append returned and the new leaves' hashes (level 0, old_size..new_size-1).
    """
    _check_sizes(old_size, new_size)
    made: dict[tuple[int, int], bytes] = {}
    known = _Overlay(made, stored)
    level = 0
    while (new_size >> (level + GROUP)) > (old_size >> (level + GROUP)):
        up = level + GROUP
        for i in range(old_size >> up, new_size >> up):
            made[(up, i)] = _reduce(_level(known, level, i << GROUP, (i + 1) << GROUP))
        level = up
    return [(lvl, i, h) for (lvl, i), h in sorted(made.items())]


class _Overlay(Mapping[tuple[int, int], bytes]):
    """Hashes made during an append, in front of those the caller gave."""

    def __init__(self, front: dict[tuple[int, int], bytes], back: Stored) -> None:
        self._front, self._back = front, back

    def __getitem__(self, key: tuple[int, int]) -> bytes:
        return self._front[key] if key in self._front else self._back[key]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        yield from self._front
        yield from (k for k in self._back if k not in self._front)

    def __len__(self) -> int:
        return len(self._front) + sum(1 for k in self._back if k not in self._front)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: whether proof shows the leaf hash at index in the tree of size with this root."""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: whether proof shows the tree of old_size is a prefix of that of new_size.

    The RFC's algorithm covers 0 < old_size < new_size; beyond it, equal sizes need equal roots and an empty
    proof, and the empty tree (whose root is SHA-256 of nothing) is a prefix of every tree, with an empty proof.
    """
    if not 0 <= old_size <= new_size:
        return False
    if old_size == 0 or old_size == new_size:
        return not proof and (old_root == EMPTY_ROOT if old_size == 0 else old_root == new_root)
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0
