"""Person and organisation name index: blocking keys find candidates, rapidfuzz scores them.

With ~500,000 listed names a query cannot be scored against all of them, so every listed name is
filed under a few blocking keys (see nameforms.py) and a query scores only what its own keys find.
Listed names with the same comparable form (the same name listed for several entries, or 陳偉明
and 陈伟明) share one form, so a common name is scored once however often it is listed.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.core.screening.model import Action, Entry
from gateway.core.screening.nameforms import (
    NameForm,
    cached_query_keys,
    listed_keys,
    name_score,
    parse_name,
    query_forms,
)

# Bounds the work for pathological buckets (thousands of distinct forms under one key).
MAX_CANDIDATES = 1000
# A common name can be listed for dozens of entries; a reviewer learns nothing from the 30th
# identical hit and every hit costs time, so a query reports at most this many entries.
MAX_MATCHES = 10


class NameMatch(NamedTuple):
    """A listed name that a query matched, with its score."""

    entry: Entry
    text: str
    score: float


class NameIndex:
    """Blocking-key index over listed names of one kind (persons or organisations)."""

    def __init__(self, organisation: bool = False) -> None:
        self._organisation = organisation
        self._forms: list[NameForm] = []
        self._members: list[list[tuple[Entry, str]]] = []
        self._numbers: dict[NameForm, int] = {}
        # A bucket holds one form number or a list of them: most keys have a single form and an
        # int costs far less than a one-element list at this scale.
        self._buckets: dict[str, int | list[int]] = {}
        self._entries = 0

    def __len__(self) -> int:
        return self._entries

    def add(self, entry: Entry) -> None:
        """Index an entry's value and aliases."""
        for text in dict.fromkeys((entry.value, *entry.aliases)):
            form = parse_name(text, self._organisation)
            if form is not None:
                self._members[self._number(form)].append((entry, text))
        self._entries += 1

    def _number(self, form: NameForm) -> int:
        number = self._numbers.get(form)
        if number is None:
            number = self._numbers[form] = len(self._forms)
            self._forms.append(form)
            self._members.append([])
            for key in listed_keys(form):
                self._file(key, number)
        return number

    def _file(self, key: str, number: int) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = number
        elif isinstance(bucket, int):
            self._buckets[key] = [bucket, number]
        else:
            bucket.append(number)

    def build(self) -> None:
        """Order each form's members strongest first; called once after the last ``add``."""
        for members in self._members:
            members.sort(key=_strongest_member)

    def search(self, text: str, threshold: float, limit: int = MAX_MATCHES) -> list[NameMatch]:
        """Up to ``limit`` entries whose names score at least ``threshold`` against ``text``.

        REFUSE entries come first, then by score, so a corroborated refusal is never cut off.
        """
        queries = query_forms(text, self._organisation) if self._forms else ()
        # Members are sorted strongest first, so a form never contributes more than ``limit``.
        matches = [NameMatch(entry, listed, score)
                   for query in queries
                   for number, score in self._scored(query, threshold)
                   for entry, listed in self._members[number][:limit]]
        matches.sort(key=_strongest_first)
        return _first_per_entry(matches, limit)

    def _scored(self, query: NameForm, threshold: float) -> list[tuple[int, float]]:
        scores = ((number, name_score(query, self._forms[number], threshold)) for number in self._candidates(query))
        return [(number, score) for number, score in scores if score >= threshold]

    def _candidates(self, query: NameForm) -> list[int]:
        found: dict[int, None] = {}
        buckets = self._buckets
        for key in cached_query_keys(query):
            bucket = buckets.get(key)
            if bucket is None:
                continue
            if isinstance(bucket, int):
                found[bucket] = None
            else:
                found.update(dict.fromkeys(bucket))
                if len(found) >= MAX_CANDIDATES:
                    break
        return list(found)[:MAX_CANDIDATES]


def _strongest_first(match: NameMatch) -> tuple[bool, float, int]:
    return (match.entry.action is not Action.REFUSE, -match.score, match.entry.id)


def _first_per_entry(matches: list[NameMatch], limit: int) -> list[NameMatch]:
    # An entry whose value and alias both match is reported once, with its best name.
    kept: dict[int, NameMatch] = {}
    for match in matches:
        kept.setdefault(match.entry.id, match)
        if len(kept) == limit:
            break
    return list(kept.values())


def _strongest_member(member: tuple[Entry, str]) -> tuple[bool, int]:
    return (member[0].action is not Action.REFUSE, member[0].id)
