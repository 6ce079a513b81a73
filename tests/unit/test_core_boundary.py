"""The wall around the core: it imports neither grpc nor asyncpg (nor the gateway's doors)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "gateway" / "core"
FORBIDDEN = ("grpc", "asyncpg", "courier", "httpx", "aiohttp", "gateway.storage", "gateway.rpc", "gateway.live",
             "gateway.commands", "gateway.security", "gateway.adapters", "gateway.server")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, by its full dotted name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_core_imports_neither_grpc_nor_asyncpg() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10
    offenders = {
        f"{path.relative_to(CORE)}: {name}"
        for path in files for name in imported_modules(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }
    assert offenders == set()


def test_the_walker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import grpc\nfrom asyncpg import pool\ndef f():\n    import gateway.storage.db\n")
    assert {"grpc", "asyncpg", "gateway.storage.db"} <= imported_modules(sample)
