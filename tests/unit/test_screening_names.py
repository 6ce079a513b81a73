"""Name matching: pinyin-aware, fuzzy, and served from blocking keys rather than a scan."""

from __future__ import annotations

import random

import pytest

from gateway.core.screening import Action, Entry, EntryKind
from gateway.core.screening import names as names_module
from gateway.core.screening.nameforms import NameForm, listed_keys, name_score, parse_name, query_keys
from gateway.core.screening.names import MAX_MATCHES, NameIndex
from gateway.core.screening.phonetic import blocking_fold, char_readings
from tests.fixtures.screening.synthetic import random_name

THRESHOLD = 0.88


def person(entry_id: int, name: str, action: Action = Action.REFUSE, aliases: tuple[str, ...] = ()) -> Entry:
    return Entry(entry_id, EntryKind.PERSON_NAME, name, action, aliases=aliases)


def index_of(*entries: Entry, organisation: bool = False) -> NameIndex:
    index = NameIndex(organisation)
    for entry in entries:
        index.add(entry)
    index.build()
    return index


def found(index: NameIndex, text: str) -> list[int]:
    return [m.entry.id for m in index.search(text, THRESHOLD)]


def score(a: str, b: str) -> float:
    query, listed = parse_name(a), parse_name(b)
    assert query is not None and listed is not None
    return name_score(query, listed)


def test_homophones_share_pinyin_and_score_below_identical_characters() -> None:
    assert score("张伟", "张伟") == 1.0
    assert score("章伟", "张伟") == pytest.approx(0.95)
    assert found(index_of(person(1, "张伟")), "章伟") == [1]


def test_traditional_spacing_and_middle_dots_are_the_same_name() -> None:
    index = index_of(person(1, "陈伟明"), person(2, "阿沛·阿旺晋美"))
    assert found(index, "陳偉明") == [1]
    assert found(index, "阿沛 阿旺晋美") == [2]
    assert found(index, "阿沛・阿旺晉美") == [2]


def test_a_name_with_an_extra_character_is_a_different_person() -> None:
    assert score("张伟强", "张伟") < THRESHOLD
    assert found(index_of(person(1, "张伟")), "张伟强") == []


def test_polyphonic_surname_matches_under_either_reading() -> None:
    assert char_readings("曾")[:2] == ("ceng", "zeng")
    assert found(index_of(person(1, "曾国强")), "增国强") == [1]


def test_swapped_latin_names_and_full_width_forms_match() -> None:
    index = index_of(person(1, "John Smith"))
    for query in ("Smith John", "Smith, John", "ＪＯＨＮ　ＳＭＩＴＨ", "Jon Smith"):
        assert found(index, query) == [1], query


def test_short_latin_given_names_two_edits_apart_do_not_match() -> None:
    assert score("Mary Gonzalez", "Maria Gonzalez") < THRESHOLD
    assert score("Jose Martinez", "Joseph Martinez") < THRESHOLD
    assert score("Muhammad Al-Rashid", "Mohammed Al-Rashid") >= THRESHOLD  # longer name, more slack


def test_pinyin_spelling_matches_chinese_characters_both_ways() -> None:
    index = index_of(person(1, "陈伟明"), person(2, "Zhang Xiaoming"))
    assert found(index, "Weiming Chen") == [1]
    assert found(index, "张晓明") == [2]


def test_near_homophones_are_folded_only_in_blocking_keys() -> None:
    assert blocking_fold("zhangsheng") == "zansen"
    assert score("陈伟民", "陈伟明") < 0.95  # scored on the unfolded pinyin
    assert found(index_of(person(1, "陈伟明")), "陈伟民") == [1]


def test_long_names_differing_in_one_syllable_are_found_through_deletion_keys() -> None:
    listed = parse_name("迪丽热巴迪力木拉提")
    query = parse_name("迪丽热巴迪力木拉娣")  # di for ti: a different pinyin key
    assert listed is not None and query is not None
    assert listed_keys(listed)[0] not in query_keys(query)
    shared = set(query_keys(query)) & set(listed_keys(listed))
    assert shared and all(k.startswith("D") for k in shared)
    assert found(index_of(person(1, "迪丽热巴·迪力木拉提")), "迪丽热巴·迪力木拉娣") == [1]


def test_organisation_legal_forms_are_ignored() -> None:
    index = index_of(Entry(1, EntryKind.ORGANISATION_NAME, "Acme Trading Co., Ltd.", Action.HOLD),
                     Entry(2, EntryKind.ORGANISATION_NAME, "华强电子贸易有限公司", Action.HOLD), organisation=True)
    assert found(index, "ACME TRADING LIMITED") == [1]
    assert found(index, "华强电子贸易 有限责任公司") == [2]
    assert found(index, "Acme Logistics Ltd") == []


def test_aliases_are_indexed_and_an_entry_is_reported_once() -> None:
    index = index_of(person(1, "王芳", aliases=("王方", "Wang Fang")))
    matches = index.search("王芳", THRESHOLD)
    assert [m.entry.id for m in matches] == [1]
    assert matches[0].score == 1.0 and matches[0].text == "王芳"
    assert found(index, "Fang Wang") == [1]


def test_refusing_entries_are_kept_when_matches_are_capped() -> None:
    entries = [person(i, "李娜", Action.HOLD) for i in range(1, 30)] + [person(99, "李娜", Action.REFUSE)]
    matches = index_of(*entries).search("李娜", THRESHOLD)
    assert len(matches) == MAX_MATCHES
    assert matches[0].entry.id == 99


def test_search_scores_only_blocked_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    index = index_of(*(person(i, random_name(rng)) for i in range(20_000)), person(10**6, "诸葛明亮"))
    calls: list[NameForm] = []

    def counting(query: NameForm, listed: NameForm) -> float:
        calls.append(listed)
        return name_score(query, listed)

    monkeypatch.setattr(names_module, "name_score", counting)
    assert 10**6 in found(index, "諸葛明亮")
    assert 0 < len(calls) < 50  # a scan would score all 20,001 forms


def test_empty_and_punctuation_only_names_find_nothing() -> None:
    index = index_of(person(1, "张伟"))
    assert found(index, "") == [] and found(index, " · ") == []
    assert parse_name("···") is None
