"""The custody state machine: every (state, move) pair."""

from __future__ import annotations

import pytest

from gateway.core.custody import TRANSITIONS, Move, check_move
from gateway.core.errors import WrongState
from gateway.core.model import ParcelState as S

ALLOWED = {
    (S.ACCEPTED, Move.STORE): S.STORED,
    (S.ACCEPTED, Move.DISPATCH): S.DISPATCHED,
    (S.STORED, Move.DISPATCH): S.DISPATCHED,
    (S.ACCEPTED, Move.HOLD): S.HELD,
    (S.STORED, Move.HOLD): S.HELD,
    (S.HELD, Move.RELEASE): S.ACCEPTED,
    (S.HELD, Move.CONFIRM_HOLD): S.HELD,
    (S.HELD, Move.REFUSE): S.REFUSED,
}


@pytest.mark.parametrize(("state", "move"), [(s, m) for s in S for m in Move])
def test_each_pair(state: S, move: Move) -> None:
    if (state, move) in ALLOWED:
        assert check_move(state, move) is ALLOWED[(state, move)]
    else:
        with pytest.raises(WrongState):
            check_move(state, move)


def test_terminal_states_have_no_way_out() -> None:
    for sources, _ in TRANSITIONS.values():
        assert S.DISPATCHED not in sources and S.REFUSED not in sources


def test_held_refusal_names_the_reason() -> None:
    with pytest.raises(WrongState, match="held \\(counterfeit keyword 高仿\\)"):
        check_move(S.HELD, Move.DISPATCH, hold_reason="counterfeit keyword 高仿")
