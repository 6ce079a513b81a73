"""Counterfeit screening core: pure Python, no I/O; entries and consignments arrive as dataclasses."""

from gateway.core.screening.images import hamming, perceptual_hash
from gateway.core.screening.index import BlocklistIndex
from gateway.core.screening.model import (
    Action,
    Consignment,
    Entry,
    EntryKind,
    Hit,
    Item,
    Outcome,
    Party,
    ScreeningPolicy,
    ScreeningResult,
)
from gateway.core.screening.normalize import normalize_text

__all__ = [
    "Action",
    "BlocklistIndex",
    "Consignment",
    "Entry",
    "EntryKind",
    "Hit",
    "Item",
    "Outcome",
    "Party",
    "ScreeningPolicy",
    "ScreeningResult",
    "hamming",
    "normalize_text",
    "perceptual_hash",
]
