"""The evidence log's use cases: signed tree heads, inclusion and consistency proofs, and exported bundles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.errors import FieldViolation, InvalidInput, NotFound, WrongState
from gateway.core.evidence import merkle
from gateway.core.evidence.bundle import ProvenRecord, build_bundle
from gateway.core.evidence.checkpoint import key_id, sign_checkpoint, verifier_key
from gateway.core.evidence.records import canonical_bytes


@dataclass(frozen=True)
class Head:
    """A signed tree head."""

    tree_size: int
    root_hash: bytes
    signed_at: datetime
    key_id: str
    note: str


@dataclass(frozen=True)
class Signer:
    """The key that signs tree heads now (older public keys are kept as verifier keys)."""

    key_name: str
    private_key: Ed25519PrivateKey

    @property
    def verifier_key(self) -> str:
        """Its public half in the note verifier-key form."""
        return verifier_key(self.key_name, self.private_key.public_key())


@dataclass(frozen=True)
class Proven:
    """One record with its leaf and its inclusion proof."""

    leaf_index: int
    record: dict[str, Any]
    leaf_hash: bytes
    proof: tuple[bytes, ...]


class EvidenceStore(Protocol):
    """The log as stored: leaves, subtree hashes, heads, and each leaf's record rebuilt from its row."""

    async def current_size(self) -> int: ...

    async def read_stored(self, ranges: Sequence[merkle.StoredRange]) -> dict[tuple[int, int], bytes]: ...

    async def latest_head(self) -> Head | None: ...

    async def head_at(self, size: int) -> Head | None: ...

    async def save_head(self, head: Head) -> None: ...

    async def leaf_record(self, index: int) -> tuple[dict[str, Any], bytes] | None: ...


class EvidenceService:
    """Signs heads over the log and proves what is in it."""

    def __init__(self, store: EvidenceStore, signer: Signer | None, *, origin: str, past_keys: Sequence[str],
                 clock: Callable[[], datetime]) -> None:
        self._store = store
        self._signer = signer
        self.origin = origin
        self._past_keys = tuple(past_keys)
        self._clock = clock

    def clock(self) -> datetime:
        """The service's clock."""
        return self._clock()

    @property
    def verifier_keys(self) -> tuple[str, ...]:
        """The current signing key's verifier key first, then the rotated ones kept for verification."""
        current = (self._signer.verifier_key,) if self._signer else ()
        return (*current, *(k for k in self._past_keys if k not in current))

    async def root(self, size: int) -> bytes:
        """The root hash of the log's first size leaves."""
        return merkle.root_hash(size, await self._store.read_stored(merkle.needed_for_root(size)))

    async def sign_now(self) -> Head:
        """Signs a head over every leaf appended so far (or answers the one already signed at that size)."""
        if self._signer is None:
            raise WrongState("no evidence signing key is configured (EVIDENCE_SIGNING_KEY)", field="fresh")
        size = await self._store.current_size()
        existing = await self._store.head_at(size)
        if existing is not None and existing.key_id == key_id(self._signer.verifier_key):
            return existing
        at = self._clock()
        root = await self.root(size)
        note = sign_checkpoint(self.origin, size, root, at, self._signer.private_key, self._signer.key_name)
        head = Head(size, root, at, key_id(self._signer.verifier_key), note)
        await self._store.save_head(head)
        return head

    async def sign_if_grown(self) -> Head | None:
        """Signs a new head when leaves were appended since the last one (the interval signer)."""
        if self._signer is None:
            return None
        latest = await self._store.latest_head()
        if latest is not None and latest.tree_size >= await self._store.current_size():
            return None
        return await self.sign_now()

    async def tree_head(self, fresh: bool) -> Head:
        """The latest signed head, or a new one."""
        if fresh:
            return await self.sign_now()
        latest = await self._store.latest_head()
        return latest if latest is not None else await self.sign_now()

    async def head_for(self, size: int) -> Head:
        """The signed head proofs are given against: of this size (0: the latest); NotFound if none was signed."""
        if size == 0:
            return await self.tree_head(fresh=False)
        found = await self._store.head_at(size)
        if found is None:
            raise NotFound(f"no signed tree head of size {size}: use a size GetTreeHead answered", field="tree_size")
        return found

    async def inclusion(self, index: int, size: int) -> tuple[Proven, Head]:
        """Proves one leaf against a signed head."""
        head = await self.head_for(size)
        if not 0 <= index < head.tree_size:
            raise InvalidInput([FieldViolation("leaf_index", f"must be between 0 and {head.tree_size - 1}")])
        found = await self._store.leaf_record(index)
        if found is None:
            raise NotFound(f"leaf {index}'s record is gone from its table", field="leaf_index")
        record, leaf_hash = found
        proof = merkle.inclusion_proof(index, head.tree_size,
                                       await self._store.read_stored(merkle.needed_for_inclusion(index,
                                                                                                 head.tree_size)))
        return Proven(index, record, leaf_hash, tuple(proof)), head

    async def prove_all(self, leaves: Sequence[tuple[int, dict[str, Any]]], head: Head) -> list[Proven]:
        """Inclusion proofs of many leaves against one head, reading the stored hashes once."""
        ranges = [r for index, _ in leaves for r in merkle.needed_for_inclusion(index, head.tree_size)]
        stored = await self._store.read_stored(ranges)
        return [Proven(index, record, merkle.leaf_hash(canonical_bytes(record)),
                       tuple(merkle.inclusion_proof(index, head.tree_size, stored))) for index, record in leaves]

    async def consistency(self, old: int, new: int) -> tuple[list[bytes], bytes, bytes, Head | None]:
        """The proof that the first old leaves are a prefix of the first new (0: the latest head's size)."""
        head = await self.tree_head(fresh=False) if new == 0 else None
        new = head.tree_size if head is not None else new
        v_size = await self._store.current_size()
        if not 1 <= old <= new:
            raise InvalidInput([FieldViolation("old_size", f"must be between 1 and new_size ({new})")])
        if new > v_size:
            raise InvalidInput([FieldViolation("new_size", f"must be at most the log's size ({v_size})")])
        ranges = [*merkle.needed_for_consistency(old, new), *merkle.needed_for_root(old),
                  *merkle.needed_for_root(new)]
        stored = await self._store.read_stored(ranges)
        signed = head or await self._store.head_at(new)
        return (merkle.consistency_proof(old, new, stored), merkle.root_hash(old, stored),
                merkle.root_hash(new, stored), signed)


