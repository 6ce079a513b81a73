"""`investigate watch`: new holds and refusals as they happen, in a live table; reconnects and resumes.

Each lead's cursor is kept (and with --resume-file written to the file after the lead was shown), so a lost
connection, or a watch started again with the same file, carries on after the last lead shown: nothing missed,
nothing shown twice. A lead is shown before its cursor is written: a watch killed between the two shows that
one lead again on restart, rather than never.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from courier.v1 import investigation_pb2, investigation_pb2_grpc
from gateway.commands.investigate.common import LOCAL_ZONE, Session, cell, emit, launch, shown_time

KINDS = ("HELD", "REFUSED")
ORIGINS = ("ACCEPTANCE", "RESCREEN", "REVIEW", "SCAN")
# The request itself is wrong (a bad case, cursor or filter; a token without the role): retrying cannot help.
FATAL = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED,
                   grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNIMPLEMENTED,
                   grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE})
STEADY_S = 10.0  # a stream that lived this long was a success: the next loss starts the back-off afresh


def add(actions: Any, common: argparse.ArgumentParser) -> None:
    """Adds the `watch` action."""
    p = actions.add_parser("watch", parents=[common], help="new holds and refusals as they happen (live)",
                           description="New holds and refusals as they happen, newest at the top; Ctrl-C ends. "
                                       "A lost connection is reopened with back-off, after the last lead shown.")
    p.add_argument("--region", dest="regions", action="append", default=[], metavar="CODE",
                   help="only leads whose sender or recipient is in this region (310000 a province); repeatable")
    p.add_argument("--kind", dest="kinds", action="append", default=[], type=str.upper, choices=KINDS,
                   help="only this kind; repeatable")
    p.add_argument("--origin", dest="origins", action="append", default=[], type=str.upper, choices=ORIGINS,
                   help="only from this origin; repeatable")
    p.add_argument("--cursor", default="", help="start after this lead's cursor (instead of the resume file's)")
    p.add_argument("--resume-file", type=Path, metavar="FILE",
                   help="start after the cursor kept in FILE, and keep each lead's cursor there")
    p.set_defaults(func=launch(run_watch, interrupted=0))


@dataclass
class Backoff:
    """Exponential back-off with jitter: attempt n waits between half and all of min(cap, initial * 2^n)."""

    initial_s: float = 0.5
    cap_s: float = 15.0
    attempt: int = 0

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling up to the cap."""
        ceiling = min(self.cap_s, self.initial_s * 2.0 ** min(self.attempt, 30))
        self.attempt += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """After a success: the next failure starts from the initial delay again."""
        self.attempt = 0


class ResumeFile:
    """The last cursor a watch showed, kept in a file so that a watch started again carries on after it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("a"):  # fails now, not at the first lead, when the file cannot be written
            pass

    def read(self) -> str:
        """The cursor kept, or empty (a new file: start with new leads)."""
        return self.path.read_text(encoding="utf-8").strip()

    def write(self, cursor: str) -> None:
        """Replaces the cursor kept, atomically and durably: a crash leaves the old one or the new one."""
        scratch = self.path.with_name(f".{self.path.name}.tmp")
        with scratch.open("w", encoding="utf-8") as out:
            out.write(cursor + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, self.path)


@dataclass
class Board:
    """What the watch shows: a header line and the latest leads, newest first."""

    case_no: str
    filters: str
    size: int
    seen: int = 0
    status: str = "connecting"
    leads: deque[investigation_pb2.Lead] = field(default_factory=deque)

    def add(self, lead: investigation_pb2.Lead) -> None:
        """Puts a lead at the top, dropping the oldest beyond the board's size."""
        self.seen += 1
        self.leads.appendleft(lead)
        while len(self.leads) > self.size:
            self.leads.pop()

    def header(self) -> Text:
        """Case, filters, how many leads so far, and the connection."""
        return Text(f"case {self.case_no} · {self.filters} · {self.seen} leads seen · {self.status}")

    def render(self) -> RenderableType:
        """The header over the table of leads."""
        table = Table("raised at", "kind", "origin", "waybill", "regions", "reason", "hits", expand=True)
        for lead in self.leads:
            hits = "; ".join(f"{h.kind} {h.matched}" for h in lead.hits)
            table.add_row(cell(shown_time(lead.created_at)), cell(lead.kind), cell(lead.origin), cell(lead.waybill_no),
                          cell(f"{lead.origin_region_code} → {lead.destination_region_code}"),
                          Text(lead.reason, no_wrap=True, overflow="ellipsis"),
                          Text(hits, no_wrap=True, overflow="ellipsis"))
        return Group(self.header(), table)


