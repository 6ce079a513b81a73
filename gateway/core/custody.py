"""The parcel's custody states and the moves between them."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from gateway.core.errors import FieldViolation, InvalidInput, NotFound, Violations, WrongState
from gateway.core.model import Actor, EventRecord, ParcelState, Role, StoredEvent

WAYBILL_PATTERN = re.compile(r"[A-Z0-9\-]{8,32}")


class Move(enum.Enum):
    """A custody move; each is recorded as an event of the same name."""

    STORE = "STORED"
    DISPATCH = "DISPATCHED"
    HOLD = "HELD"
    RELEASE = "RELEASED"
    CONFIRM_HOLD = "HOLD_CONFIRMED"
    REFUSE = "REFUSED"


# The whole state machine: which states each move may start from, and where it leads.
# RELEASE leads back to ACCEPTED: a released parcel is stored or dispatched as usual.
TRANSITIONS: dict[Move, tuple[frozenset[ParcelState], ParcelState]] = {
    Move.STORE: (frozenset({ParcelState.ACCEPTED}), ParcelState.STORED),
    Move.DISPATCH: (frozenset({ParcelState.ACCEPTED, ParcelState.STORED}), ParcelState.DISPATCHED),
    Move.HOLD: (frozenset({ParcelState.ACCEPTED, ParcelState.STORED}), ParcelState.HELD),
    Move.RELEASE: (frozenset({ParcelState.HELD}), ParcelState.ACCEPTED),
    Move.CONFIRM_HOLD: (frozenset({ParcelState.HELD}), ParcelState.HELD),
    Move.REFUSE: (frozenset({ParcelState.HELD}), ParcelState.REFUSED),
}


def target_of(move: Move) -> ParcelState:
    """The state a move leads to."""
    return TRANSITIONS[move][1]


def check_move(current: ParcelState, move: Move, *, hold_reason: str = "") -> ParcelState:
    """Returns the state after the move, or raises WrongState saying why the move is not allowed."""
    sources, target = TRANSITIONS[move]
    if current in sources:
        return target
    raise WrongState(refusal_message(current, move, hold_reason))


def refusal_message(current: ParcelState, move: Move, hold_reason: str = "") -> str:
    """A human sentence explaining why a move cannot start from a state."""
    verb = move.name.lower()
    if current is ParcelState.HELD:
        return f"cannot {verb}: the parcel is held ({hold_reason or 'pending review'})"
    if current is ParcelState.REFUSED:
        return f"cannot {verb}: the parcel was refused ({hold_reason or 'not accepted'})"
    return f"cannot {verb} a parcel that is {current.value}"


@dataclass(frozen=True)
class CustodyMove:
    """A request to move one parcel, with who and where."""

    waybill_no: str
    move: Move
    location: str = ""
    terminal_id: str = ""
    device_id: str = ""
    note: str = ""


@dataclass(frozen=True)
class MoveResult:
    """A recorded move."""

    waybill_no: str
    from_state: ParcelState
    to_state: ParcelState
    event_seq: int
    recorded_at: datetime


@dataclass(frozen=True)
class ParcelView:
    """A parcel as a terminal sees it: personal data already masked."""

    shipment_id: str
    waybill_no: str
    state: ParcelState
    hold_reason: str
    masked_sender_name: str
    masked_recipient_name: str
    masked_recipient_phone: str
    recipient_region_code: str
    created_at: datetime
    events: tuple[StoredEvent, ...]


class CustodyRepository(Protocol):
    """Applies conditional state changes with their event, atomically."""

    async def apply_move(
        self, waybill_no: str, sources: frozenset[ParcelState], target: ParcelState,
        event: EventRecord, actor: Actor, *, lead_origin: str | None = None,
    ) -> MoveResult | None: ...

    async def current_state(self, waybill_no: str) -> tuple[ParcelState, str] | None: ...

    async def parcel_view(self, waybill_no: str) -> ParcelView | None: ...


@dataclass(frozen=True)
class ReviewDecision:
    """A reviewer's decision on a held parcel."""

    waybill_no: str
    move: Move
    reason: str
    case_no: str


def validate_review(cmd: ReviewDecision) -> None:
    """Checks a decision's limits; raises InvalidInput naming each bad field."""
    v = Violations()
    if not WAYBILL_PATTERN.fullmatch(cmd.waybill_no):
        v.add("waybill_no", "must be 8 to 32 characters of A-Z 0-9 -")
    v.text("reason", cmd.reason, max_len=500, required=True, multiline=True)
    v.text("case_no", cmd.case_no, max_len=64, required=True)
    v.raise_if_any()


