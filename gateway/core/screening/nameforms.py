"""Names in comparable form: tokenising, pinyin, blocking keys and the similarity score.

A Chinese name is compared by its characters (after Traditional->Simplified) and by its tone-free
pinyin, so homophones such as 张伟 / 章伟 match; a Latin name is compared by its sorted tokens, so
"Smith, John" matches "John Smith", and by its concatenated tokens, so "Zhang Wei" can match 张伟.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from gateway.core.screening.normalize import MIDDLE_DOTS, fold, is_han, strip_accents
from gateway.core.screening.phonetic import blocking_fold, default_syllables, sound_variants, units

# A homophone (张伟 / 章伟) is strong evidence but weaker than the same characters, so pinyin
# similarity is scaled down; an exact homophone then scores 0.95 rather than 1.
HOMOPHONE_WEIGHT = 0.95
# Deleting one syllable lets a long name with one differing syllable still share a key; in names
# of two or three syllables one differing syllable already falls below any sane threshold.
DELETION_MIN_UNITS, DELETION_MAX_UNITS = 4, 10
# Latin names tolerate one edit per this many characters (at least one) before each further edit
# costs a factor EXTRA_EDIT_DISCOUNT: transliterations of long names (Muhammad/Mohammed) drift
# more than short given names may.
LATIN_CHARS_PER_EDIT = 8
EXTRA_EDIT_DISCOUNT = 0.9

_SEPARATORS = re.compile(r"[\W_]+")
_LEGAL_SUFFIXES_HAN = ("股份有限公司", "有限责任公司", "有限公司", "公司")
_LEGAL_SUFFIXES_LATIN = frozenset({"co", "company", "corp", "corporation", "gmbh", "inc", "limited",
                                   "llc", "ltd", "plc"})


@dataclass(frozen=True, slots=True)
class NameForm:
    """A name prepared for comparison; names with equal forms are indistinguishable to matching."""

    # Han: the characters. Latin: the sorted tokens concatenated.
    compact: str
    han: bool
    # Han: tone-free pinyin variants, default first. Latin: the sorted tokens joined by a space,
    # then (for 2-3 alphabetic tokens) the tokens concatenated in each order, for pinyin spellings.
    sounds: tuple[str, ...]


def tokens_of(text: str, organisation: bool) -> list[str]:
    """Fold a name and split it into tokens at spaces, middle dots and punctuation."""
    folded = "".join(" " if ch in MIDDLE_DOTS else ch for ch in fold(text))
    tokens = [strip_accents(t) if _is_latin(t) else t for t in _SEPARATORS.split(folded) if t]
    return _strip_legal_suffix(tokens) if organisation else tokens


def _is_latin(text: str) -> bool:
    # Accents are stripped only from Latin script: NFKD would also split kana and Hangul.
    return not text or max(text) < "\u0250"  # one C-level pass; the generator was 11% of a 1M-entry build


def _has_han(text: str) -> bool:
    return any(is_han(ch) for ch in text)


def _strip_legal_suffix(tokens: list[str]) -> list[str]:
    # "Acme Trading Co., Ltd." and "Acme Trading Limited" are the same listed company, and so
    # are "华强贸易有限公司" and "华强贸易公司".
    while len(tokens) > 1 and (tokens[-1] in _LEGAL_SUFFIXES_LATIN or tokens[-1] in _LEGAL_SUFFIXES_HAN):
        tokens = tokens[:-1]
    last = tokens[-1] if tokens else ""
    for suffix in _LEGAL_SUFFIXES_HAN:
        if last.endswith(suffix) and len(last) > len(suffix):
            return [*tokens[:-1], last[: -len(suffix)]]
    return tokens


# Senders and recipients recur (a shop ships daily), so recent query forms are kept; listed
# names go through ``parse_name`` directly so building an index does not churn this cache.
@functools.lru_cache(maxsize=1 << 14)
def parse_query(text: str, organisation: bool = False) -> NameForm | None:
    """``parse_name`` for queries, cached."""
    return parse_name(text, organisation)


def parse_name(text: str, organisation: bool = False) -> NameForm | None:
    """The comparable form of a name; None when nothing comparable is left."""
    tokens = tokens_of(text, organisation)
    if not tokens:
        return None
    compact = "".join(tokens)
    if _has_han(compact):
        return NameForm(compact, True, sound_variants(units(compact)))
    ordered = sorted(tokens)
    concatenations: list[str] = []
    if 2 <= len(tokens) <= 3 and all(t.isalpha() for t in tokens):
        concatenations = sorted({"".join(tokens), "".join(reversed(tokens))})
    return NameForm("".join(ordered), False, (" ".join(ordered), *concatenations))


def listed_keys(form: NameForm) -> list[str]:
    """Blocking keys under which a listed name is filed."""
    if not form.han:
        return _latin_keys(form)
    keys = ["P" + blocking_fold(s) for s in form.sounds]
    syllables = default_syllables(units(form.compact))
    if DELETION_MIN_UNITS <= len(syllables) <= DELETION_MAX_UNITS:
        keys += ["D" + blocking_fold(s) for s in _deletions(syllables)]
    return list(dict.fromkeys(keys))


def query_keys(form: NameForm) -> list[str]:
    """Blocking keys a query looks up, most specific first."""
    if not form.han:
        return _latin_keys(form)
    keys = ["P" + blocking_fold(s) for s in form.sounds]
    # The query may lack a syllable (look in D), have an extra one (its deletions in P) or differ
    # in one (its deletions in D).
    syllables = default_syllables(units(form.compact))
    n = len(syllables)
    if DELETION_MIN_UNITS - 1 <= n < DELETION_MAX_UNITS:
        keys.append("D" + blocking_fold("".join(syllables)))
    if DELETION_MIN_UNITS <= n <= DELETION_MAX_UNITS + 1:
        deletions = [blocking_fold(s) for s in _deletions(syllables)]
        keys += ["P" + d for d in deletions]
        keys += ["D" + d for d in deletions] if n <= DELETION_MAX_UNITS else []
    return list(dict.fromkeys(keys))


def _deletions(syllables: list[str]) -> Iterator[str]:
    for i in range(len(syllables)):
        yield "".join(syllables[:i] + syllables[i + 1:])


def _latin_keys(form: NameForm) -> list[str]:
    tokens = form.sounds[0].split(" ")
    keys = ["L" + form.sounds[0], *("P" + blocking_fold(c) for c in form.sounds[1:])]
    # One intact token plus the initials of the others survives a typo in any other token
    # ("Jon Smith" / "John Smith" share "smith|j").
    if len(tokens) >= 2:
        for i, token in enumerate(tokens):
            keys.append(f"B{token}|" + "".join(t[0] for j, t in enumerate(tokens) if j != i))
    return list(dict.fromkeys(keys))


def name_score(query: NameForm, listed: NameForm) -> float:
    """Similarity of two prepared names in [0, 1]."""
    if query.han and listed.han:
        chars = fuzz.ratio(query.compact, listed.compact) / 100
        if query.sounds[0] in listed.sounds or listed.sounds[0] in query.sounds:
            return max(chars, HOMOPHONE_WEIGHT)  # the common case among candidates
        return max(chars, HOMOPHONE_WEIGHT * _best(query.sounds, listed.sounds))
    if not query.han and not listed.han:
        tokens = latin_similarity(query.sounds[0], listed.sounds[0])
        pairs = (latin_similarity(a, b) for a in query.sounds[1:] for b in listed.sounds[1:])
        return max(tokens, max(pairs, default=0.0))
    query_sounds = query.sounds if query.han else query.sounds[1:]
    listed_sounds = listed.sounds if listed.han else listed.sounds[1:]
    return HOMOPHONE_WEIGHT * _best(query_sounds, listed_sounds)


def latin_similarity(a: str, b: str) -> float:
    """Ratio of two Latin name strings, discounted for each edit beyond a typo's worth.

    A long name spelt with one slip is the same name, but Mary/Maria or Jose/Joseph (two edits in
    a short name) are different given names that a plain ratio would still rate around 0.9.
    """
    allowed = max(1, max(len(a), len(b)) // LATIN_CHARS_PER_EDIT)
    excess = Levenshtein.distance(a, b, score_cutoff=allowed + 4) - allowed
    return fuzz.ratio(a, b) / 100 * EXTRA_EDIT_DISCOUNT ** max(excess, 0)


def _best(left: tuple[str, ...], right: tuple[str, ...]) -> float:
    return max((fuzz.ratio(a, b) for a in left for b in right), default=0.0) / 100
