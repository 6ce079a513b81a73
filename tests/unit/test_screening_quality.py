"""Screening quality against the labelled fixtures, at the default policy.

Names: the index holds the fixture's listed names plus ~5,000 random distractors, so a matcher that
matched too loosely would pay in precision and one that blocked too narrowly would pay in recall.
Every kind: bench/quality.py screens the labelled sets of tests/fixtures/screening/ (names, goods,
parties, photographs) against an index of all of them plus random distractors of each kind, and
each kind's recall and precision must reach the bound argued beside it (run with -s for the table).
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import quality
from gateway.core.screening import (
    Action,
    BlocklistIndex,
    Consignment,
    Entry,
    EntryKind,
    Party,
    ScreeningPolicy,
)
from gateway.core.screening.nameforms import listed_keys, parse_name
from tests.fixtures.screening.synthetic import random_name

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "screening" / "name_variants.jsonl"
DISTRACTORS = 5000
DISTRACTOR_IDS = 100_000


@dataclass(frozen=True)
class Query:
    text: str
    expect: int | None
    why: str


def load_fixture() -> tuple[list[Entry], list[Query]]:
    entries, queries = list[Entry](), list[Query]()
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if "listed" in row:
            entries.append(Entry(row["listed"], EntryKind[row["kind"]], row["name"], Action.REFUSE))
        else:
            queries.append(Query(row["query"], row["expect"], row["why"]))
    return entries, queries


def exact_keys(text: str) -> set[str]:
    # Same pinyin or the same Latin tokens: such a distractor would be a legitimate match.
    form = parse_name(text)
    return {k for k in listed_keys(form) if k[0] in "PL"} if form else set()


def distractors(texts: list[str]) -> list[Entry]:
    forbidden = set().union(*(exact_keys(t) for t in texts))
    rng, out = random.Random(20240601), list[Entry]()
    while len(out) < DISTRACTORS:
        name = random_name(rng)
        if not exact_keys(name) & forbidden:
            out.append(Entry(DISTRACTOR_IDS + len(out), EntryKind.PERSON_NAME, name, Action.HOLD))
    return out


def name_hits(index: BlocklistIndex, text: str) -> set[int]:
    result = index.screen(Consignment(Party(name=text), Party(), ()))
    return {h.entry_id for h in result.hits if h.entry_id is not None}


def evaluate(policy: ScreeningPolicy) -> tuple[float, float, list[str]]:
    entries, queries = load_fixture()
    index = BlocklistIndex.build(entries + distractors([e.value for e in entries] + [q.text for q in queries]),
                                 policy)
    true_pos = false_pos = positives = 0
    failures = []
    for query in queries:
        found = name_hits(index, query.text)
        positives += query.expect is not None
        true_pos += query.expect in found
        wrong = found - {query.expect}
        false_pos += len(wrong)
        if (query.expect is not None and query.expect not in found) or wrong:
            failures.append(f"{query.text!r} expect {query.expect} got {sorted(found)} ({query.why})")
    precision = true_pos / max(true_pos + false_pos, 1)
    return true_pos / positives, precision, failures


def test_fixture_is_large_and_varied() -> None:
    entries, queries = load_fixture()
    assert len(queries) >= 150
    assert sum(q.expect is None for q in queries) >= 40
    assert any("·" in e.value for e in entries)
    assert {e.kind for e in entries} == {EntryKind.PERSON_NAME, EntryKind.ORGANISATION_NAME}
    assert {q.expect for q in queries if q.expect is not None} == {e.id for e in entries}


def test_recall_and_precision_at_default_threshold() -> None:
    recall, precision, failures = evaluate(ScreeningPolicy())
    print(f"\nname matching at threshold {ScreeningPolicy().name_threshold}: "
          f"recall {recall:.3f}, precision {precision:.3f}")
    for failure in failures:
        print("  miss/extra:", failure)
    assert recall >= 0.95, failures
    assert precision >= 0.95, failures


def test_a_much_stricter_threshold_loses_recall() -> None:
    # Guards the evaluation itself: if recall did not move, the queries would not exercise fuzziness.
    recall, _, _ = evaluate(ScreeningPolicy(name_threshold=0.99))
    assert recall < 0.8


# ---- every kind ------------------------------------------------------------------------------------

def kind_distractors(rng: random.Random) -> list[Entry]:
    """Random entries of the other kinds, numbered from 200,000: none lists a labelled value."""
    out: list[Entry] = []

    def add(kind: EntryKind, value: str, **extra: object) -> None:
        out.append(Entry(200_000 + len(out), kind, value, Action.HOLD, **extra))  # type: ignore[arg-type]

    for _ in range(2_000):
        add(EntryKind.IMAGE_FINGERPRINT, f"{rng.getrandbits(63):016x}")
    for kind in (EntryKind.DOCUMENT_NUMBER, EntryKind.PHONE, EntryKind.ORGANISATION_CODE):
        for _ in range(500):
            add(kind, f"{rng.getrandbits(256):064x}")
    streets = ("中山路", "人民路", "解放路", "建设路", "华强北路", "三元里大道", "稠州北路", "荔园路", "南京东路",
               "建国路")
    for _ in range(600):
        region = rng.choice(("440304", "440111", "330782", "350302", "310101", "110105"))
        add(EntryKind.ADDRESS, f"{region}|{rng.choice(streets)}{rng.randint(1, 999)}号{rng.randint(1, 30)}栋"
                               f"{rng.randint(101, 2805)}室")
    syllables = ("vel", "mor", "cas", "tel", "lin", "ar", "no", "vi", "la", "ren", "zo", "bel", "ti", "qua", "ro")
    for _ in range(300):
        name = "".join(rng.choice(syllables) for _ in range(3)).title()
        add(EntryKind.BRAND_PRICE_FLOOR, name, price_floor_fen=rng.choice((9_900, 49_900, 199_900)))
    return out


@functools.cache
def kind_figures() -> dict[EntryKind, quality.Figures]:
    labelled = quality.load()
    names = distractors([e.value for e in labelled.entries if e.kind in (EntryKind.PERSON_NAME,
                                                                           EntryKind.ORGANISATION_NAME)]
                        + [c.consignment.sender.name for c in labelled.cases if c.consignment.sender.name])
    others = names + kind_distractors(random.Random(20241202))
    by_id = {e.id: e for e in others}
    index = BlocklistIndex.build(labelled.entries + others)
    return quality.evaluate(index, labelled, by_id.get)


def test_every_kind_is_measured_by_positive_and_negative_cases() -> None:
    labelled = quality.load()
    kinds = {e.kind for e in labelled.entries}
    assert kinds == set(EntryKind)
    for name in quality.SETS:
        assert any(not c.expect for c in labelled.cases if c.source == name), name
        assert any(c.expect for c in labelled.cases if c.source == name), name
    figures = kind_figures()
    assert all(figures[kind].expected >= 4 for kind in EntryKind)


def test_recall_and_precision_per_kind() -> None:
    figures = kind_figures()
    print("\n" + quality.table_text(figures))
    for counts in figures.values():
        for line in counts.misses + counts.extras:
            print("  ", line)
    for kind, (min_recall, min_precision) in quality.BOUNDS.items():
        counts = figures[kind]
        assert counts.recall is not None and counts.recall >= min_recall, (kind, counts.misses)
        assert counts.precision is not None and counts.precision >= min_precision, (kind, counts.extras)


@pytest.mark.parametrize("perturbation", ["half", "upscale", "jpeg30", "jpeg60", "brighter", "darker", "contrast",
                                          "grey", "blur", "rotate2"])
def test_every_listed_photo_survives_the_perturbations_short_of_a_crop(perturbation: str) -> None:
    misses = [m for m in kind_figures()[EntryKind.IMAGE_FINGERPRINT].misses if f" {perturbation}'" in m]
    assert misses == []


def _photo_figures(frames: bool) -> quality.Figures:
    labelled = quality.load(image_frames=frames)
    images = [e for e in labelled.entries if e.kind is EntryKind.IMAGE_FINGERPRINT]
    others = kind_distractors(random.Random(20241202))
    index = BlocklistIndex.build(images + [e for e in others if e.kind is EntryKind.IMAGE_FINGERPRINT])
    photos = quality.Labelled(images, [c for c in labelled.cases if c.source == "images"])
    return quality.evaluate(index, photos)[EntryKind.IMAGE_FINGERPRINT]


def test_listing_a_photo_with_its_cropped_and_padded_frames_finds_the_crops() -> None:
    # What the listing path gains by storing images.listing_fingerprints as the entry's aliases (AddEntry does).
    images = [e for e in quality.load(image_frames=True).entries if e.kind is EntryKind.IMAGE_FINGERPRINT]
    assert all(len(e.aliases) >= 3 for e in images)
    counts = _photo_figures(frames=True)
    print(f"\nphotographs listed with their frames: recall {counts.recall:.3f}, precision {counts.precision:.3f}")
    assert counts.recall is not None and counts.recall >= 0.95, counts.misses
    assert counts.precision == 1.0, counts.extras
    assert counts.found > _photo_figures(frames=False).found
