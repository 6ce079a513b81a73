"""Converters between courier.v1.Blocklist messages and the blocklist core."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from courier.v1 import blocklist_pb2, common_pb2
from gateway.core.blocklist import (
    AddEntryCommand,
    DryRun,
    EntryPage,
    ImportSummary,
    ListQuery,
    StoredEntry,
)
from gateway.core.dry_run import RecipientIn, ScreenCommand
from gateway.core.errors import Violations
from gateway.core.parcels import AddressIn, ItemIn
from gateway.core.screening import Action, EntryKind
from gateway.rpc.convert.common import document_type, from_timestamp, hits, timestamp

_KINDS = {blocklist_pb2.EntryKind.Value(f"ENTRY_KIND_{k.value}"): k for k in EntryKind}
_ACTIONS = {blocklist_pb2.EntryAction.Value(f"ENTRY_ACTION_{a.value}"): a for a in Action}
_KIND_VALUES = {k: v for v, k in _KINDS.items()}
_ACTION_VALUES = {a: v for v, a in _ACTIONS.items()}


def add_command(req: blocklist_pb2.AddEntryRequest) -> AddEntryCommand:
    """AddEntryRequest to the core's command (unknown enums become None, a zero price floor unset)."""
    return AddEntryCommand(
        kind=_KINDS.get(req.kind), value=req.value, action=_ACTIONS.get(req.action), agency=req.source.agency,
        case_no=req.source.case_no, legal_basis=req.source.legal_basis,
        expires_at=from_timestamp(req.expires_at, req.HasField("expires_at")), aliases=tuple(req.aliases),
        price_floor_fen=req.price_floor_fen or None, image=req.image, exclusions=tuple(req.exclusions),
    )


async def add_commands(requests: AsyncIterable[blocklist_pb2.AddEntryRequest]) -> AsyncIterator[AddEntryCommand]:
    """A client stream of AddEntryRequest as commands, one at a time."""
    async for req in requests:
        yield add_command(req)


def entry(e: StoredEntry) -> blocklist_pb2.Entry:
    """A stored entry to Entry (numbers masked)."""
    return blocklist_pb2.Entry(
        id=e.id, kind=_KIND_VALUES[e.kind], value=e.display_value, action=_ACTION_VALUES[e.action],
        source=blocklist_pb2.EntrySource(agency=e.source.agency, case_no=e.source.case_no,
                                         legal_basis=e.source.legal_basis),
        aliases=list(e.aliases), price_floor_fen=e.price_floor_fen or 0, added_by=e.added_by,
        added_at=timestamp(e.added_at), expires_at=timestamp(e.expires_at) if e.expires_at else None,
        active=e.active, retired_by=e.retired_by, retired_at=timestamp(e.retired_at) if e.retired_at else None,
        retire_reason=e.retire_reason, version=e.version, exclusions=list(e.exclusions),
    )


def list_query(req: blocklist_pb2.ListEntriesRequest) -> ListQuery:
    """ListEntriesRequest to the core's query; an unknown kind is bad input, not "every kind"."""
    kind = _KINDS.get(req.kind)
    if req.kind and kind is None:
        v = Violations()
        v.add("kind", "is not a known entry kind")
        v.raise_if_any()
    return ListQuery(kind=kind, agency=req.source_agency, active=req.active if req.HasField("active") else None,
                     page_size=req.page_size, page_token=req.page_token)


def list_response(page: EntryPage) -> blocklist_pb2.ListEntriesResponse:
    """A page to ListEntriesResponse."""
    return blocklist_pb2.ListEntriesResponse(entries=[entry(e) for e in page.entries],
                                             next_page_token=page.next_page_token)


def import_summary(s: ImportSummary) -> blocklist_pb2.ImportSummary:
    """The core's summary to ImportSummary; rejections beyond those listed are counted in a last line."""
    rejected = [blocklist_pb2.ImportRejection(position=r.position, field=r.field, reason=r.reason)
                for r in s.rejected]
    if s.rejected_count > len(s.rejected):
        rejected.append(blocklist_pb2.ImportRejection(
            reason=f"{s.rejected_count - len(s.rejected)} more rejected entries are not listed"))
    return blocklist_pb2.ImportSummary(added=s.added, duplicates=s.duplicates, rejected=rejected, version=s.version)


def _address(msg: common_pb2.Address, present: bool) -> AddressIn | None:
    return AddressIn(msg.region_code, msg.detail) if present else None


def screen_command(req: blocklist_pb2.ScreenRequest) -> ScreenCommand:
    """ScreenRequest to the core's command; an unset recipient or sender address is left out of screening."""
    r = req.recipient
    recipient = RecipientIn(r.name, r.phone, _address(r.address, r.HasField("address"))) \
        if req.HasField("recipient") else None
    return ScreenCommand(
        sender_name=req.sender_name, sender_document_type=document_type(req.sender_document_type),
        sender_document_number=req.sender_document_number, sender_phone=req.sender_phone,
        sender_credit_code=req.sender_credit_code,
        sender_address=_address(req.sender_address, req.HasField("sender_address")), recipient=recipient,
        items=tuple(ItemIn(i.description, i.quantity, i.declared_value_fen, i.category, i.brand) for i in req.items),
        photos=tuple(req.photos),
    )


def screen_response(dry: DryRun) -> blocklist_pb2.ScreenResponse:
    """A dry run to ScreenResponse."""
    outcome = common_pb2.ScreeningOutcome.Value(f"SCREENING_OUTCOME_{dry.outcome.name}")
    return blocklist_pb2.ScreenResponse(outcome=outcome, hits=hits(dry.hits), version=dry.version)
