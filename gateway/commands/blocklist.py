"""`python -m gateway blocklist import FILE.csv|FILE.jsonl`: many entries from a file, straight to the database.

CSV has a header naming its columns (kind, value, action and agency required; case_no, legal_basis,
expires_at, aliases and exclusions separated by "|", price_floor_fen optional); JSONL has one object per line
with the same keys (aliases and exclusions may be lists). Kinds and actions are the proto names with or
without their prefix (PHONE, ENTRY_KIND_PHONE). expires_at is ISO 8601 with a zone
(2030-12-31T23:59:59+08:00). Entries go through the same rules and the same batches as ImportEntries; every
batch notifies the running gateways, which re-screen the parcels in custody against what was added.
Exit status: 0 when the file was read (rejected lines are reported, not fatal), 2 for an unreadable file or
a bad setting, 1 when the database fails.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from gateway.core.blocklist import AddEntryCommand, ImportLine, ImportSummary
from gateway.core.blocklist_service import BlocklistService
from gateway.core.errors import DomainError, FieldViolation
from gateway.core.model import Actor
from gateway.core.screening import Action, Consignment, Entry, EntryKind, Outcome, ScreeningResult
from gateway.settings import Settings, SettingsError, load_settings

COLUMNS = ("kind", "value", "action", "agency", "case_no", "legal_basis", "expires_at", "aliases", "price_floor_fen",
           "exclusions")
REQUIRED_COLUMNS = ("kind", "value", "action", "agency")
DEFAULT_PRINCIPAL = "blocklist-import"


class FileProblem(Exception):
    """The file cannot be imported at all (missing, not CSV/JSONL, a bad header)."""


class _LineProblem(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.violation = FieldViolation(field, reason)


class _Detached:
    """The live list of a process that serves nothing: the gateways hear the NOTIFY of each batch."""

    version = 0

    def screen(self, consignment: Consignment) -> ScreeningResult:
        return ScreeningResult(Outcome.PASS, ())

    async def catch_up(self) -> None:
        return None

    def entries_added(self, entry_ids: list[int]) -> None:
        return None

    def entry(self, entry_id: int) -> Entry | None:
        return None


def _enum(raw: str, prefix: str, names: Iterable[str]) -> str | None:
    name = raw.strip().upper().removeprefix(prefix)
    return name if name in names else None


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _LineProblem(key, "must be text")
    return str(value)


def _terms(raw: Any, field: str = "aliases") -> tuple[str, ...]:
    if isinstance(raw, list) and all(isinstance(a, str) for a in raw):
        return tuple(raw)
    if raw is None or isinstance(raw, str):
        return tuple(a.strip() for a in (raw or "").split("|") if a.strip())
    raise _LineProblem(field, "must be text separated by | or a list of text")


def _price(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw.strip())
    raise _LineProblem("price_floor_fen", "must be a whole number of fen")


def _expiry(raw: str) -> datetime | None:
    if not raw.strip():
        return None
    try:
        return datetime.fromisoformat(raw.strip())  # a time without a zone is refused by the rules
    except ValueError:
        raise _LineProblem("expires_at", "must be ISO 8601, e.g. 2030-12-31T23:59:59+08:00") from None


def command_of(fields: Mapping[str, Any]) -> AddEntryCommand:
    """A command of one line's fields; raises _LineProblem for a field that cannot even be read."""
    unknown = sorted(set(fields) - set(COLUMNS))
    if unknown:
        raise _LineProblem(unknown[0], "is not a known field")
    kind = _enum(_text(fields, "kind"), "ENTRY_KIND_", EntryKind.__members__)
    action = _enum(_text(fields, "action"), "ENTRY_ACTION_", Action.__members__)
    return AddEntryCommand(
        kind=EntryKind[kind] if kind else None, value=_text(fields, "value"),
        action=Action[action] if action else None, agency=_text(fields, "agency"),
        case_no=_text(fields, "case_no"), legal_basis=_text(fields, "legal_basis"),
        expires_at=_expiry(_text(fields, "expires_at")), aliases=_terms(fields.get("aliases")),
        price_floor_fen=_price(fields.get("price_floor_fen")),
        exclusions=_terms(fields.get("exclusions"), "exclusions"),
    )


def _line(position: int, fields: Mapping[str, Any]) -> ImportLine:
    try:
        return ImportLine(position, command_of(fields))
    except _LineProblem as problem:
        return ImportLine(position, None, problem.violation)


