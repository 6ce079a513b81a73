"""The install a new user gets: no deprecated editable mode, and the packages importable from anywhere."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_install_asks_for_no_deprecated_editable_mode() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "editable_mode=compat" not in makefile  # setuptools warns it "will be removed"
    # A flat layout spelled out as package-dir "" is what lets setuptools use one .pth line, quietly.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["package-dir"] == {"": "."}


def test_gateway_and_the_generated_code_import_outside_the_checkout(tmp_path: Path) -> None:
    found = subprocess.run(
        [sys.executable, "-c", "import gateway, courier.v1.acceptance_pb2 as a; print(a.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=False)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).is_relative_to(REPO)
