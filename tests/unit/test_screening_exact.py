"""Exact kinds: blind-index keys of document numbers, phones and organisation codes."""

from __future__ import annotations

import pytest

from gateway.core.screening import Action, Entry, EntryKind, Outcome, Party
from gateway.core.screening.exact import ExactIndex


def index_of(*entries: Entry) -> ExactIndex:
    index = ExactIndex()
    for entry in entries:
        index.add(entry)
    return index


def test_each_party_key_is_looked_up_in_its_own_kind() -> None:
    index = index_of(Entry(1, EntryKind.DOCUMENT_NUMBER, "bk-doc", Action.REFUSE, label="3301**********1234"),
                     Entry(2, EntryKind.PHONE, "bk-phone", Action.HOLD, label="138****5678"),
                     Entry(3, EntryKind.ORGANISATION_CODE, "bk-org", Action.REFUSE, label="9144****XX"))
    party = Party(document_key="bk-doc", phone_key="bk-phone", organisation_key="bk-org")
    hits = list(index.screen_party(party, "recipient"))
    assert [(h.entry_id, h.field, h.action) for h in hits] == [
        (1, "recipient.document_key", Outcome.REFUSE),
        (2, "recipient.phone_key", Outcome.HOLD),
        (3, "recipient.organisation_key", Outcome.REFUSE),
    ]
    assert all(h.score == 1.0 == h.threshold for h in hits)


def test_a_key_listed_under_another_kind_does_not_match() -> None:
    index = index_of(Entry(1, EntryKind.PHONE, "same-key", Action.REFUSE))
    assert list(index.screen_party(Party(document_key="same-key"), "sender")) == []
    assert len(list(index.screen_party(Party(phone_key="same-key"), "sender"))) == 1


def test_hits_show_the_label_never_the_key() -> None:
    index = index_of(Entry(7, EntryKind.PHONE, "opaque-blind-key", Action.REFUSE, label="139****0001"))
    (hit,) = index.screen_party(Party(phone_key="opaque-blind-key"), "sender")
    assert hit.matched == "139****0001"
    assert "opaque-blind-key" not in hit.explanation
    assert "entry 7" in hit.explanation and "sender.phone_key" in hit.explanation


def test_empty_keys_never_match_and_cannot_be_listed() -> None:
    index = index_of(Entry(1, EntryKind.PHONE, "k", Action.REFUSE))
    assert list(index.screen_party(Party(), "sender")) == []
    with pytest.raises(ValueError, match="entry 2"):
        index.add(Entry(2, EntryKind.PHONE, "", Action.REFUSE))


def test_two_entries_with_one_key_both_hit() -> None:
    index = index_of(Entry(1, EntryKind.PHONE, "k", Action.HOLD), Entry(2, EntryKind.PHONE, "k", Action.REFUSE))
    assert [h.entry_id for h in index.screen_party(Party(phone_key="k"), "sender")] == [1, 2]
    assert len(index) == 2
