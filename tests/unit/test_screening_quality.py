"""Name-matching quality against the labelled fixture, at the default threshold.

The index holds the fixture's listed names plus ~5,000 random distractors, so a matcher that
matched too loosely would pay in precision and one that blocked too narrowly would pay in recall.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

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
