"""Names in comparable form: tokenising, pinyin, blocking keys and the similarity score.

A Chinese name is compared by its characters (after Traditional->Simplified) and by its tone-free
pinyin under every reading of its characters, so homophones such as 张伟 / 章伟 and 李晟 / 李胜 match,
while a different surname (陆强 / 刘强) costs more than a different given name; a Latin name is
compared by its sorted tokens, so "Smith, John" matches "John Smith", and by its concatenated tokens
(or its syllables, when run together), so "Zhang Wei" and "zhangwei" can match 张伟.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from gateway.core.screening.honorifics import strip_courtesy
from gateway.core.screening.normalize import MIDDLE_DOTS, fold, has_han, strip_accents
from gateway.core.screening.phonetic import (
    blocking_fold,
    default_syllables,
    is_plain_name,
    name_units,
    sound_variants,
    surname_of,
)
from gateway.core.screening.places import strip_places
from gateway.core.screening.syllables import name_orders

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
# Two plain Chinese names whose surnames share no reading are different families however alike the
# rest sounds: 陆强 / 刘强 (lu / liu) would score 0.89 on pinyin alone and fall to 0.80 with this.
SURNAME_MISMATCH_WEIGHT = 0.9
# A name token that differs only in a gendered ending (Petrov / Petrova, Mario / Maria, Kowalski /
# Kowalska) names another person of the same family or another given name, not a spelling slip.
GENDERED_ENDING_WEIGHT = 0.9
_VOWELS = frozenset("aeiouy")
_VOWEL_FOLD = str.maketrans(dict.fromkeys("eiou", "a"))  # y too would make Mary and Maria one name

_SEPARATORS = re.compile(r"[\W_]+")
_DOTS_TO_SPACES = {ord(ch): " " for ch in MIDDLE_DOTS}
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
    folded = fold(text)
    if not folded.isascii():  # every middle dot is outside ASCII
        folded = folded.translate(_DOTS_TO_SPACES)
    tokens = [strip_accents(t) if _is_latin(t) else t for t in _SEPARATORS.split(folded) if t]
    return organisation_tokens(tokens) if organisation else tokens


def organisation_tokens(tokens: list[str]) -> list[str]:
    """An organisation's tokens without its legal form and, for a Chinese name, the place at its head."""
    tokens = _strip_legal_suffix(tokens)
    if tokens and has_han(tokens[0]):
        # Chinese names are compared as one string anyway (NameForm.compact), so the place may span
        # tokens: 深圳市 华强电子.
        return [strip_places("".join(tokens))]
    return tokens


def _is_latin(text: str) -> bool:
    # Accents are stripped only from Latin script: NFKD would also split kana and Hangul.
    return not text or max(text) < "\u0250"  # one C-level pass; the generator was 11% of a 1M-entry build


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


@functools.lru_cache(maxsize=1 << 14)
def query_forms(text: str, organisation: bool = False) -> tuple[NameForm, ...]:
    """The forms a query is searched under: as written and, for a person, without courtesy words."""
    tokens = list(_query_tokens(text))
    if organisation:
        # Every party name is searched as a person and as an organisation; most carry no legal form,
        # and then the organisation's form is the person's, already made.
        bare = organisation_tokens(tokens)
        if bare == tokens:
            return query_forms(text, False)[:1]
        return (form,) if (form := _form(bare)) is not None else ()
    stripped = strip_courtesy(tokens)
    forms = (_form(tokens), _form(stripped) if stripped else None)
    return tuple(dict.fromkeys(form for form in forms if form is not None))


@functools.lru_cache(maxsize=1 << 12)
def _query_tokens(text: str) -> tuple[str, ...]:
    return tuple(tokens_of(text, False))


def parse_name(text: str, organisation: bool = False) -> NameForm | None:
    """The comparable form of a name; None when nothing comparable is left."""
    return _form(tokens_of(text, organisation))


