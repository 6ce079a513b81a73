"""The acceptance screener: a parcel at acceptance against the live blocklist (the core's Screener port)."""

from __future__ import annotations

from typing import Any

from gateway.core.acceptance import AcceptParcelCommand, Decision, ScreeningVerdict, SenderParty
from gateway.core.consignments import PartyFacts, consignment, hit_record, reasons_of
from gateway.core.screening import Consignment, Outcome, Party
from gateway.live.blocklist import LiveBlocklist
from gateway.security.sealing import Sealer

DECISIONS = {Outcome.REFUSE: Decision.REFUSED, Outcome.HOLD: Decision.HELD}


class AcceptanceScreener:
    """Screens a parcel at acceptance against the live list (the core's Screener port)."""

    def __init__(self, live: LiveBlocklist, sealer: Sealer) -> None:
        self._live = live
        self._sealer = sealer

    def _phone_key(self, e164: str) -> bytes | None:
        return self._sealer.blind_index("phone", e164) if e164 else None

    def screen_acceptance(self, cmd: AcceptParcelCommand, sender: SenderParty, hashes: tuple[int, ...],
                          recipient_name: str, recipient_phone_e164: str) -> ScreeningVerdict:
        """Screens the consignment; REFUSE and HOLD become the acceptance's decision."""
        assert cmd.inspection and cmd.sender_address and cmd.recipient_address
        c = consignment(
            PartyFacts(sender.name, sender.document_key, self._phone_key(sender.phone_e164),
                       sender.organisation_key, cmd.sender_address.region_code, cmd.sender_address.detail),
            PartyFacts(recipient_name, None, self._phone_key(recipient_phone_e164),
                       None, cmd.recipient_address.region_code, cmd.recipient_address.detail),
            ((i.description, i.quantity, i.declared_value_fen, i.brand, i.category) for i in cmd.items),
            image_hashes=hashes, recent_recipients=sender.recent_recipients,
        )
        result = self._live.screen(c)
        decision = DECISIONS.get(result.outcome, Decision.ACCEPTED)
        records = tuple(hit_record(h, self._live.entry(h.entry_id) if h.entry_id else None) for h in result.hits)
        return ScreeningVerdict(decision, reasons_of(result), records)


class ScanImageScreener:
    """Screens goods photos taken after acceptance against the live list's image fingerprints."""

    def __init__(self, live: LiveBlocklist) -> None:
        self._live = live

    def screen_images(self, hashes: tuple[int, ...]) -> tuple[dict[str, Any], ...]:
        """Hit records of the fingerprint entries near these perceptual hashes (as at acceptance)."""
        result = self._live.screen(Consignment(Party(), Party(), (), image_hashes=hashes))
        return tuple(hit_record(h, self._live.entry(h.entry_id) if h.entry_id else None) for h in result.hits)
