"""VerifySender: read the document, check the person where an authority is configured, record it."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from gateway.core.authority import AuthorityAnswer, AuthorityResult, IdentityAuthority
from gateway.core.errors import Violations
from gateway.core.identity import (
    DocumentCheck,
    DocumentFacts,
    DocumentType,
    check_name,
    check_phone,
    mask_name,
    verify_document,
)
from gateway.core.model import Actor, ReasonRecord

MAX_PHOTO_BYTES = 2 * 1024 * 1024
# Documents the national authority answers for; others rest on the courier's own check at the counter.
AUTHORITY_DOCUMENTS = frozenset({DocumentType.RESIDENT_ID, DocumentType.RESIDENCE_PERMIT_HMT})


class Verdict(enum.Enum):
    """The answer on a sender; names match the proto's VERDICT_* values."""

    VERIFIED = "VERIFIED"
    REJECTED = "REJECTED"
    NEEDS_REVIEW = "NEEDS_REVIEW"


@dataclass(frozen=True)
class VerifySenderCommand:
    """A sender's identity as shown at the counter."""

    document_type: DocumentType | None
    document_number: str
    name: str
    phone: str = ""
    mrz: str = ""
    face_photo: bytes = b""
    terminal_id: str = ""


@dataclass(frozen=True)
class VerificationRecord:
    """One verification to store; the repository seals document_number and phone_e164."""

    verdict: Verdict
    document_type: DocumentType
    document_number: str
    document_masked: str
    name: str
    phone_e164: str
    phone_masked: str
    reasons: tuple[ReasonRecord, ...]
    facts: dict[str, str]
    authority_result: str
    authority_ref: str
    terminal_id: str
    sender_ref: str | None
    expires_at: datetime | None


@dataclass(frozen=True)
class Verification:
    """A verification as answered: the record, its id and the masked name."""

    id: int
    record: VerificationRecord
    masked_name: str = field(default="")


@dataclass(frozen=True)
class StoredSender:
    """What AcceptParcel needs of an earlier verification."""

    id: int
    verdict: Verdict
    name: str
    document_key: bytes
    phone_e164: str
    expires_at: datetime | None


class VerificationRepository(Protocol):
    """Stores verifications and finds them by sender_ref."""

    async def record(self, record: VerificationRecord, actor: Actor) -> int: ...

    async def find_sender(self, sender_ref: str) -> StoredSender | None: ...


def validate_command(cmd: VerifySenderCommand) -> None:
    """Checks every field's limits; raises InvalidInput naming each bad field."""
    v = Violations()
    if cmd.document_type is None:
        v.add("document_type", "is required")
    v.text("document_number", cmd.document_number, max_len=40, required=True)
    v.text("name", cmd.name, max_len=64, required=True)
    v.text("phone", cmd.phone, max_len=32)
    v.text("mrz", cmd.mrz, max_len=100)
    v.text("terminal_id", cmd.terminal_id, max_len=64, required=True)
    if len(cmd.face_photo) > MAX_PHOTO_BYTES:
        v.add("face_photo", f"must be at most {MAX_PHOTO_BYTES} bytes")
    v.raise_if_any()


def facts_dict(facts: DocumentFacts) -> dict[str, str]:
    """The facts read from a number, as strings, leaving out what the number does not carry."""
    raw: dict[str, Any] = {
        "birth_date": facts.birth_date, "sex": facts.sex.value if facts.sex else None,
        "region_code": facts.region_code, "region_name": facts.region_name,
        "nationality": facts.nationality, "expiry_date": facts.expiry_date,
        "upgraded_from": facts.upgraded_from,
    }
    return {k: (v.isoformat() if isinstance(v, date) else str(v)) for k, v in raw.items() if v}


def _authority_reason(answer: AuthorityAnswer) -> ReasonRecord:
    sentences = {
        AuthorityResult.MISMATCH: "the identity authority says the name does not match the document",
        AuthorityResult.NOT_FOUND: "the identity authority has no record of this document number",
        AuthorityResult.PHOTO_MISMATCH: "the identity authority says the face does not match the document",
        AuthorityResult.REVOKED: "the identity authority says this document was reported lost or cancelled",
        AuthorityResult.UNAVAILABLE: "the identity authority could not be reached; check the person by hand",
    }
    field_name = "face_photo" if answer.result is AuthorityResult.PHOTO_MISMATCH else "document_number"
    return ReasonRecord(f"AUTHORITY_{answer.result.value}", sentences[answer.result], field_name)


class VerificationService:
    """The VerifySender use case."""

    def __init__(
        self, repo: VerificationRepository, authority: IdentityAuthority | None,
        *, clock: Callable[[], datetime], ref_ttl: timedelta,
    ) -> None:
        self._repo = repo
        self._authority = authority
        self._clock = clock
        self._ref_ttl = ref_ttl

    async def verify_sender(self, cmd: VerifySenderCommand, actor: Actor) -> Verification:
        """Checks the document, name and phone (and the person, where possible) and records the verdict."""
        validate_command(cmd)
        assert cmd.document_type is not None
        now = self._clock()
        doc = verify_document(cmd.document_type, cmd.document_number, today=now.date(), mrz=cmd.mrz or None)
        name = check_name(cmd.name)
        phone = check_phone(cmd.phone) if cmd.phone else None
        reasons = [ReasonRecord(r.code, r.message, r.field) for r in (*doc.reasons, *name.reasons)]
        if phone is not None:
            reasons += [ReasonRecord(r.code, r.message, "phone") for r in phone.reasons]
        verdict, answer = Verdict.REJECTED, None
        if not reasons:
            verdict, answer = await self._check_person(doc, name.normalized, cmd.face_photo)
            if answer is not None and answer.result is not AuthorityResult.MATCH:
                reasons.append(_authority_reason(answer))
        record = self._record(cmd, doc, name.normalized, phone, reasons, verdict, answer, now)
        verification_id = await self._repo.record(record, actor)
        return Verification(verification_id, record, mask_name(name.normalized or cmd.name))

    async def _check_person(
        self, doc: DocumentCheck, name: str, photo: bytes,
    ) -> tuple[Verdict, AuthorityAnswer | None]:
        if self._authority is None or doc.document_type not in AUTHORITY_DOCUMENTS:
            return Verdict.VERIFIED, None
        answer = await self._authority.check(doc.document_type.value, doc.number, name, photo or None)
        if answer.result is AuthorityResult.MATCH:
            return Verdict.VERIFIED, answer
        if answer.result is AuthorityResult.UNAVAILABLE:
            return Verdict.NEEDS_REVIEW, answer
        return Verdict.REJECTED, answer

    def _record(
        self, cmd: VerifySenderCommand, doc: DocumentCheck, name: str, phone: Any,
        reasons: list[ReasonRecord], verdict: Verdict, answer: AuthorityAnswer | None, now: datetime,
    ) -> VerificationRecord:
        verified = verdict is Verdict.VERIFIED
        return VerificationRecord(
            verdict=verdict, document_type=doc.document_type, document_number=doc.number,
            document_masked=doc.masked, name=name or cmd.name.strip(),
            phone_e164=phone.e164 if phone is not None and phone.valid else "",
            phone_masked=phone.masked if phone is not None else "",
            reasons=tuple(reasons), facts=facts_dict(doc.facts),
            authority_result=answer.result.value if answer else "NOT_CHECKED",
            authority_ref=answer.reference if answer else "", terminal_id=cmd.terminal_id,
            sender_ref=f"sr_{secrets.token_urlsafe(18)}" if verified else None,
            expires_at=now + self._ref_ttl if verified else None,
        )