def _form(tokens: list[str]) -> NameForm | None:
    if not tokens:
        return None
    compact = "".join(tokens)
    if has_han(compact):
        return NameForm(compact, True, sound_variants(name_units(compact), is_plain_name(compact)))
    ordered = sorted(tokens)
    concatenations: list[str] = []
    if 2 <= len(tokens) <= 3 and all(t.isalpha() for t in tokens):
        concatenations = sorted({"".join(tokens), "".join(reversed(tokens))})
    elif len(tokens) == 1 and tokens[0].isalpha():
        concatenations = sorted(name_orders(tokens[0]))  # "zhangliang", "liangzhang"
    return NameForm("".join(ordered), False, (" ".join(ordered), *concatenations))


def listed_keys(form: NameForm) -> list[str]:
    """Blocking keys under which a listed name is filed."""
    if not form.han:
        return _latin_keys(form)
    keys = ["P" + blocking_fold(s) for s in form.sounds]
    if len(form.compact) < DELETION_MIN_UNITS:  # a name has at most one syllable per character
        return list(dict.fromkeys(keys))
    syllables = default_syllables(name_units(form.compact))
    if DELETION_MIN_UNITS <= len(syllables) <= DELETION_MAX_UNITS:
        keys += ["D" + blocking_fold(s) for s in _deletions(syllables)]
    return list(dict.fromkeys(keys))


# Every party name is searched in the person and the organisation index, mostly under one form.
@functools.lru_cache(maxsize=1 << 12)
def cached_query_keys(form: NameForm) -> tuple[str, ...]:
    """``query_keys``, cached for recent query forms."""
    return tuple(query_keys(form))


def query_keys(form: NameForm) -> list[str]:
    """Blocking keys a query looks up, most specific first."""
    if not form.han:
        return _latin_keys(form)
    keys = ["P" + blocking_fold(s) for s in form.sounds]
    if len(form.compact) < DELETION_MIN_UNITS - 1:
        return list(dict.fromkeys(keys))
    # The query may lack a syllable (look in D), have an extra one (its deletions in P) or differ
    # in one (its deletions in D).
    syllables = default_syllables(name_units(form.compact))
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


def name_score(query: NameForm, listed: NameForm, floor: float = 0.0) -> float:
    """Similarity of two prepared names in [0, 1].

    A score below ``floor`` may come back as any value below it: the ratios are then computed with
    rapidfuzz's cut-off, which gives up on a pair as soon as it cannot reach it (most candidates a
    blocking key finds), and the weights that only lower a score are not looked at.
    """
    cutoff, sound_cutoff = _cutoffs(floor)
    if query.han and listed.han:
        if query.sounds[0] in listed.sounds or listed.sounds[0] in query.sounds:
            # The common case among candidates; the characters only count when they beat the homophone.
            score = max(fuzz.ratio(query.compact, listed.compact, score_cutoff=HOMOPHONE_CUTOFF) / 100,
                        HOMOPHONE_WEIGHT)
        else:
            chars = fuzz.ratio(query.compact, listed.compact, score_cutoff=cutoff) / 100
            score = max(chars, HOMOPHONE_WEIGHT * _best_default(query, listed, sound_cutoff))
        if score < floor:
            return score
        return score * SURNAME_MISMATCH_WEIGHT if _other_surname(query.compact, listed.compact) else score
    if not query.han and not listed.han:
        score = latin_similarity(query.sounds[0], listed.sounds[0], floor)
        for a in query.sounds[1:]:
            for b in listed.sounds[1:]:
                score = max(score, latin_similarity(a, b, floor))
        if score < floor:
            return score
        return score * GENDERED_ENDING_WEIGHT if _gendered_pair(query.sounds[0], listed.sounds[0]) else score
    query_sounds = query.sounds if query.han else query.sounds[1:]
    listed_sounds = listed.sounds if listed.han else listed.sounds[1:]
    return HOMOPHONE_WEIGHT * _best(query_sounds, listed_sounds, sound_cutoff)


