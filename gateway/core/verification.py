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
    mask_document,
    mask_name,
    verify_document,
)
from gateway.core.model import Actor, ReasonRecord

MAX_PHOTO_BYTES = 2 * 1024 * 1024
# Documents the national authority answers for. Every other type (passports, travel permits, the foreign
# permanent resident card, military and armed-police IDs) rests on the courier's own check of the person
# against the document at the counter (人证相符), which the terminal must then record.
AUTHORITY_DOCUMENTS = frozenset({DocumentType.RESIDENT_ID, DocumentType.RESIDENCE_PERMIT_HMT})


class InPersonCheck(enum.Enum):
    """The courier's own comparison of the person with the document (人证相符); names match the proto's."""

    MATCHED = "MATCHED"
    MISMATCHED = "MISMATCHED"


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
    in_person_check: InPersonCheck | None = None


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
    # The legacy 15-digit number a resident ID was upgraded from: sealed like the number itself.
    legacy_number: str = ""
    in_person_check: str = ""


@dataclass(frozen=True)
class Verification:
    """A verification as answered: the record, its id and the masked name."""

    id: int
    record: VerificationRecord
    masked_name: str = field(default="")



class VerificationRepository(Protocol):
    """Stores verifications (AcceptParcel finds them by sender_ref through its own repository)."""

    async def record(self, record: VerificationRecord, actor: Actor) -> int: ...


def validate_command(cmd: VerifySenderCommand) -> None:
    """Checks every field's limits; raises InvalidInput naming each bad field."""
    v = Violations()
    if cmd.document_type is None:
        v.add("document_type", "is required")
    v.text("document_number", cmd.document_number, max_len=40, required=True)
    v.text("name", cmd.name, max_len=64, required=True)
    v.text("phone", cmd.phone, max_len=32)
    v.text("mrz", cmd.mrz, max_len=100, multiline=True)
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
        # The legacy number is a document number too: only its masked form leaves the sealed column.
        "upgraded_from": mask_document(facts.upgraded_from) if facts.upgraded_from else None,
    }
    return {k: (v.isoformat() if isinstance(v, date) else str(v)) for k, v in raw.items() if v}


def _authority_reason(answer: AuthorityAnswer) -> ReasonRecord:
    sentences = {
        AuthorityResult.MISMATCH: "the identity authority says the name does not match the document",
        AuthorityResult.NOT_FOUND: "the identity authority has no record of this document number",
        AuthorityResult.PHOTO_MISMATCH: "the identity authority says the face does not match the document",
        AuthorityResult.REVOKED: "the identity authority says this document was reported lost or cancelled",
        AuthorityResult.UNAVAILABLE: ("the identity authority could not be reached: compare the person with the"
                                      " document and send in_person_check MATCHED"),
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
            verdict, answer, why = await self._check_person(cmd, doc, name.normalized)
            if why is not None:
                reasons.append(why)
        record = self._record(cmd, doc, name.normalized, phone, reasons, verdict, answer, now)
        verification_id = await self._repo.record(record, actor)
        return Verification(verification_id, record, mask_name(name.normalized or cmd.name))

    async def _check_person(
        self, cmd: VerifySenderCommand, doc: DocumentCheck, name: str,
    ) -> tuple[Verdict, AuthorityAnswer | None, ReasonRecord | None]:
        """The verdict on the person: the authority where it covers the document, else the courier's check."""
        if cmd.in_person_check is InPersonCheck.MISMATCHED:
            return Verdict.REJECTED, None, ReasonRecord(
                "IN_PERSON_MISMATCH", "the courier found that the person does not match the document",
                "in_person_check")
        answer = None
        if self._authority is not None and doc.document_type in AUTHORITY_DOCUMENTS:
            answer = await self._authority.check(doc.document_type.value, doc.number, name, cmd.face_photo or None)
            if answer.result is AuthorityResult.MATCH:
                return Verdict.VERIFIED, answer, None
            if answer.result is not AuthorityResult.UNAVAILABLE:
                return Verdict.REJECTED, answer, _authority_reason(answer)
        # No authority ruled (none covers this type, none is configured, or it was unreachable): the
        # courier's own check at the counter decides, and without it nobody has checked the person.
        if cmd.in_person_check is InPersonCheck.MATCHED:
            return Verdict.VERIFIED, answer, None
        if answer is not None:
            return Verdict.NEEDS_REVIEW, answer, _authority_reason(answer)
        return Verdict.NEEDS_REVIEW, None, ReasonRecord(
            "IN_PERSON_CHECK_REQUIRED",
            f"no identity authority checks {doc.document_type.value} documents here: compare the person with "
            "the document and send in_person_check MATCHED (or MISMATCHED)", "in_person_check")

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
            legacy_number=doc.facts.upgraded_from or "",
            in_person_check=cmd.in_person_check.value if cmd.in_person_check else "",
        )
