"""Converters between courier.v1.Blocklist messages and the blocklist core."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import date

from courier.v1 import acceptance_pb2, blocklist_pb2, common_pb2
from gateway.core.blocklist import (
    MAX_IMAGE_BYTES,
    SEAL_CONTEXTS,
    AddEntryCommand,
    DryRun,
    EntryPage,
    ImportSummary,
    ListQuery,
    StoredEntry,
    image_fingerprint,
    screening_canonical,
)
from gateway.core.errors import Violations
from gateway.core.screening import Action, Consignment, EntryKind, Hit, Item, Party
from gateway.rpc.convert.common import document_type, from_timestamp, timestamp
from gateway.security.sealing import Sealer

MAX_PHOTOS = 4
MAX_ITEMS = 50
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
        price_floor_fen=req.price_floor_fen or None, image=req.image,
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
        retire_reason=e.retire_reason, version=e.version,
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


class ConsignmentBuilder:
    """Turns a ScreenRequest into the screening core's Consignment: numbers into blind-index keys, photos into
    perceptual hashes, exactly as entries are keyed."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def _key(self, kind: EntryKind, value: str, today: date, doc_type: int = 0) -> str:
        canonical = screening_canonical(kind, value, today=today, document_type=document_type(doc_type))
        return self._sealer.blind_index(SEAL_CONTEXTS[kind], canonical).hex() if canonical else ""

    def build(self, req: blocklist_pb2.ScreenRequest, today: date) -> Consignment:
        """The consignment; InvalidInput for too many items or photos, or a photo that is not an image."""
        v = Violations()
        hashes = _photo_hashes(v, list(req.photos))
        if len(req.items) > MAX_ITEMS:
            v.add("items", f"at most {MAX_ITEMS}, got {len(req.items)}")
        v.raise_if_any()
        sender = Party(
            name=req.sender_name,
            document_key=self._key(EntryKind.DOCUMENT_NUMBER, req.sender_document_number, today,
                                   req.sender_document_type),
            phone_key=self._key(EntryKind.PHONE, req.sender_phone, today),
            organisation_key=self._key(EntryKind.ORGANISATION_CODE, req.sender_credit_code, today),
            region_code=req.sender_address.region_code, address=req.sender_address.detail,
        )
        r = req.recipient
        recipient = Party(name=r.name, phone_key=self._key(EntryKind.PHONE, r.phone, today),
                          region_code=r.address.region_code, address=r.address.detail)
        return Consignment(sender, recipient, tuple(_item(i) for i in req.items), image_hashes=hashes)


def _item(i: acceptance_pb2.Item) -> Item:
    return Item(i.description, i.quantity, i.declared_value_fen, brand=i.brand, category=i.category)


def _photo_hashes(v: Violations, photos: list[bytes]) -> tuple[int, ...]:
    if len(photos) > MAX_PHOTOS:
        v.add("photos", f"at most {MAX_PHOTOS}, got {len(photos)}")
        return ()
    hashes = []
    for i, photo in enumerate(photos):
        found = image_fingerprint(photo) if len(photo) <= MAX_IMAGE_BYTES else None
        if found is None:
            v.add(f"photos[{i}]", f"is not a readable JPEG or PNG of at most {MAX_IMAGE_BYTES} bytes")
        else:
            hashes.append(found)
    return tuple(hashes)


def _hit(h: Hit) -> common_pb2.ScreeningHit:
    return common_pb2.ScreeningHit(
        entry_id=h.entry_id or 0, kind=h.kind.value if h.kind else "SENDER_PATTERN",
        action=common_pb2.ScreeningOutcome.Value(f"SCREENING_OUTCOME_{h.action.name}"), field=h.field,
        matched=h.matched, score=h.score, threshold=h.threshold, explanation=h.explanation,
    )


def screen_response(dry: DryRun) -> blocklist_pb2.ScreenResponse:
    """A dry run to ScreenResponse."""
    outcome = common_pb2.ScreeningOutcome.Value(f"SCREENING_OUTCOME_{dry.result.outcome.name}")
    return blocklist_pb2.ScreenResponse(outcome=outcome, hits=[_hit(h) for h in dry.result.hits],
                                        version=dry.version)
