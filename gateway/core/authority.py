"""Port to the national identity authority (人证核验).

The gateway asks one question of the authority: is the person with this name
(and, optionally, this face) the holder of this document number?  This module
holds only the vocabulary of that question and its answer, so the core stays
free of any transport: adapters implement ``IdentityAuthority``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class AuthorityResult(enum.Enum):
    """The authority's verdict on one identity check."""

    MATCH = "MATCH"  # number exists, name matches, photo (if given) matches
    MISMATCH = "MISMATCH"  # number exists, the name does not match
    NOT_FOUND = "NOT_FOUND"  # no such document number on record
    PHOTO_MISMATCH = "PHOTO_MISMATCH"  # name matches, the face photo does not
    REVOKED = "REVOKED"  # document reported lost/stolen/cancelled
    UNAVAILABLE = "UNAVAILABLE"  # the authority could not be reached or answered with an error

    @property
    def is_definitive(self) -> bool:
        """True when the authority actually ruled; UNAVAILABLE means nobody did."""
        return self is not AuthorityResult.UNAVAILABLE


@dataclass(frozen=True)
class AuthorityAnswer:
    """One answer from the authority, safe to keep in the audit trail."""

    result: AuthorityResult
    reference: str = ""  # the authority's transaction id, kept for the audit trail
    similarity: float | None = None  # face similarity 0..1 where a photo was checked
    detail: str = ""  # a short human sentence (never contains the document number)

    def __post_init__(self) -> None:
        # An out-of-range similarity would silently skew any threshold the gateway applies.
        if self.similarity is not None and not (
            math.isfinite(self.similarity) and 0.0 <= self.similarity <= 1.0
        ):
            raise ValueError(f"similarity must be within 0..1, got {self.similarity!r}")

    @classmethod
    def unavailable(cls, detail: str, reference: str = "") -> AuthorityAnswer:
        """An answer saying the authority could not rule, with the reason why."""
        return cls(AuthorityResult.UNAVAILABLE, reference=reference, detail=detail)


@runtime_checkable
class IdentityAuthority(Protocol):
    """Anything that can ask the identity authority about one person."""

    async def check(
        self, document_type: str, number: str, name: str, photo: bytes | None = None
    ) -> AuthorityAnswer:
        """Ask whether ``name`` (and ``photo``) belong to the holder of ``number``; never raises."""
        ...

    async def aclose(self) -> None:
        """Release connections held to the authority."""
        ...
