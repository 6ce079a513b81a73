"""Listed addresses, compared fuzzily but only within the same 6-digit region code.

The region code already says province, city and district, so only the street part needs to agree,
and comparing within one region keeps the candidate set small. House and flat numbers must agree
exactly (a neighbour at No. 86 is not the listed No. 88), which also serves as a blocking key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from gateway.core.screening.model import Entry, Hit, Party, outcome_of
from gateway.core.screening.normalize import normalize_text

_REGION = re.compile(r"\d{6}")
_DIGITS = re.compile(r"\d+")
_NOT_ALNUM = re.compile(r"[\W_]+")
# One side often carries the province/city/district prefix and the other not; comparing the
# shorter text with the same-length tail of the longer catches that, at a small discount.
TAIL_WEIGHT = 0.95
TAIL_MIN_SHARE = 0.6
# 南京东路 and 南京西路, 中山北路 and 中山南路 are different roads one character apart, which a ratio
# rates as a typo; a direction character replaced by another costs this factor instead.
DIRECTIONS = frozenset("东西南北中")
OTHER_DIRECTION_WEIGHT = 0.8


@dataclass(frozen=True, slots=True)
class AddressRecord:
    """A listed address in comparable form."""

    entry: Entry
    text: str
    compact: str


def parse_address_value(value: str) -> tuple[str, str]:
    """Split an ADDRESS entry value "<6-digit region code>|<address text>"."""
    region, sep, text = value.partition("|")
    if not sep or not _REGION.fullmatch(region) or not text.strip():
        raise ValueError(f"address entry value must be '<6-digit region>|<address>', got {value!r}")
    return region, text


def address_key(text: str) -> tuple[str, tuple[str, ...]]:
    """The comparable form of an address (alphanumerics only) and its numbers in order."""
    compact = _NOT_ALNUM.sub("", normalize_text(text))
    return compact, tuple(_DIGITS.findall(compact))


def address_score(query: str, listed: str, floor: float = 0.0) -> float:
    """Similarity of two compact addresses in [0, 1]; below ``floor`` it may be left undiscounted."""
    full = fuzz.ratio(query, listed) / 100
    short, long = sorted((query, listed), key=len)
    if short and len(short) >= TAIL_MIN_SHARE * len(long):
        full = max(full, TAIL_WEIGHT * fuzz.ratio(short, long[-len(short):]) / 100)
    # The direction check aligns the two texts, which only a score that could hit is worth.
    return full * OTHER_DIRECTION_WEIGHT if full >= floor and _other_direction(query, listed) else full


def _other_direction(a: str, b: str) -> bool:
    if not (DIRECTIONS.intersection(a) and DIRECTIONS.intersection(b)):
        return False
    return any(op.tag == "replace" and a[op.src_pos] in DIRECTIONS and b[op.dest_pos] in DIRECTIONS
               for op in Levenshtein.editops(a, b))


class AddressIndex:
    """Listed addresses bucketed by region code and house numbers."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, tuple[str, ...]], list[AddressRecord]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, entry: Entry) -> None:
        """Index an address entry (its value and any aliases, all in the entry's region)."""
        region, text = parse_address_value(entry.value)
        for variant in dict.fromkeys((text, *entry.aliases)):
            compact, numbers = address_key(variant)
            if compact:
                self._buckets.setdefault((region, numbers), []).append(AddressRecord(entry, variant, compact))
        self._count += 1

    def screen_party(self, party: Party, prefix: str, threshold: float) -> Iterator[Hit]:
        """Hits for listed addresses in the party's region that resemble its address."""
        if not _REGION.fullmatch(party.region_code) or not party.address.strip():
            return
        compact, numbers = address_key(party.address)
        best: dict[int, tuple[float, AddressRecord]] = {}
        for record in self._buckets.get((party.region_code, numbers), ()):
            score = address_score(compact, record.compact, threshold)
            known = best.get(record.entry.id)
            if score >= threshold and (known is None or score > known[0]):
                best[record.entry.id] = (score, record)
        for score, record in best.values():
            yield _hit(record, score, threshold, f"{prefix}.address", party.region_code)


def _hit(record: AddressRecord, score: float, threshold: float, field: str, region: str) -> Hit:
    entry = record.entry
    return Hit(
        entry_id=entry.id,
        kind=entry.kind,
        action=outcome_of(entry.action),
        field=field,
        matched=record.text,
        score=score,
        threshold=threshold,
        explanation=(f"{field} resembles listed address {record.text} in region {region} "
                     f"(entry {entry.id}, score {score:.2f} >= {threshold:.2f})"),
    )
