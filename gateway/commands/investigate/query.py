"""`investigate search` and `investigate audit`: shipments matching filters, and who looked at what."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from courier.v1 import common_pb2, investigation_pb2
from gateway.commands.investigate.common import (
    CALL_TIMEOUT_S,
    Session,
    cell,
    emit,
    enum_name,
    launch,
    moment,
    party,
    say,
    shown_time,
    timestamp,
)

DOCUMENT_TYPES = tuple(n.removeprefix("DOCUMENT_TYPE_") for n in common_pb2.DocumentType.keys()
                       if not n.endswith("_UNSPECIFIED"))


def add(actions: Any, common: argparse.ArgumentParser, admin: argparse.ArgumentParser) -> None:
    """Adds the `search` and `audit` actions."""
    p = actions.add_parser("search", parents=[common], help="shipments matching every filter given, newest first",
                           description="Shipments matching every filter given (at least one), newest first.")
    p.add_argument("--document", default="", help="the sender's document number (exactly, in full)")
    p.add_argument("--document-type", type=str.upper, choices=DOCUMENT_TYPES, metavar="TYPE",
                   help=f"how to read --document: {', '.join(DOCUMENT_TYPES)}")
    p.add_argument("--phone", default="", help="a sender's or recipient's phone")
    p.add_argument("--name", default="", help="a sender's or recipient's name (pinyin-aware: 张伟 finds 章伟)")
    p.add_argument("--waybill", default="", help="a waybill number, exactly")
    p.add_argument("--origin", default="", help="the sender's region: 6 digits, 310000 a province, 310100 a city")
    p.add_argument("--destination", default="", help="the recipient's region, the same way")
    _times(p, "accepted")
    p.add_argument("--flagged", action="store_true", help="only shipments ever held or refused")
    _paging(p, 500)
    p.set_defaults(func=launch(run_search))
    a = actions.add_parser("audit", parents=[admin], help="the audit: who called what, for which case (admin)",
                           description="Audit records, newest first (an admin's token).")
    a.add_argument("--case", dest="case_no", metavar="CASE_NO", default="", help="only this case (default: all)")
    a.add_argument("--principal", default="", help="only this principal's calls")
    _times(a, "called")
    _paging(a, 1000)
    a.set_defaults(func=launch(run_audit))


def _times(p: argparse.ArgumentParser, what: str) -> None:
    zone = "a date alone is its start; without a zone, Asia/Shanghai time"
    p.add_argument("--from", dest="from_time", type=moment, metavar="WHEN",
                   help=f"{what} at or after (ISO 8601; {zone})")
    p.add_argument("--to", dest="to_time", type=moment, metavar="WHEN", help=f"{what} before (ISO 8601, the same way)")


def _paging(p: argparse.ArgumentParser, most: int) -> None:
    p.add_argument("--page-size", type=int, default=0, metavar="N", help=f"at most this many per page (1 to {most})")
    pages = p.add_mutually_exclusive_group()
    pages.add_argument("--all", dest="follow", action="store_true", help="follow the next page token to the end")
    pages.add_argument("--page-token", default="", metavar="TOKEN", help="the next page token a previous page printed")


async def pages(s: Session, call: Callable[..., Any], request: Any, follow: bool) -> AsyncIterator[Any]:
    """Each page of a paged call: one, or with follow every page until the next page token is empty."""
    while True:
        page = await call(request, metadata=s.metadata, timeout=CALL_TIMEOUT_S)
        yield page
        if not follow or not page.next_page_token:
            return
        request.page_token = page.next_page_token


def search_request(case_no: str, args: argparse.Namespace) -> investigation_pb2.SearchRequest:
    """The SearchRequest the options describe."""
    kind = common_pb2.DocumentType.Value(f"DOCUMENT_TYPE_{args.document_type}") if args.document_type else 0
    return investigation_pb2.SearchRequest(
        case_no=case_no, document_number=args.document, document_type=kind, phone=args.phone, name=args.name,
        waybill_no=args.waybill, origin_region_code=args.origin, destination_region_code=args.destination,
        from_time=timestamp(args.from_time), to_time=timestamp(args.to_time), flagged_only=args.flagged,
        page_size=args.page_size, page_token=args.page_token)


async def run_search(s: Session, args: argparse.Namespace) -> int:
    """Prints the shipments found (every page with --all), the next page token and the answer's as_of."""
    found: list[investigation_pb2.ShipmentRecord] = []
    last = investigation_pb2.SearchResponse()
    async for page in pages(s, s.investigation.SearchShipments, search_request(s.case_no, args), args.follow):
        if s.as_json:
            emit(page)
        found += page.shipments
        last = page
    if not s.as_json:
        s.out.print(shipments_table(found))
        more = f"next page: --page-token {last.next_page_token}" if last.next_page_token else "no more pages"
        say(s.out, f"{len(found)} shipments; {more}; as of {shown_time(last.as_of)}")
    return 0


def shipments_table(records: list[investigation_pb2.ShipmentRecord]) -> Table:
    """Waybill, accepted at, state, sender (name, document, phone), recipient, and whether it was ever flagged."""
    table = Table("waybill", "accepted at", "state", "sender", "recipient", "flagged", show_lines=True)
    for r in records:
        state = enum_name(common_pb2.ParcelState, r.state, "PARCEL_STATE_")
        table.add_row(cell(r.waybill_no), cell(shown_time(r.accepted_at)),
                      Group(cell(state), Text(r.hold_reason, style="dim")) if r.hold_reason else cell(state),
                      cell(party(r.sender, address=False)), cell(party(r.recipient, address=False)),
                      Text("FLAGGED", style="bold red") if r.flagged else cell(""))
    return table


async def run_audit(s: Session, args: argparse.Namespace) -> int:
    """Prints the audit records asked for (every page with --all), newest first."""
    request = investigation_pb2.ListAuditRecordsRequest(
        case_no=args.case_no, principal=args.principal, from_time=timestamp(args.from_time),
        to_time=timestamp(args.to_time), page_size=args.page_size, page_token=args.page_token)
    found: list[investigation_pb2.AuditRecord] = []
    last = investigation_pb2.ListAuditRecordsResponse()
    async for page in pages(s, s.investigation.ListAuditRecords, request, args.follow):
        if s.as_json:
            emit(page)
        found += page.records
        last = page
    if not s.as_json:
        show_audit(found, last.next_page_token, s.out)
    return 0


def show_audit(records: list[investigation_pb2.AuditRecord], next_token: str, out: Console) -> None:
    """The audit table, then how many and the next page token."""
    table = Table("id", "at", "principal", "method", "case", "status", "returned", "filters", "leaf")
    for r in records:
        status = cell(r.status) if r.status in ("OK", "CLOSED") else Text(r.status, style="red")
        table.add_row(cell(r.id), cell(shown_time(r.at)), cell(r.principal), cell(r.method.rsplit("/", 1)[-1]),
                      cell(r.case_no), status, cell(r.returned), cell(r.filters_json),
                      cell(r.leaf_index if r.leaf_index >= 0 else "pending"))
    out.print(table)
    more = f"next page: --page-token {next_token}" if next_token else "no more pages"
    say(out, f"{len(records)} audit records; {more}")
