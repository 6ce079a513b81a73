"""Contract customers (协议客户): organisations registered once, whose parcels need no per-parcel document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.core.errors import Violations
from gateway.core.identity import (
    DocumentType,
    check_name,
    check_organisation_code,
    check_phone,
    verify_document,
)
from gateway.core.model import Actor
from gateway.core.parcels import AddressIn, check_address


@dataclass(frozen=True)
class RegisterCustomerCommand:
    """An organisation and its responsible person's document."""

    name: str
    credit_code: str
    person_document_type: DocumentType | None
    person_document_number: str
    person_name: str
    person_phone: str
    region_code: str
    address: str
    agreement_no: str


@dataclass(frozen=True)
class CustomerRecord:
    """A checked registration to store; the repository seals the numbers."""

    name: str
    credit_code: str
    credit_code_masked: str
    person_document_type: DocumentType
    person_document_number: str
    person_document_masked: str
    person_name: str
    person_phone_e164: str
    region_code: str
    address: str
    agreement_no: str


@dataclass(frozen=True)
class RegisteredCustomer:
    """A registration as answered."""

    customer_id: str
    record: CustomerRecord
    registered_at: datetime


class CustomerRepository(Protocol):
    """Stores contract customers; raises AlreadyExists for a credit code already registered."""

    async def register(self, record: CustomerRecord, actor: Actor) -> tuple[str, datetime]: ...


def check_registration(cmd: RegisterCustomerCommand, *, today: datetime) -> CustomerRecord:
    """Checks the organisation's code and the responsible person's document; raises InvalidInput."""
    v = Violations()
    v.text("name", cmd.name, max_len=128, required=True)
    org = check_organisation_code(cmd.credit_code)
    for reason in org.reasons:
        v.add("credit_code", reason.message)
    if cmd.person_document_type is None:
        v.add("responsible_person.document_type", "is required")
        doc = None
    else:
        v.text("responsible_person.document_number", cmd.person_document_number, max_len=40, required=True)
        doc = verify_document(cmd.person_document_type, cmd.person_document_number, today=today.date())
        for reason in doc.reasons:
            v.add("responsible_person.document_number", reason.message)
    for reason in check_name(cmd.person_name).reasons:
        v.add("responsible_person.name", reason.message)
    v.text("credit_code", cmd.credit_code, max_len=40, required=True)
    phone = check_phone(cmd.person_phone) if cmd.person_phone else None
    if phone is not None and not phone.valid:
        v.add("responsible_person.phone", "is not a valid phone number")
    check_address(v, "address", AddressIn(cmd.region_code, cmd.address))
    v.text("agreement_no", cmd.agreement_no, max_len=64, required=True)
    v.raise_if_any()
    assert doc is not None
    return CustomerRecord(
        name=cmd.name.strip(), credit_code=org.code, credit_code_masked=org.masked,
        person_document_type=doc.document_type, person_document_number=doc.number,
        person_document_masked=doc.masked, person_name=check_name(cmd.person_name).normalized,
        person_phone_e164=phone.e164 if phone else "", region_code=cmd.region_code,
        address=cmd.address.strip(), agreement_no=cmd.agreement_no.strip(),
    )


class CustomerService:
    """The RegisterContractCustomer use case."""

    def __init__(self, repo: CustomerRepository, *, clock: Callable[[], datetime]) -> None:
        self._repo = repo
        self._clock = clock

    async def register(self, cmd: RegisterCustomerCommand, actor: Actor) -> RegisteredCustomer:
        """Checks and stores a contract customer."""
        record = check_registration(cmd, today=self._clock())
        customer_id, at = await self._repo.register(record, actor)
        return RegisteredCustomer(customer_id, record, at)
