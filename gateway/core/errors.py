"""The core's exceptions. They carry no transport codes: the gateway maps them in one table."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Characters no text field may hold: C0 and C1 controls (NUL among them, which PostgreSQL cannot store),
# DEL, the Unicode line and paragraph separators, and unpaired surrogates. Multi-line fields (notes,
# reasons, an MRZ) may also hold tab, line feed and carriage return.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_FORBIDDEN_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character a text field may not hold, or None."""
    found = (_FORBIDDEN_MULTILINE if multiline else _FORBIDDEN).search(value)
    return found.group() if found else None


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, named by its path (e.g. "recipient.address.region_code")."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error the core raises on purpose."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """The request breaks a field's limits; nothing was written."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        names = ", ".join(v.field for v in violations)
        super().__init__(f"invalid fields: {names}")
        self.violations = tuple(violations)


class NotFound(DomainError):
    """The named thing does not exist."""


class AlreadyExists(DomainError):
    """Another request already holds this key or waybill number."""


class WrongState(DomainError):
    """The parcel's state does not allow this move (held, refused, not yet accepted, already dispatched)."""


class NotVerified(DomainError):
    """The sender reference is unknown, expired, or was not VERIFIED."""


class StorageUnavailable(DomainError):
    """The database cannot be reached right now; the call may be retried."""


class Unauthenticated(DomainError):
    """No credentials, or credentials that are not valid."""


class PermissionDenied(DomainError):
    """The principal's roles do not allow this call."""


class Violations:
    """Collects field violations while checking a request, then raises them all at once."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        """Records one bad field."""
        self.items.append(FieldViolation(field, description))

    def text(self, field: str, value: str, *, min_len: int = 0, max_len: int, required: bool = False,
             multiline: bool = False) -> None:
        """Checks a text field's length (in characters), presence, and that it holds no control characters."""
        bad = control_character(value, multiline=multiline)
        if bad is not None:
            kind = "an unpaired surrogate" if "\ud800" <= bad <= "\udfff" else "a control character"
            allowed = " (tab and line breaks are allowed here)" if multiline else ""
            self.add(field, f"contains {kind} (U+{ord(bad):04X}), which text may not hold{allowed}")
        elif required and not value.strip():
            self.add(field, "is required")
        elif len(value) < min_len:
            self.add(field, f"must be at least {min_len} characters")
        elif len(value) > max_len:
            self.add(field, f"must be at most {max_len} characters, got {len(value)}")

    def number(self, field: str, value: int, *, lo: int, hi: int) -> None:
        """Checks a number's range."""
        if not lo <= value <= hi:
            self.add(field, f"must be between {lo} and {hi}, got {value}")

    def raise_if_any(self) -> None:
        """Raises InvalidInput with everything collected, if anything was."""
        if self.items:
            raise InvalidInput(self.items)
