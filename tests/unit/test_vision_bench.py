"""The decode benchmark's arithmetic: share read, wrong readings and images/s per symbology."""

from __future__ import annotations

import pytest

from bench.scenarios.decode import SCENARIO, summarise


def _row(symbology: str, seed: int, correct: bool, wrong: list[str] | None = None, s: float = 0.01,
         damaged: bool = False) -> dict:
    return {"symbology": symbology, "seed": seed, "load_s": s / 2, "read_s": s / 2, "correct": correct,
            "wrong": wrong or [], "damaged": damaged}


def test_summarise_counts_per_symbology_and_overall() -> None:
    rows = [_row("Code128", 1, True), _row("Code128", 2, False), _row("Code128", 3, True, s=0.04),
            _row("QRCode", 4, True), _row("EAN13", 5, False, ["UPCA '0123'"])]
    quality = summarise(rows)
    assert quality["Code128"]["read"] == 2 and quality["Code128"]["correct"] == pytest.approx(2 / 3)
    assert quality["Code128"]["per_s"] == pytest.approx(3 / 0.06) and quality["Code128"]["missed_seeds"] == [2]
    assert quality["Code128"]["read_only_per_s"] == pytest.approx(3 / 0.03)
    assert quality["EAN13"]["wrong"] == 1 and quality["EAN13"]["wrong_readings"] == ["seed 5: UPCA '0123'"]
    assert quality["all"]["photos"] == 5 and quality["all"]["wrong"] == 1 and quality["all"]["read"] == 3
    assert "DataMatrix" not in quality and "damaged" not in quality  # no photos, no row


def test_damaged_photos_are_a_group_of_their_own_left_out_of_the_rest() -> None:
    rows = [_row("QRCode", 1, True), _row("QRCode", 2, True, damaged=True, s=1.0),
            _row("EAN13", 3, False, ["EAN13 '4006381333931'"], damaged=True)]
    quality = summarise(rows)
    assert quality["all"]["photos"] == 1 and quality["QRCode"]["per_s"] == pytest.approx(100.0)
    assert quality["damaged"]["photos"] == 2 and quality["damaged"]["read"] == 1 and quality["damaged"]["wrong"] == 1


def test_the_targets_are_the_issues() -> None:
    targets = {t.metric: (t.op, t.bound) for t in SCENARIO.targets}
    assert targets == {"quality.Code128.correct": (">=", 0.99), "quality.QRCode.correct": (">=", 0.99),
                       "quality.all.wrong": ("<=", 0.0), "quality.damaged.wrong": ("<=", 0.0),
                       "inprocess.per_s": (">=", 50.0)}
    assert SCENARIO.self_measured and SCENARIO.name == "decode"
