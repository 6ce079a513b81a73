"""`python -m inspection decode` as a user runs it: a JSON line per file, errors in plain words, the exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from inspection.vision.synth import make_photo

REPO = Path(__file__).resolve().parents[2]


def _decode(*paths: Path | str) -> tuple[int, list[dict[str, object]], str]:
    proc = subprocess.run([sys.executable, "-m", "inspection", "decode", *map(str, paths)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def test_a_line_per_file_with_its_codes_and_exit_0(tmp_path: Path) -> None:
    qr, ean = make_photo(8000, "QRCode"), make_photo(8001, "EAN13")
    (tmp_path / "qr.jpg").write_bytes(qr.jpeg)
    grey = cv2.imdecode(np.frombuffer(ean.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    ok, png = cv2.imencode(".png", grey)
    (tmp_path / "ean.png").write_bytes(png.tobytes())
    (tmp_path / "blank.jpg").write_bytes(make_photo(8002, "Code128", code="absent").jpeg)
    code, lines, _ = _decode(tmp_path / "qr.jpg", tmp_path / "ean.png", tmp_path / "blank.jpg")
    assert code == 0
    assert [line["file"] for line in lines] == [str(tmp_path / n) for n in ("qr.jpg", "ean.png", "blank.jpg")]
    assert lines[0]["codes"] == [{"text": qr.text, "format": "QRCode", "corners": lines[0]["codes"][0]["corners"]}]
    corners = lines[0]["codes"][0]["corners"]
    assert len(corners) == 4 and all(len(p) == 2 and all(isinstance(v, int) for v in p) for p in corners)
    assert [(c["text"], c["format"]) for c in lines[1]["codes"]] == [(ean.text, "EAN13")]
    assert lines[2]["codes"] == [] and "error" not in lines[2]  # no code: nothing guessed, and not an error
    assert all(isinstance(line["ms"], float) and line["ms"] > 0 for line in lines)


def test_unreadable_files_are_reported_and_the_rest_still_decoded(tmp_path: Path) -> None:
    photo = make_photo(8100, "Code128")
    (tmp_path / "good.jpg").write_bytes(photo.jpeg)
    (tmp_path / "notes.txt").write_text("not an image at all\n")
    (tmp_path / "cut.jpg").write_bytes(photo.jpeg[: len(photo.jpeg) // 2])
    code, lines, _ = _decode(tmp_path / "notes.txt", tmp_path / "missing.jpg", tmp_path / "cut.jpg",
                             tmp_path / "good.jpg")
    assert code == 1
    assert len(lines) == 4
    for line, expected in zip(lines[:3], ("not an image", "cannot read the file", "truncated JPEG"), strict=True):
        assert line["codes"] == [] and expected in str(line["error"]) and "ms" in line
    assert [c["text"] for c in lines[3]["codes"]] == [photo.text] and "error" not in lines[3]


def test_decode_needs_a_file() -> None:
    proc = subprocess.run([sys.executable, "-m", "inspection", "decode"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "IMAGE" in proc.stderr
