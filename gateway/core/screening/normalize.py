"""Text normalisation shared by every text matcher.

Senders evade lists with full-width forms, Traditional characters, odd spacing, case and the many
look-alike middle dots used in minority names, so every listed term and every screened field goes
through the same folding before comparison.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata

import opencc

# Look-alikes of the middle dot that separates parts of transliterated names (阿沛·阿旺晋美);
# NFKC leaves most of them distinct, so they are listed explicitly.
MIDDLE_DOTS = frozenset("\u00b7\u0387\u2022\u2027\u2219\u22c5\u30fb\uff65\u1427\u2e31\u16eb")

_WHITESPACE = re.compile(r"\s+")
_SEPARATORS = re.compile("[\\s" + "".join(sorted(MIDDLE_DOTS)) + "]+")


@functools.cache
def _t2s() -> opencc.OpenCC:
    # Loading the conversion tables costs milliseconds, so one converter serves the process.
    return opencc.OpenCC("t2s")


def fold(s: str) -> str:
    """NFKC, Traditional->Simplified and lower case, keeping spacing and punctuation."""
    if s.isascii():
        # Most Latin-only fields skip the costlier Unicode and OpenCC passes.
        return s.lower()
    converted: str = _t2s().convert(unicodedata.normalize("NFKC", s))
    return converted.lower()


def normalize_text(s: str) -> str:
    """NFKC, full-width folded, Traditional->Simplified, lower case, whitespace and middle dots removed."""
    return compact_with_gaps(s)[0]


# Descriptions recur across parcels and the keyword and brand matchers read the same fields, so
# recent results are kept.
@functools.lru_cache(maxsize=1 << 12)
def compact_with_gaps(s: str) -> tuple[str, frozenset[int]]:
    """Normalise like ``normalize_text`` and also return where removed separators stood.

    A gap position ``i`` means a space or middle dot stood just before character ``i`` of the
    compact string; matchers use it to tell "lv bag" (word boundary) from "lvmh" (none).
    """
    parts = _SEPARATORS.split(fold(s))
    compact = "".join(parts)
    gaps = frozenset(itertools.accumulate(len(p) for p in parts[:-1]))
    if compact.isascii():
        return compact, gaps
    # Removing a space can bring a combining mark next to a letter ("A´" is "a", space, U+0301
    # after NFKC); composing again keeps the result a fixed point. Should that shift positions,
    # the gaps are dropped, which only makes Latin word boundaries stricter.
    composed = unicodedata.normalize("NFKC", compact)
    return (composed, gaps) if len(composed) == len(compact) else (composed, frozenset())


def strip_accents(s: str) -> str:
    """Remove combining marks so "José" and "Jose" compare equal (Latin script only)."""
    decomposed = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def is_han(ch: str) -> bool:
    """True for a CJK unified ideograph (the characters pypinyin can read)."""
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2FA1F


def is_word_char(ch: str) -> bool:
    """True for ASCII letters and digits, the characters that form Latin words and numbers."""
    return ch.isascii() and ch.isalnum()


def collapse_spaces(s: str) -> str:
    """Collapse runs of whitespace to one space and trim."""
    return _WHITESPACE.sub(" ", s).strip()
