"""Tone-free pinyin for names, cached per character.

Calling ``lazy_pinyin`` per name costs ~18 us (it segments phrases, which names do not need), so
building an index of 500,000 names that way takes ~9 s; readings are looked up once per distinct
character instead and a name's pinyin is assembled from that cache.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from pypinyin import Style, lazy_pinyin, pinyin

from gateway.core.screening.normalize import is_han

Unit = tuple[str, ...]

# A plain Chinese name (2-4 characters) is read every way its characters can be read (李晟 is li cheng
# or li sheng), but no more than this many readings per character nor variants per name, so the
# blocking keys of a name stay few; variants are taken in order of how far they stray from the
# default readings. Longer names (transliterations) keep the default readings but for the first.
PLAIN_NAME_CHARS = range(2, 5)
MAX_READINGS_PER_CHAR = 3
MAX_SOUND_VARIANTS = 8
MAX_SURNAME_READINGS = 3

# How a surname is read differs from the character's everyday default (曾 zeng, not ceng; 单 shan,
# not dan), and a surname has fewer readings than the character (陆 the surname is lu, never the
# numeral liu, which made 陆强 a "homophone" of 刘强). A surname outside this table is read by its
# default only. The reading a surname takes comes first; the everyday reading follows where writers
# commonly use it, so a homophone of either still matches.
SURNAME_READINGS: dict[str, Unit] = {
    "曾": ("zeng", "ceng"), "单": ("shan", "dan"), "解": ("xie", "jie"), "仇": ("qiu", "chou"),
    "朴": ("piao", "pu"), "区": ("ou", "qu"), "查": ("zha", "cha"), "乐": ("yue", "le"), "覃": ("qin", "tan"),
    "盖": ("ge", "gai"), "缪": ("miao",), "翟": ("zhai", "di"), "尉": ("wei", "yu"), "薄": ("bo",),
    "长": ("chang",), "重": ("chong",), "种": ("chong",), "员": ("yun", "yuan"), "召": ("shao",),
    "秘": ("bi",), "折": ("she",), "繁": ("po",), "蔚": ("yu", "wei"), "句": ("gou",), "隗": ("wei", "kui"),
    "祭": ("zhai",), "能": ("nai",), "藏": ("zang",), "都": ("du",), "行": ("hang", "xing"), "六": ("lu",),
    "谌": ("chen", "shen"), "角": ("jue",), "黑": ("he",), "柏": ("bai", "bo"), "沈": ("shen",),
}
COMPOUND_SURNAME_READINGS: dict[str, tuple[str, str]] = {
    "尉迟": ("yu", "chi"), "万俟": ("mo", "qi"), "单于": ("chan", "yu"), "长孙": ("zhang", "sun"),
}

# Mandarin speakers from the south (and evaders) merge zh/z, ch/c, sh/s and -ng/-n, so blocking
# keys fold them; scoring still compares the unfolded pinyin, so a merged pair scores below an
# exact homophone.



@functools.cache
def char_readings(ch: str) -> Unit:
    """Tone-free readings of one character, the default reading first; non-Han returns itself."""
    if not is_han(ch):
        return (ch,)
    default = lazy_pinyin(ch, style=Style.NORMAL, errors="ignore")
    every = pinyin(ch, style=Style.NORMAL, heteronym=True, errors="ignore")
    readings = list(default) + [r for r in (every[0] if every else []) if r not in default]
    return tuple(readings) or (ch,)


# The ranges of normalize.is_han, for a one-call test of a whole name (most names are all Han).
_ALL_HAN = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002fa1f]+")


def units(compact: str) -> list[Unit]:
    """Split a compact name into pinyin units: one per Han character, one per Latin/digit run."""
    if _ALL_HAN.fullmatch(compact):
        return [char_readings(ch) for ch in compact]
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


def is_plain_name(compact: str) -> bool:
    """A surname and a given name in 2-4 Han characters, the shape the surname rules apply to."""
    return len(compact) in PLAIN_NAME_CHARS and _ALL_HAN.fullmatch(compact) is not None


# A query's form and its blocking keys both need its units, so the last few are kept.
@functools.lru_cache(maxsize=1 << 12)
def name_units(compact: str) -> tuple[Unit, ...]:
    """``units`` of a name, with the surname read as a surname when the name is a plain one."""
    parts = units(compact)
    if len(parts) != len(compact) or not is_plain_name(compact):
        return tuple(parts)
    compound = COMPOUND_SURNAME_READINGS.get(compact[:2])
    if compound is not None and len(compact) > 2:
        return ((compound[0],), (compound[1],), *parts[2:])
    return (surname_readings(compact[0]), *parts[1:])


def surname_of(compact: str) -> Unit:
    """The readings of a plain name's surname (its first unit in ``name_units``)."""
    compound = COMPOUND_SURNAME_READINGS.get(compact[:2])
    return (compound[0],) if compound is not None and len(compact) > 2 else surname_readings(compact[0])


def surname_readings(ch: str) -> Unit:
    """How a surname character is read: the table's readings, else its default reading."""
    return SURNAME_READINGS.get(ch) or char_readings(ch)[:1]


def sound_variants(parts: Sequence[Unit], every_reading: bool = False) -> tuple[str, ...]:
    """Concatenated tone-free pinyin, the default readings first.

    With ``every_reading`` (plain names) every character's readings are combined, fewest departures
    from the defaults first, up to MAX_SOUND_VARIANTS; otherwise only the first unit's readings vary.
    """
    if not parts:
        return ()
    varied = [i for i, unit in enumerate(parts) if len(unit) > 1]
    if not varied:
        return ("".join(unit[0] for unit in parts),)
    if len(varied) == 1 and (every_reading or varied[0] == 0):
        # The common case: one character of the name has other readings.
        i = varied[0]
        head, tail = "".join(u[0] for u in parts[:i]), "".join(u[0] for u in parts[i + 1:])
        limit = MAX_READINGS_PER_CHAR if every_reading else MAX_SURNAME_READINGS
        return tuple(head + reading + tail for reading in parts[i][:limit])
    if not every_reading:
        rest = "".join(unit[0] for unit in parts[1:])
        return tuple(reading + rest for reading in parts[0][:MAX_SURNAME_READINGS])
    # Rank sums add up unit by unit, so keeping the best few partial combinations at each step keeps
    # the best few whole ones, without building the full product (3^4 for four characters).
    ranked: list[tuple[int, str]] = [(0, "")]
    for unit in parts:
        ranked = [(rank + i, sound + reading) for rank, sound in ranked
                  for i, reading in enumerate(unit[:MAX_READINGS_PER_CHAR])]
        if len(ranked) > MAX_SOUND_VARIANTS:
            ranked.sort(key=_rank)  # stable: among equal ranks the earlier characters' defaults win
            del ranked[MAX_SOUND_VARIANTS:]
    ranked.sort(key=_rank)
    return tuple(dict.fromkeys(sound for _, sound in ranked))


def _rank(item: tuple[int, str]) -> int:
    return item[0]


def default_syllables(parts: Sequence[Unit]) -> list[str]:
    """The default reading of each unit."""
    return [unit[0] for unit in parts]


def blocking_fold(sound: str) -> str:
    """Fold the sound pairs that are commonly merged, for use in blocking keys only."""
    # Replaced pair by pair (a sixth of a regex's cost): in pinyin zh/ch/sh only start a syllable and ng
    # only ends one, so no replacement can form a new pair.
    return sound.replace("zh", "z").replace("ch", "c").replace("sh", "s").replace("ng", "n")
