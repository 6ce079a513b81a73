"""The identity core stays pure: no gRPC, no database driver, no clock."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import date
from pathlib import Path

from gateway.core.identity import (
    REASON_CODES,
    DocumentType,
    check_name,
    check_organisation_code,
    check_phone,
    verify_document,
)

PACKAGE = Path(__file__).resolve().parents[2] / "gateway" / "core" / "identity"
FORBIDDEN_MODULES = {"grpc", "asyncpg", "socket", "subprocess", "http", "urllib", "httpx", "aiohttp", "asyncio"}


def _imported_roots(path: Path) -> set[str]:
    """Top-level module names a source file imports."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_module_imports_io_or_transport() -> None:
    sources = sorted(PACKAGE.glob("*.py"))
    assert len(sources) >= 10
    for path in sources:
        assert not _imported_roots(path) & FORBIDDEN_MODULES, path.name


def test_no_module_reads_the_clock() -> None:
    for path in PACKAGE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for call in ("date.today", "datetime.now", "datetime.today", "time.time", "datetime.utcnow"):
            assert call not in text, f"{path.name} calls {call}"


def test_importing_the_package_loads_neither_grpc_nor_asyncpg() -> None:
    code = "import sys, gateway.core.identity; print(sorted({'grpc', 'asyncpg'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parents[2])
    assert out.stdout.strip() == "[]"


def test_reason_codes_are_unique_and_cover_what_is_emitted() -> None:
    assert len(set(REASON_CODES)) == len(REASON_CODES)
    today = date(2024, 6, 1)
    emitted = {r.code for t in DocumentType for n in ("", "X", "110101199003071234", "武字第1号", "E1")
               for r in verify_document(t, n, today=today, mrz="P<").reasons}
    emitted |= {r.code for r in check_name("·3").reasons} | {r.code for r in check_phone("abc").reasons}
    emitted |= {r.code for r in check_organisation_code("91110000600037341M").reasons}
    assert len(emitted) >= 10
    assert emitted <= set(REASON_CODES)