class EntryFile:
    """A CSV or JSONL file of entries, read line by line; its header is checked on opening."""

    def __init__(self, path: Path, binary: BinaryIO, advance: Callable[[int], None]) -> None:
        self._binary, self._advance = binary, advance
        self._bad_lines: set[int] = set()
        self._text = self._decoded()
        self.jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
        if not self.jsonl:
            self._reader = csv.reader(self._text)
            self._names = [name.strip().lower() for name in next(self._reader, [])]
            unknown = sorted(set(self._names) - set(COLUMNS))
            missing = [c for c in REQUIRED_COLUMNS if c not in self._names]
            if unknown or missing:
                raise FileProblem(
                    f"the CSV header must name {', '.join(REQUIRED_COLUMNS)} and may add {', '.join(COLUMNS[4:])};"
                    f" unknown: {', '.join(unknown) or 'none'}, missing: {', '.join(missing) or 'none'}")

    def _decoded(self) -> Iterator[str]:
        for number, raw in enumerate(self._binary, 1):
            self._advance(len(raw))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                self._bad_lines.add(number)
                text = raw.decode("utf-8", "replace")
            yield text.removeprefix("\ufeff") if number == 1 else text

    def lines(self) -> Iterator[ImportLine]:
        """Every entry line, numbered as in the file."""
        yield from (self._jsonl() if self.jsonl else self._csv())

    def _csv(self) -> Iterator[ImportLine]:
        start = self._reader.line_num + 1
        for row in self._reader:
            first, start = start, self._reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if self._bad_lines & set(range(first, start)):
                yield ImportLine(first, None, FieldViolation("", "the line is not valid UTF-8"))
            elif len(row) != len(self._names):
                problem = f"has {len(row)} fields, the header {len(self._names)}"
                yield ImportLine(first, None, FieldViolation("", problem))
            else:
                yield _line(first, dict(zip(self._names, row, strict=True)))

    def _jsonl(self) -> Iterator[ImportLine]:
        for number, text in enumerate(self._text, 1):
            if not text.strip():
                continue
            if number in self._bad_lines:
                yield ImportLine(number, None, FieldViolation("", "the line is not valid UTF-8"))
                continue
            try:
                found = json.loads(text)
            except json.JSONDecodeError as error:
                yield ImportLine(number, None, FieldViolation("", f"is not JSON: {error.msg}"))
                continue
            if not isinstance(found, dict):
                yield ImportLine(number, None, FieldViolation("", "is not a JSON object"))
                continue
            yield _line(number, found)


async def _each(lines: Iterator[ImportLine]) -> AsyncIterator[ImportLine]:
    for line in lines:
        yield line


def _open(path: Path) -> tuple[BinaryIO, int]:
    try:
        binary = path.open("rb")
    except OSError as error:
        raise FileProblem(f"cannot read {path}: {error.strerror}") from None
    return binary, os.fstat(binary.fileno()).st_size


async def run_import(path: Path, settings: Settings, *, principal: str = DEFAULT_PRINCIPAL,
                     console: Console | None = None, batch_size: int = 500) -> ImportSummary:
    """Imports a file through BlocklistRepository with a progress bar; raises FileProblem or DomainError."""
    from gateway.security.sealing import Sealer
    from gateway.storage.blocklist import BlocklistRepository
    from gateway.storage.db import create_pool

    console = console or Console(stderr=True)
    binary, size = _open(path)
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        repo = BlocklistRepository(pool, Sealer(settings.data_key, settings.index_key))
        actor = Actor(await repo.ensure_principal(principal))
        service = BlocklistService(repo, _Detached(), clock=lambda: datetime.now(UTC), batch_size=batch_size)
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
        with binary, Progress(*columns, console=console) as progress:
            task = progress.add_task(f"importing {path.name}", total=size or 1)
            source = EntryFile(path, binary, lambda n: progress.advance(task, n))
            return await service.import_entries(_each(source.lines()), actor)
    finally:
        await pool.close()


def report(summary: ImportSummary, console: Console) -> None:
    """The summary, then each rejected line with why."""
    console.print(f"added [green]{summary.added}[/], duplicates {summary.duplicates}, "
                  f"rejected [red]{summary.rejected_count}[/]; list version {summary.version}")
    if not summary.rejected:
        return
    table = Table("line", "field", "reason")
    for r in summary.rejected:
        table.add_row(str(r.position), r.field or "-", r.reason)
    console.print(table)
    if summary.rejected_count > len(summary.rejected):
        console.print(f"... and {summary.rejected_count - len(summary.rejected)} more rejected lines")


def register(sub: Any) -> None:
    """Adds the `blocklist` command."""
    blocklist = sub.add_parser("blocklist", help="manage the counterfeit blocklist")
    actions = blocklist.add_subparsers(dest="action", required=True)
    imp = actions.add_parser("import", help="add entries from FILE.csv or FILE.jsonl, reporting rejected lines")
    imp.add_argument("file", type=Path)
    imp.add_argument("--as", dest="principal", default=DEFAULT_PRINCIPAL,
                     help="the principal recorded as having added the entries")
    imp.set_defaults(func=lambda args: run(args.file, principal=args.principal))


def run(file: str | Path, *, principal: str = DEFAULT_PRINCIPAL, environ: Mapping[str, str] | None = None) -> int:
    """Imports one file with the settings of the environment (and make run's .var/env); returns the exit status."""
    from gateway.commands.dev import dev_env

    path, err = Path(file), Console(stderr=True)
    try:
        settings = load_settings(dev_env(environ))
    except SettingsError as error:
        err.print(f"gateway: bad setting: {error}")
        return 2
    if path.suffix.lower() not in (".csv", ".jsonl", ".ndjson") or not path.is_file():
        err.print(f"gateway: {path} is not a readable .csv or .jsonl file")
        return 2
    try:
        summary = asyncio.run(run_import(path, settings, principal=principal, console=err))
    except FileProblem as problem:
        err.print(f"gateway: {problem}")
        return 2
    except (DomainError, OSError, asyncpg.PostgresError) as error:
        err.print(f"gateway: the import stopped: {error}; batches already written are kept")
        return 1
    report(summary, Console())
    return 0

