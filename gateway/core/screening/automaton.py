"""Aho-Corasick term search over normalised text, with word-boundary care for Latin terms.

Keyword and brand lists are matched in one pass per field whatever their size. Text is compared
in its compact form (spaces removed) so "Ａ 货" finds "A货", but a term that starts or ends with a
Latin letter or digit must sit on a word boundary there, so "LV" finds "LV bag" and "LV包" but not
"LVMH", and "1:1" does not fire inside "21:10".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

import ahocorasick

from gateway.core.screening.model import Entry
from gateway.core.screening.normalize import compact_with_gaps, is_word_char, normalize_text

T = TypeVar("T")


def entry_terms(entry: Entry) -> list[str]:
    """An entry's value and aliases, without repeats."""
    return list(dict.fromkeys((entry.value, *entry.aliases)))


class TermAutomaton(Generic[T]):
    """Maps normalised terms to values and finds them in text."""

    def __init__(self) -> None:
        self._values: dict[str, list[T]] = {}
        self._automaton: ahocorasick.Automaton | None = None

    def __len__(self) -> int:
        return len(self._values)

    def add(self, term: str, value: T) -> bool:
        """Register ``term`` (normalised) for ``value``; False if it normalises to nothing."""
        key = normalize_text(term)
        if not key:
            return False
        self._values.setdefault(key, []).append(value)
        self._automaton = None
        return True

    def build(self) -> None:
        """Compile the automaton; called once after the last ``add``."""
        automaton = ahocorasick.Automaton()
        for key, values in self._values.items():
            automaton.add_word(key, (key, values))
        if self._values:
            automaton.make_automaton()
            self._automaton = automaton

    def find(self, text: str) -> Iterator[T]:
        """Values of every term found in ``text`` at valid boundaries (repeats included)."""
        if self._automaton is None or not text:
            return
        compact, gaps = compact_with_gaps(text)
        for end, (key, values) in self._automaton.iter(compact):
            if _bounded(compact, gaps, end - len(key) + 1, end):
                yield from values


def _bounded(text: str, gaps: frozenset[int], start: int, end: int) -> bool:
    # Only a Latin/digit edge of the term needs a boundary: Chinese has no spaces between words.
    if is_word_char(text[start]) and start > 0 and start not in gaps:
        if is_word_char(text[start - 1]):
            return False
    after = end + 1
    if is_word_char(text[end]) and after < len(text) and after not in gaps:
        if is_word_char(text[after]):
            return False
    return True


class EntryTermIndex:
    """Entries registered under their value and aliases in one automaton (keywords, brands)."""

    noun = "term"

    def __init__(self) -> None:
        self._terms: TermAutomaton[tuple[Entry, str]] = TermAutomaton()
        self._entries = 0

    def __len__(self) -> int:
        return self._entries

    def add(self, entry: Entry) -> None:
        """Register an entry under its value and aliases."""
        added = [self._terms.add(term, (entry, term)) for term in entry_terms(entry)]
        if not any(added):
            raise ValueError(f"entry {entry.id}: {self.noun} {entry.value!r} is empty once normalised")
        self._entries += 1

    def build(self) -> None:
        """Compile the automaton."""
        self._terms.build()
