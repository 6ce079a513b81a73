"""Tone-free pinyin for names, cached per character.

Calling ``lazy_pinyin`` per name costs ~18 us (it segments phrases, which names do not need), so
building an index of 500,000 names that way takes ~9 s; readings are looked up once per distinct
character instead and a name's pinyin is assembled from that cache.
"""

from __future__ import annotations

import functools
import re

from pypinyin import Style, lazy_pinyin, pinyin

from gateway.core.screening.normalize import is_han

# Only the first character's alternative readings are expanded: polyphonic surnames (曾 ceng/zeng,
# 单 dan/shan, 解 jie/xie) are where writers disagree, and expanding every character would multiply
# the keys of each name.
MAX_SURNAME_READINGS = 3

# Mandarin speakers from the south (and evaders) merge zh/z, ch/c, sh/s and -ng/-n, so blocking
# keys fold them; scoring still compares the unfolded pinyin, so a merged pair scores below an
# exact homophone.
_FOLD = re.compile(r"zh|ch|sh|ng")
_FOLDED = {"zh": "z", "ch": "c", "sh": "s", "ng": "n"}

Unit = tuple[str, ...]


@functools.cache
def char_readings(ch: str) -> Unit:
    """Tone-free readings of one character, the default reading first; non-Han returns itself."""
    if not is_han(ch):
        return (ch,)
    default = lazy_pinyin(ch, style=Style.NORMAL, errors="ignore")
    every = pinyin(ch, style=Style.NORMAL, heteronym=True, errors="ignore")
    readings = list(default) + [r for r in (every[0] if every else []) if r not in default]
    return tuple(readings) or (ch,)


def units(compact: str) -> list[Unit]:
    """Split a compact name into pinyin units: one per Han character, one per Latin/digit run."""
    out: list[Unit] = []
    run: list[str] = []
    for ch in compact:
        if is_han(ch):
            if run:
                out.append(("".join(run),))
                run.clear()
            out.append(char_readings(ch))
        else:
            run.append(ch)
    if run:
        out.append(("".join(run),))
    return out


def sound_variants(parts: list[Unit]) -> tuple[str, ...]:
    """Concatenated tone-free pinyin, default reading first, then the surname's other readings."""
    if not parts:
        return ()
    rest = "".join(unit[0] for unit in parts[1:])
    return tuple(reading + rest for reading in parts[0][:MAX_SURNAME_READINGS])


def default_syllables(parts: list[Unit]) -> list[str]:
    """The default reading of each unit."""
    return [unit[0] for unit in parts]


def blocking_fold(sound: str) -> str:
    """Fold the sound pairs that are commonly merged, for use in blocking keys only."""
    return _FOLD.sub(lambda m: _FOLDED[m.group(0)], sound)
