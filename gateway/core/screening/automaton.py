"""Aho-Corasick term search over normalised text, with word-boundary care for Latin terms.

Keyword and brand lists are matched in one pass per field whatever their size. Text is compared
in its compact form (spaces removed) so "Ａ 货" finds "A货", but a term that starts or ends with a
Latin letter or digit must sit on a word boundary there, so "LV" finds "LV bag" and "LV包" but not
"LVMH", and "1:1" does not fire inside "21:10". A change between letters and digits is a boundary
too, so "GUCCI1:1" still names 1:1.

A term may carry exclusion contexts: longer terms that contain it in an innocent sense (原单号 for
原单). An occurrence that lies inside one of them in the text is dropped; every other occurrence in
the same text is still a hit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

import ahocorasick

from gateway.core.screening.model import Entry
from gateway.core.screening.normalize import compact_with_gaps, is_word_char, normalize_text

T = TypeVar("T")
# How many texts' findings a TermAutomaton keeps.
FOUND_CACHE = 1 << 12
# (normalised context, offset of the term inside it): the term at text[i] is excluded when the
# context starts at text[i - offset].
Context = tuple[str, int]


def entry_terms(entry: Entry) -> list[str]:
    """An entry's value and aliases, without repeats."""
    return list(dict.fromkeys((entry.value, *entry.aliases)))


class TermAutomaton(Generic[T]):
    """Maps normalised terms to values and finds them in text."""

    def __init__(self) -> None:
        self._values: dict[str, list[tuple[T, tuple[Context, ...]]]] = {}
        self._automaton: ahocorasick.Automaton | None = None
        # What recent texts found (item descriptions, brands and categories recur across parcels); an
        # automaton is never changed once built, and ``build`` starts the cache afresh.
        self._found: dict[str, tuple[T, ...]] = {}

    def __len__(self) -> int:
        return len(self._values)

    def add(self, term: str, value: T, exclusions: Iterable[str] = ()) -> bool:
        """Register ``term`` for ``value``; False if it normalises to nothing.

        ``exclusions`` are normalised contexts; those that do not contain the term are ignored.
        """
        key = normalize_text(term)
        if not key:
            return False
        self._values.setdefault(key, []).append((value, contexts_of(key, exclusions)))
        self._automaton = None
        self._found = {}
        return True

    def build(self) -> None:
        """Compile the automaton; called once after the last ``add``."""
        self._found = {}
        automaton = ahocorasick.Automaton()
        for key, values in self._values.items():
            automaton.add_word(key, (key, values))
        if self._values:
            automaton.make_automaton()
            self._automaton = automaton

    def find(self, text: str) -> Iterator[T]:
        """Values of every term found in ``text`` at valid boundaries and outside its exclusions."""
        if self._automaton is None or not text:
            return iter(())
        found = self._found.get(text)
        if found is None:
            found = tuple(self._search(self._automaton, text))
            if len(self._found) >= FOUND_CACHE:
                self._found = {}  # start afresh (one statement: safe beside another thread's look-up)
            self._found[text] = found
        return iter(found)

    def _search(self, automaton: ahocorasick.Automaton, text: str) -> Iterator[T]:
        compact, gaps = compact_with_gaps(text)
        for end, (key, values) in automaton.iter(compact):
            start = end - len(key) + 1
            if _bounded(compact, gaps, start, end):
                for value, contexts in values:
                    if not contexts or not _excluded(compact, start, contexts):
                        yield value


def contexts_of(key: str, exclusions: Iterable[str]) -> tuple[Context, ...]:
    """Every place where ``key`` occurs inside one of the (normalised) ``exclusions``."""
    found: list[Context] = []
    for context in exclusions:
        if len(context) <= len(key):
            continue  # a context must be longer than the term, or it would cancel every occurrence
        offset = context.find(key)
        while offset >= 0:
            found.append((context, offset))
            offset = context.find(key, offset + 1)
    return tuple(dict.fromkeys(found))


def _excluded(text: str, start: int, contexts: tuple[Context, ...]) -> bool:
    return any(start >= offset and text.startswith(context, start - offset) for context, offset in contexts)


def _bounded(text: str, gaps: frozenset[int], start: int, end: int) -> bool:
    # Only a Latin/digit edge of the term needs a boundary: Chinese has no spaces between words.
    if start > 0 and start not in gaps and _joined(text[start - 1], text[start]):
        return False
    after = end + 1
    return not (after < len(text) and after not in gaps and _joined(text[end], text[after]))


def _joined(a: str, b: str) -> bool:
    # Two letters or two digits continue one word or number; a letter next to a digit does not, as
    # in a brand and a slang ratio run together ("gucci1:1") or a model number ("lv2024").
    return is_word_char(a) and is_word_char(b) and a.isdigit() == b.isdigit()


class EntryTermIndex:
    """Entries registered under their value and aliases in one automaton (keywords, brands)."""

    noun = "term"
    # Exclusion contexts that apply to every entry of the index whose term they contain.
    default_exclusions: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._terms: TermAutomaton[tuple[Entry, str]] = TermAutomaton()
        self._entries = 0
        self._defaults = list(dict.fromkeys(key for key in map(normalize_text, self.default_exclusions) if key))

    def __len__(self) -> int:
        return self._entries

    def add(self, entry: Entry) -> None:
        """Register an entry under its value and aliases, with its exclusion contexts."""
        exclusions = self.exclusions(entry)
        added = [self._terms.add(term, (entry, term), exclusions) for term in entry_terms(entry)]
        if not any(added):
            raise ValueError(f"entry {entry.id}: {self.noun} {entry.value!r} is empty once normalised")
        self._entries += 1

    def exclusions(self, entry: Entry) -> list[str]:
        """The normalised exclusion contexts for an entry: the defaults and its own (each term keeps only
        those that contain it)."""
        return self._defaults + [key for key in map(normalize_text, entry.exclusions) if key]

    def build(self) -> None:
        """Compile the automaton."""
        self._terms.build()