def validate_move(cmd: CustodyMove, roles: frozenset[Role] = frozenset()) -> None:
    """Checks a move request's limits; raises InvalidInput naming each bad field.

    Who moved the parcel is part of the record: a terminal names its terminal_id, a scanner its device_id
    (a principal holding both roles names at least one).
    """
    v = Violations()
    if not WAYBILL_PATTERN.fullmatch(cmd.waybill_no):
        v.add("waybill_no", "must be 8 to 32 characters of A-Z 0-9 -")
    v.text("location", cmd.location, max_len=64)
    v.text("terminal_id", cmd.terminal_id, max_len=64)
    v.text("device_id", cmd.device_id, max_len=64)
    v.text("note", cmd.note, max_len=500, multiline=True)
    terminal, scanner = Role.TERMINAL in roles, Role.SCANNER in roles
    if terminal and not scanner and not cmd.terminal_id.strip():
        v.add("terminal_id", "is required when a terminal moves a parcel")
    elif scanner and not terminal and not cmd.device_id.strip():
        v.add("device_id", "is required when a scanner moves a parcel")
    elif not cmd.terminal_id.strip() and not cmd.device_id.strip():
        v.add("terminal_id", "a terminal_id or a device_id is required")
    v.raise_if_any()


class CustodyService:
    """The custody use cases: store, dispatch, and (for reviewers) hold decisions."""

    def __init__(self, repo: CustodyRepository) -> None:
        self._repo = repo

    async def move(self, cmd: CustodyMove, actor: Actor) -> MoveResult:
        """Applies one move if the state machine allows it; otherwise raises and changes nothing."""
        cmd = replace(cmd, waybill_no=cmd.waybill_no.strip().upper())
        validate_move(cmd, actor.principal.roles)
        event = EventRecord(cmd.move.value, None, target_of(cmd.move), location=cmd.location, note=cmd.note)
        return await self._apply(cmd.waybill_no, cmd.move, event, actor)

    async def review(self, cmd: ReviewDecision, actor: Actor) -> MoveResult:
        """A reviewer's decision on a held parcel (release, confirm or refuse), recorded with why and the case."""
        cmd = replace(cmd, waybill_no=cmd.waybill_no.strip().upper())
        validate_review(cmd)
        event = EventRecord(cmd.move.value, None, target_of(cmd.move), note=cmd.reason,
                            details={"case_no": cmd.case_no})
        lead = "REVIEW" if cmd.move is Move.REFUSE else None
        return await self._apply(cmd.waybill_no, cmd.move, event, actor, lead_origin=lead)

    async def hold(self, waybill_no: str, reason: str, hits: list[dict[str, object]], origin: str,
                   actor: Actor) -> MoveResult | None:
        """Holds a parcel still in custody (re-screening, a scanner's finding); None if it has moved on."""
        event = EventRecord(Move.HOLD.value, None, ParcelState.HELD, note=reason,
                            details={"origin": origin, "hits": hits})
        sources, target = TRANSITIONS[Move.HOLD]
        return await self._repo.apply_move(waybill_no, sources, target, event, actor, lead_origin=origin)

    async def _apply(self, waybill_no: str, move: Move, event: EventRecord, actor: Actor, *,
                     lead_origin: str | None = None) -> MoveResult:
        sources, target = TRANSITIONS[move]
        done = await self._repo.apply_move(waybill_no, sources, target, event, actor, lead_origin=lead_origin)
        if done is not None:
            return done
        found = await self._repo.current_state(waybill_no)
        if found is None:
            raise NotFound(f"no parcel with waybill {waybill_no}", field="waybill_no")
        state, reason = found
        check_move(state, move, hold_reason=reason)
        # The state allows the move now, so another call changed it between our two reads.
        raise WrongState(f"the parcel changed state concurrently (now {state.value}); retry", field="waybill_no")

    async def view(self, waybill_no: str) -> ParcelView:
        """The parcel's masked view and history."""
        waybill_no = waybill_no.strip().upper()
        if not WAYBILL_PATTERN.fullmatch(waybill_no):
            raise InvalidInput([FieldViolation("waybill_no", "must be 8 to 32 characters of A-Z 0-9 -")])
        found = await self._repo.parcel_view(waybill_no)
        if found is None:
            raise NotFound(f"no parcel with waybill {waybill_no}", field="waybill_no")
        return found