class ExportStore(EvidenceStore, Protocol):
    """What an export reads besides the tree: which rows a scope holds, their leaves and their records now."""

    async def shipment_rows(self, shipment_ids: Sequence[str]) -> tuple[list[str], list[str]]: ...

    async def audit_rows(self, case_no: str) -> list[str]: ...

    async def leaves_of(self, code: str, keys: Sequence[str]) -> dict[str, int]: ...

    async def records(self, code: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]: ...


@dataclass(frozen=True)
class Export:
    """An evidence bundle and what it left out."""

    bundle: dict[str, Any]
    head: Head
    records: int
    pending: int


async def export(service: EvidenceService, store: ExportStore, *, shipment_ids: Sequence[str], case_no: str,
                 scope: dict[str, Any], include_audit: bool) -> Export:
    """The bundle of a scope: its shipments' events and verifications (and the case's audit records), each rebuilt
    from its row now, with its inclusion proof against a head signed over every leaf appended so far.

    A row changed since it was appended is exported as it is now, so the offline verifier finds that its record
    no longer matches its leaf; records not yet in the log are left out and counted.
    """
    events, verifications = await store.shipment_rows(shipment_ids)
    wanted = [("E", events), ("V", verifications), ("A", await store.audit_rows(case_no) if include_audit else [])]
    head = await service.sign_now()
    leaves: list[tuple[int, dict[str, Any]]] = []
    pending = 0
    for code, keys in wanted:
        if not keys:
            continue
        at = await store.leaves_of(code, keys)
        records = await store.records(code, [k for k in keys if k in at])
        pending += sum(1 for k in keys if k not in at or at[k] >= head.tree_size)
        leaves += [(at[k], records[k]) for k in keys if k in records and at[k] < head.tree_size]
    proven = await service.prove_all(sorted(leaves, key=lambda leaf: leaf[0]), head)
    # Unchecked, so a row changed since it was logged is exported as it is now for the verifier to name.
    bundle = build_bundle([ProvenRecord(p.leaf_index, p.record, p.proof) for p in proven], checkpoint=head.note,
                          verifier_keys=service.verifier_keys, scope=scope, generated_at=service.clock(), check=False)
    return Export(bundle, head, len(proven), pending)