def describe(args: argparse.Namespace) -> str:
    """The filters, as the header names them."""
    parts = [f"{name} {', '.join(values)}" for name, values in
             (("regions", args.regions), ("kinds", args.kinds), ("origins", args.origins)) if values]
    return " · ".join(parts) or "all leads"


class Screen:
    """Where the watch goes: a rich Live view on a terminal, else one line per lead (JSON with --json)."""

    def __init__(self, s: Session, board: Board) -> None:
        self.s, self.board = s, board
        live = s.out.is_terminal and not s.as_json
        self.live = Live(board.render(), console=s.out, auto_refresh=False) if live else None

    def __enter__(self) -> Screen:
        if self.live:
            self.live.start(refresh=True)
        return self

    def __exit__(self, *_: object) -> None:
        if self.live:
            self.live.stop()

    def status(self, text: str) -> None:
        """The connection's state: in the header, or one line on stderr without a Live view."""
        self.board.status = text
        if self.live:
            self.live.update(self.board.render(), refresh=True)
        else:
            print(f"watch: {self.board.header()}", file=sys.stderr, flush=True)

    def lead(self, lead: investigation_pb2.Lead) -> None:
        """Shows one new lead."""
        self.board.add(lead)
        if self.live:
            self.live.update(self.board.render(), refresh=True)
        elif self.s.as_json:
            emit(lead)
        else:
            self.s.out.print(Text(f"{shown_time(lead.created_at)}  {lead.kind} ({lead.origin})  {lead.waybill_no}  "
                                  f"{lead.origin_region_code} → {lead.destination_region_code}  {lead.reason}"))


async def run_watch(s: Session, args: argparse.Namespace) -> int:
    """Watches until Ctrl-C (exit 0) or an error that retrying cannot mend (exit 1)."""
    try:
        resume = ResumeFile(args.resume_file) if args.resume_file else None
        cursor = args.cursor or (resume.read() if resume else "")
    except (OSError, UnicodeDecodeError) as error:
        print(f"gateway: cannot use the resume file {args.resume_file}: {error}", file=sys.stderr)
        return 2
    request = investigation_pb2.WatchLeadsRequest(case_no=s.case_no, cursor=cursor, region_codes=args.regions,
                                                  kinds=args.kinds, origins=args.origins)
    try:
        with Screen(s, Board(s.case_no, describe(args), size=max(5, s.out.height - 6))) as screen:
            await follow(s, request, screen, resume)
    except OSError as error:  # the resume file could not be written: going on would break its promise
        print(f"gateway: cannot write the resume file {args.resume_file}: {error}", file=sys.stderr)
        return 1
    return 0


async def follow(s: Session, request: investigation_pb2.WatchLeadsRequest, screen: Screen,
                 resume: ResumeFile | None) -> None:
    """Streams leads for ever, reopening a lost stream after a back-off from the last cursor shown."""
    backoff = Backoff()

    def shown(lead: investigation_pb2.Lead) -> None:
        screen.lead(lead)
        request.cursor = lead.cursor
        if resume:
            resume.write(lead.cursor)
        backoff.reset()

    while True:
        opened = time.monotonic()
        try:
            await attempt(s, request, screen, shown)
            lost = "the gateway ended the watch"
        except grpc.aio.AioRpcError as error:
            if error.code() in FATAL:
                raise
            lost = f"{error.code().name}: {error.details()}"
        if time.monotonic() - opened >= STEADY_S:
            backoff.reset()
        delay = backoff.next()
        screen.status(f"disconnected ({lost}); reconnecting in {delay:.1f} s")
        await asyncio.sleep(delay)


async def attempt(s: Session, request: investigation_pb2.WatchLeadsRequest, screen: Screen,
                  shown: Callable[[investigation_pb2.Lead], None]) -> None:
    """One stream on a new channel, until it ends or fails; each lead goes to shown()."""
    screen.status(f"connecting to {s.target}")
    async with s.open() as channel:
        call = investigation_pb2_grpc.InvestigationStub(channel).WatchLeads(request, metadata=s.metadata)
        try:
            await call.wait_for_connection()
            screen.status(f"connected since {datetime.now(LOCAL_ZONE):%Y-%m-%d %H:%M:%S}")
            async for lead in call:
                shown(lead)
        finally:
            call.cancel()
