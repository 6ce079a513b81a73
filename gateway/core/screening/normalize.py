"""Text normalisation shared by every text matcher.

Senders evade lists with full-width forms, Traditional characters, odd spacing, case, the many
look-alike middle dots used in minority names, punctuation wedged inside a word (高-仿, A_货, L.V),
invisible characters and ratio look-alikes (1∶1, 1比1, 壹比壹), so every listed term and every screened
field goes through the same folding before comparison.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata

import opencc

from gateway.core.screening.ratios import RATIO_COLONS, fold_ratios

# Look-alikes of the middle dot that separates parts of transliterated names (阿沛·阿旺晋美);
# NFKC leaves most of them distinct, so they are listed explicitly.
MIDDLE_DOTS = frozenset("\u00b7\u0387\u2022\u2027\u2219\u22c5\u30fb\uff65\u1427\u2e31\u16eb")

_WHITESPACE = re.compile(r"\s+")
_SEPARATORS = re.compile("[\\s" + "".join(sorted(MIDDLE_DOTS)) + "]+")


def _char_class(categories: str) -> str:
    """A regex class of whitespace and every BMP or emoji-plane character (but ':') of these categories."""
    codes = [cp for cp in (*range(0x10000), *range(0x1F000, 0x1FC00))
             if unicodedata.category(chr(cp))[0] in categories and chr(cp) != ":"]
    ranges, start = [], codes[0]
    for previous, code in zip(codes, codes[1:] + [-1], strict=True):
        if code != previous + 1:
            ranges.append(re.escape(chr(start)) + ("-" + re.escape(chr(previous)) if previous > start else ""))
            start = code
    return "[\\s" + "".join(ranges) + "]"


# Punctuation, symbols and spaces (emoji included) inside a word are how keywords are split (高-仿,
# 高🔥仿, A_货); between two letters, digits or ideographs they become a gap like a space. Elsewhere
# they stay, so a listed "C++" is not reduced to "c". The colon is left to the ratio rules.
_WORD = r"[^\W_]"
_INSIDE_WORD = re.compile(f"(?<={_WORD}){_char_class('PSZ')}+(?={_WORD})")
_PUNCTUATION = re.compile(r"[^\w\s]|_")  # a cheap test that spares most texts the lookarounds
_DECIMAL_MARK = re.compile(r"(?<=\d)[.,](?=\d)")
_LOOSE_COLON = re.compile(r"(?<!\d):|:(?!\d)")
# Invisible characters (soft hyphen, zero-width space and joiners, BOM, variation selectors) go
# entirely; the ratio colons become ':'.
_TRANSLATE = {ord(ch): ":" for ch in RATIO_COLONS} | {
    cp: None for cp in (0x00AD, 0x034F, 0x061C, 0x180E, *range(0x200B, 0x2010), *range(0x202A, 0x202F),
                        *range(0x2060, 0x2070), 0xFEFF, *range(0xFE00, 0xFE10))}
# str.translate with a dict costs a look-up per character; finding whether there is anything to
# translate at all is a tenth of that.
_TRANSLATED = re.compile("[" + re.escape("".join(map(chr, _TRANSLATE))) + "]")


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
    compact, gaps = _compact(s)
    # Removing a space can bring a combining mark next to a letter ("A´" is "a", space, U+0301
    # after NFKC), and the composed letter may then glue to punctuation; folding the composed text
    # again until nothing changes keeps the result a fixed point. Gaps are then those of the last
    # pass, which only makes Latin word boundaries stricter.
    for _ in range(3):
        if compact.isascii():
            break
        composed = unicodedata.normalize("NFKC", compact)
        if composed == compact:
            break
        compact, gaps = _compact(composed)
    return compact, gaps


def _compact(s: str) -> tuple[str, frozenset[int]]:
    parts = _SEPARATORS.split(_unglue(fold(s)))
    return "".join(parts), frozenset(itertools.accumulate(len(p) for p in parts[:-1]))


def _unglue(s: str) -> str:
    if not s.isascii() and _TRANSLATED.search(s):
        s = s.translate(_TRANSLATE)
    s = fold_ratios(s)
    if "." in s or "," in s:
        # 1:1.5 is a mixing ratio and 10,000 one number: the mark joins digits rather than parting them.
        s = _DECIMAL_MARK.sub("", s)
    if ":" in s:
        s = _LOOSE_COLON.sub(" ", s)  # a colon that is not inside a ratio is punctuation like any other
    return _INSIDE_WORD.sub(" ", s) if _PUNCTUATION.search(s) else s


def strip_accents(s: str) -> str:
    """Remove combining marks so "José" and "Jose" compare equal (Latin script only)."""
    if s.isascii():  # nothing to decompose
        return s
    decomposed = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# The ranges of is_han, for a one-call test of a whole text.
_HAN = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002fa1f]")


def has_han(text: str) -> bool:
    """True when ``text`` holds a CJK unified ideograph (``is_han`` of any character, in one C-level pass)."""
    return _HAN.search(text) is not None


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
