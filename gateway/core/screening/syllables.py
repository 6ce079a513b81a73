"""Splitting run-together pinyin ("zhangliang", "liangzhang") into syllables.

A sender who writes 张亮 as one Latin word gives no space to split at; knowing the ~420 tone-free
syllables of Mandarin, the word can be cut into them and read in either name order.
"""

from __future__ import annotations

import functools

from pypinyin.contrib.tone_convert import to_normal
from pypinyin.pinyin_dict import pinyin_dict

LONGEST_SYLLABLE = 6  # zhuang, chuang, shuang


@functools.cache
def syllable_set() -> frozenset[str]:
    """Every tone-free syllable pypinyin knows (ü written v, as in the names' pinyin)."""
    readings = {r for value in set(pinyin_dict.values()) for r in value.split(",")}
    return frozenset(s for s in map(to_normal, readings) if s.isascii() and s.isalpha())


def split_syllables(word: str) -> list[str] | None:
    """``word`` cut into the fewest pinyin syllables, or None when it is not pinyin."""
    known = syllable_set()
    # best[i]: the fewest syllables that spell word[:i]; ties keep the earlier (longer-first) cut.
    best: list[list[str] | None] = [[]] + [None] * len(word)
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - LONGEST_SYLLABLE), end):
            head = best[start]
            if head is not None and word[start:end] in known:
                candidate = [*head, word[start:end]]
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    return best[-1]


def name_orders(word: str, max_syllables: int = 4) -> list[str]:
    """A run-together pinyin name as written and with its last syllable moved to the front.

    "liangzhang" (given name first, as on a Western form) also reads "zhangliang". Empty unless the
    word is 2 to ``max_syllables`` syllables of pinyin.
    """
    syllables = split_syllables(word)
    if syllables is None or not 2 <= len(syllables) <= max_syllables:
        return []
    return list(dict.fromkeys((word, syllables[-1] + "".join(syllables[:-1]))))
