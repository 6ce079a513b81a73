"""Rule hints that come from behaviour rather than from a listed entry.

A sender shipping to many distinct recipients in a short window is the typical shape of a
counterfeit shop's dispatch; on its own that is no proof, so the hint asks only for review.
"""

from __future__ import annotations

from gateway.core.screening.model import Consignment, Hit, Outcome


def sender_pattern_hit(consignment: Consignment, min_recipients: int) -> Hit | None:
    """A REVIEW hint when the sender's recent distinct recipients reach ``min_recipients``."""
    count = consignment.sender_recent_recipients
    if count is None or count < min_recipients:
        return None
    return Hit(
        entry_id=None,
        kind=None,
        action=Outcome.REVIEW,
        field="sender_recent_recipients",
        matched=str(count),
        score=1.0,
        threshold=1.0,
        explanation=(f"sender shipped to {count} distinct recipients in the recent window "
                     f"(review from {min_recipients})"),
    )
