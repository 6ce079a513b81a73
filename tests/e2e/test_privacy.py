"""Personal data at rest: no document or phone number appears in plaintext in any table."""

from __future__ import annotations

import asyncpg

from courier.v1 import acceptance_pb2
from gateway.core.model import Role
from gateway.security.sealing import Sealer
from tests.e2e.requests import ZHANG, accept_request, verify_request
from tests.e2e.test_acceptance import customer_request

T = Role.TERMINAL
LEGACY = "610104620927690"  # upgraded to 610104196209276908, whom the authority simulator knows as 刘洋


def _needles() -> list[str]:
    numbers = [ZHANG["number"], "13800138000", "13912345678"]
    # Also the forms a careless encoder would write: E.164, and the digits inside the number.
    return numbers + ["+8613800138000", "+8613912345678", ZHANG["number"][6:14] + ZHANG["number"][14:],
                      LEGACY, "610104196209276908"]


def _answer_text(message) -> str:  # type: ignore[no-untyped-def]
    """An answer as a terminal could read it: JSON with every field, and the raw bytes."""
    from google.protobuf.json_format import MessageToJson

    return MessageToJson(message, always_print_fields_with_no_presence=True, ensure_ascii=False) + \
        message.SerializeToString().decode("utf-8", "replace")


async def test_no_plaintext_numbers_in_any_table(gateway) -> None:  # type: ignore[no-untyped-def]
    from stdnum.cn import uscc

    from courier.v1 import custody_pb2
    from tests.e2e.requests import move

    verified = await gateway.acceptance.VerifySender(verify_request(), metadata=gateway.md(T))
    ref = verified.sender_ref
    answers = [verified, await gateway.acceptance.VerifySender(
        verify_request(document_number="110101199003071234"), metadata=gateway.md(T))]
    answers.append(await gateway.acceptance.VerifySender(verify_request(document_number=LEGACY, name="刘洋"),
                                                         metadata=gateway.md(T)))
    answer = await gateway.acceptance.AcceptParcel(accept_request(ref), metadata=gateway.md(T))
    assert answer.decision == acceptance_pb2.ACCEPT_DECISION_ACCEPTED
    answers += [answer, await gateway.custody.StoreParcel(move(answer.waybill_no), metadata=gateway.md(T)),
                await gateway.custody.GetParcel(custody_pb2.GetParcelRequest(waybill_no=answer.waybill_no),
                                                metadata=gateway.md(T))]
    assert answers[2].facts.upgraded_from  # the legacy path was really taken
    for given in answers:
        for needle in _needles():
            assert needle not in _answer_text(given), f"{needle} answered to a terminal in {type(given).__name__}"
    code = "91110108MA01AB2C3"
    code += uscc.calc_check_digit(code)
    await gateway.acceptance.RegisterContractCustomer(customer_request(credit_code=code),
                                                      metadata=gateway.md(Role.ADMIN))
    conn = await asyncpg.connect(gateway.settings.database_url)
    try:
        tables = [r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")]
        dump = []
        for table in tables:
            dump += [r[0] for r in await conn.fetch(f"SELECT t::text FROM {table} t")]
        # JSON columns on their own as well: a number written inside jsonb is still a number in plaintext.
        json_columns = await conn.fetch("SELECT table_name, column_name FROM information_schema.columns"
                                        " WHERE table_schema = 'public' AND data_type IN ('jsonb', 'json')")
        assert {("sender_verifications", "facts"), ("shipments", "items")} <= {tuple(r) for r in json_columns}
        for table, column in json_columns:
            dump += [r[0] for r in await conn.fetch(f"SELECT {column}::text FROM {table}")]
        text = "\n".join(dump)
        assert len(dump) > 10  # the tables were really read
        for needle in [*_needles(), "110101199003071234", code]:
            assert needle not in text, f"{needle} stored in plaintext"
        # ... yet the sealed values open to the originals with the gateway's keys.
        sealer = Sealer(gateway.settings.data_key, gateway.settings.index_key)
        enc = await conn.fetchval("SELECT document_enc FROM sender_verifications WHERE sender_ref = $1", ref)
        assert sealer.open(enc, context="document") == ZHANG["number"]
        bidx = await conn.fetchval("SELECT sender_document_bidx FROM shipments")
        assert bidx == sealer.blind_index("document", ZHANG["number"])
    finally:
        await conn.close()