# fuzz.ratio's score_cutoff is on its 0-100 scale; a hair below the floor, so that float rounding
# (0.88 * 100 is 88.00000000000001) never cuts off a ratio the floor itself admits.
_CUTOFF_MARGIN = 1e-6
HOMOPHONE_CUTOFF = HOMOPHONE_WEIGHT * 100 - _CUTOFF_MARGIN


def _cutoff(floor: float) -> float:
    return max(0.0, floor * 100 - _CUTOFF_MARGIN)


@functools.lru_cache(maxsize=64)
def _cutoffs(floor: float) -> tuple[float, float]:
    """The cut-offs for a floor: of a plain ratio, and of a pinyin ratio (weighted by HOMOPHONE_WEIGHT)."""
    return _cutoff(floor), _cutoff(floor / HOMOPHONE_WEIGHT)


def _other_surname(a: str, b: str) -> bool:
    # Only plain names have a surname where it can be told apart; 张 / 章 share "zhang".
    if a[0] == b[0] or not (is_plain_name(a) and is_plain_name(b)):
        return False
    return not set(surname_of(a)) & set(surname_of(b))


def _gendered_pair(a: str, b: str) -> bool:
    left, right = a.split(" "), b.split(" ")
    only_left = [t for t in left if t not in right]
    only_right = [t for t in right if t not in left]
    if len(only_left) != 1 or len(only_right) != 1:
        return False
    short, long = sorted((only_left[0], only_right[0]), key=len)
    if long == short + "a":
        return len(short) >= 3
    return (len(short) == len(long) >= 3 and short[:-1] == long[:-1]
            and short[-1] in _VOWELS and long[-1] in _VOWELS)


def latin_similarity(a: str, b: str, floor: float = 0.0) -> float:
    """Ratio of two Latin name strings, discounted for each edit beyond a typo's worth.

    A long name spelt with one slip is the same name, but Mary/Maria or Jose/Joseph (two edits in
    a short name) are different given names that a plain ratio would still rate around 0.9. The
    budget counts letters, not spaces, and edits among vowels are free of it: transliterations drift
    in their vowels (Muhammad / Mohammed) while Jose / Joseph differ in consonants, which a long
    surname (Rodriguez) must not pay for. Below ``floor`` the result may be any value below it (the
    edit budget only lowers a ratio, so a ratio under the floor is returned as 0 without it).
    """
    ratio = fuzz.ratio(a, b, score_cutoff=_cutoffs(floor)[0]) / 100
    if ratio == 0.0:
        return 0.0
    allowed = max(1, max(len(a) - a.count(" "), len(b) - b.count(" ")) // LATIN_CHARS_PER_EDIT)
    folded_a, folded_b = a.translate(_VOWEL_FOLD), b.translate(_VOWEL_FOLD)
    excess = Levenshtein.distance(folded_a, folded_b, score_cutoff=allowed + 4) - allowed
    return ratio * EXTRA_EDIT_DISCOUNT ** max(excess, 0)


def _best(left: tuple[str, ...], right: tuple[str, ...], cutoff: float = 0.0) -> float:
    return max((fuzz.ratio(a, b, score_cutoff=cutoff) for a in left for b in right), default=0.0) / 100


def _best_default(left: NameForm, right: NameForm, cutoff: float = 0.0) -> float:
    # Other readings count only when they sound exactly alike (李胜 / 李晟): a near miss through a rare
    # reading (胜 read xing, one letter from 明 ming) made 诸葛胜亮 a match of 诸葛明亮 among 1M names.
    # Long names vary only their first unit (the surname's readings), which keeps counting here.
    if is_plain_name(left.compact) and is_plain_name(right.compact):
        return fuzz.ratio(left.sounds[0], right.sounds[0], score_cutoff=cutoff) / 100
    return _best(left.sounds, right.sounds, cutoff)
