"""Name matching: pinyin-aware, fuzzy, and served from blocking keys rather than a scan."""

from __future__ import annotations

import random

import pytest

from gateway.core.screening import Action, Entry, EntryKind
from gateway.core.screening import names as names_module
from gateway.core.screening.honorifics import strip_courtesy
from gateway.core.screening.nameforms import NameForm, listed_keys, name_score, parse_name, query_keys
from gateway.core.screening.names import MAX_MATCHES, NameIndex
from gateway.core.screening.phonetic import MAX_SOUND_VARIANTS, blocking_fold, char_readings
from gateway.core.screening.places import strip_places
from gateway.core.screening.syllables import split_syllables
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
    assert score("Jose Rodriguez", "Joseph Rodriguez") < THRESHOLD  # a long surname buys no slack
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

    def counting(query: NameForm, listed: NameForm, floor: float = 0.0) -> float:
        calls.append(listed)
        return name_score(query, listed, floor)

    monkeypatch.setattr(names_module, "name_score", counting)
    assert 10**6 in found(index, "諸葛明亮")
    assert 0 < len(calls) < 50  # a scan would score all 20,001 forms


def test_empty_and_punctuation_only_names_find_nothing() -> None:
    index = index_of(person(1, "张伟"))
    assert found(index, "") == [] and found(index, " · ") == []
    assert parse_name("···") is None


def test_every_reading_of_every_character_is_a_homophone() -> None:
    assert score("李胜", "李晟") == pytest.approx(0.95)  # 晟: cheng by default, sheng too
    assert score("何亮玲", "何靓玲") == pytest.approx(0.95)  # 靓: jing by default, liang too
    index = index_of(person(1, "李晟"), person(2, "何靓玲"))
    assert found(index, "李胜") == [1] and found(index, "何亮玲") == [2]


def test_reading_variants_and_their_blocking_keys_stay_bounded() -> None:
    # Four characters with three or more readings each would make 81 variants unbounded.
    form = parse_name("朝重和家")
    assert form is not None and 1 < len(form.sounds) <= MAX_SOUND_VARIANTS
    assert form.sounds[0] == "".join(char_readings(ch)[0] for ch in "朝重和家")
    assert len([k for k in listed_keys(form) if k.startswith("P")]) <= MAX_SOUND_VARIANTS


def test_a_surname_is_read_as_a_surname_and_a_different_one_costs_more() -> None:
    assert score("陆强", "刘强") < THRESHOLD  # 陆 the numeral is liu, the surname only lu
    assert score("许华", "胡华") < THRESHOLD
    assert score("程伟明", "陈伟明") < THRESHOLD  # cheng / chen: the given name alone would match
    assert score("章伟", "张伟") >= THRESHOLD and score("善雄信", "单雄信") >= THRESHOLD
    assert score("陈卫明", "陈伟明") >= THRESHOLD  # the same surname keeps the given-name homophone


def test_courtesy_words_are_stripped_only_when_a_name_is_left() -> None:
    index = index_of(person(1, "张伟"), person(2, "罗胜伟"), person(3, "李秋收"))
    for query in ("张伟先生", "张伟收", "收件人：张伟", "张伟（先生）", "张伟 先生"):
        assert found(index, query) == [1], query
    assert found(index, "罗胜伟先生收") == [2]
    assert found(index, "李秋收") == [3]  # a given name that ends in 收 still matches itself
    assert found(index, "张先生") == [] and found(index, "先生") == []
    assert strip_courtesy(["先生"]) is None and strip_courtesy(["王女士"]) is None
    assert strip_courtesy(["mr", "john", "smith"]) == ["john", "smith"]


def test_run_together_pinyin_matches_in_either_order() -> None:
    assert split_syllables("zhangliang") == ["zhang", "liang"]
    assert split_syllables("smith") is None
    index = index_of(person(1, "张亮"))
    for query in ("zhangliang", "liangzhang", "ZhangLiang", "zhang liang", "Liang Zhang"):
        assert found(index, query) == [1], query
    assert found(index, "zhangliangliang") == []


def test_a_gendered_ending_is_another_person() -> None:
    assert score("Olga Petrov", "Olga Petrova") < THRESHOLD
    assert score("Mario Garcia", "Maria Garcia") < THRESHOLD
    assert score("Anna Kowalski", "Anna Kowalska") < THRESHOLD
    assert score("Olga Petrowa", "Olga Petrova") >= THRESHOLD  # a slip inside the name is not


def test_a_rare_reading_counts_only_when_it_sounds_exactly_alike() -> None:
    # 胜 is also read xing, one letter from 明 ming: 诸葛胜亮 must stay another name than 诸葛明亮.
    assert score("诸葛胜亮", "诸葛明亮") < THRESHOLD
    assert score("王招阳", "王朝阳") >= THRESHOLD  # 朝 read zhao, exactly


def test_a_harvest_word_keeps_its_收() -> None:
    assert strip_courtesy(["李秋收"]) is None and strip_courtesy(["王丰收"]) is None
    assert strip_courtesy(["李秋", "收"]) == ["李秋"]  # written apart, 收 is the waybill's "to be received by"
    assert strip_courtesy(["张伟收"]) == ["张伟"]


def test_an_organisation_is_compared_without_the_place_at_its_head() -> None:
    index = index_of(Entry(1, EntryKind.ORGANISATION_NAME, "深圳市华强电子科技有限公司", Action.HOLD),
                     organisation=True)
    for query in ("华强电子科技有限公司", "广东省深圳市华强电子科技有限公司", "深圳华强电子科技"):
        assert found(index, query) == [1], query
    # Same city and trade, another trade name: the whole-name ratio was 0.89.
    assert found(index, "深圳市诚强电子科技有限公司") == [] and found(index, "深圳市华汇电子科技有限公司") == []
    assert strip_places("华润万家超市") == "华润万家超市" and strip_places("深圳市") == "深圳市"


def test_a_floor_leaves_every_score_at_or_above_it_unchanged() -> None:
    # search passes its threshold as the floor, so rapidfuzz gives up early on hopeless pairs: a pair
    # at or above the floor must keep its exact score and one below must stay below (never rise).
    rng = random.Random(11)
    texts = [random_name(rng, latin_share=0.3) for _ in range(300)]
    texts += ["陈伟明", "陳偉明", "陈伟民", "章伟", "张伟", "陆强", "刘强", "Petrov Ivan", "Ivan Petrova",
              "zhangwei", "Zhang Wei", "诸葛明亮", "诸葛胜亮", "Mohammed Ali", "Muhammad Ali", "Jose Smith",
              "Joseph Smith", "阿沛·阿旺晋美", "阿沛阿旺晉美"]
    forms = [f for f in map(parse_name, texts) if f is not None]
    at_or_above = below = 0
    for query in forms[::3]:
        for listed in forms:
            full = name_score(query, listed)
            for floor in (0.5, 0.8, THRESHOLD, 0.95):
                fast = name_score(query, listed, floor)
                if full >= floor:
                    at_or_above += 1
                    assert fast == full, (query, listed, floor)
                else:
                    below += 1
                    assert fast < floor, (query, listed, floor)
    assert at_or_above > 500 and below > 10_000  # both sides of every floor were exercised
