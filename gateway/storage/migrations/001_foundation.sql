-- Principals, tokens, sender verifications, contract customers, shipments and their append-only events.
-- Document and phone numbers are never stored in plaintext: *_enc is AES-GCM ciphertext, *_bidx an HMAC
-- blind index for exact look-ups.

CREATE TABLE principals (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    roles       text[] NOT NULL CHECK (cardinality(roles) > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    principal_id bigint NOT NULL REFERENCES principals (id),
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

CREATE TABLE sender_verifications (
    id               bigserial PRIMARY KEY,
    sender_ref       text UNIQUE,
    verdict          text NOT NULL CHECK (verdict IN ('VERIFIED', 'REJECTED', 'NEEDS_REVIEW')),
    document_type    text NOT NULL,
    document_enc     bytea,
    document_bidx    bytea,
    document_masked  text NOT NULL,
    name             text NOT NULL,
    phone_enc        bytea,
    phone_bidx       bytea,
    phone_masked     text NOT NULL DEFAULT '',
    reasons          jsonb NOT NULL DEFAULT '[]',
    facts            jsonb NOT NULL DEFAULT '{}',
    authority_result text NOT NULL,
    authority_ref    text NOT NULL DEFAULT '',
    principal_id     bigint NOT NULL REFERENCES principals (id),
    terminal_id      text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz
);
CREATE INDEX sender_verifications_document_bidx ON sender_verifications (document_bidx);

CREATE TABLE contract_customers (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                text NOT NULL,
    credit_code_enc     bytea NOT NULL,
    credit_code_bidx    bytea NOT NULL UNIQUE,
    credit_code_masked  text NOT NULL,
    responsible_type    text NOT NULL,
    responsible_enc     bytea NOT NULL,
    responsible_bidx    bytea NOT NULL,
    responsible_masked  text NOT NULL,
    responsible_name    text NOT NULL,
    phone_enc           bytea,
    phone_bidx          bytea,
    region_code         text NOT NULL,
    address             text NOT NULL,
    agreement_no        text NOT NULL,
    principal_id        bigint NOT NULL REFERENCES principals (id),
    registered_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shipments (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    waybill_no             text NOT NULL UNIQUE,
    idempotency_key        text NOT NULL UNIQUE,
    request_digest         bytea NOT NULL,
    decision               text NOT NULL CHECK (decision IN ('ACCEPTED', 'HELD', 'REFUSED')),
    state                  text NOT NULL CHECK (state IN ('ACCEPTED', 'HELD', 'REFUSED', 'STORED', 'DISPATCHED')),
    hold_reason            text NOT NULL DEFAULT '',
    reasons                jsonb NOT NULL DEFAULT '[]',
    hits                   jsonb NOT NULL DEFAULT '[]',
    sender_verification_id bigint REFERENCES sender_verifications (id),
    contract_customer_id   uuid REFERENCES contract_customers (id),
    sender_name            text NOT NULL,
    sender_document_bidx   bytea,
    sender_phone_enc       bytea,
    sender_phone_bidx      bytea,
    sender_phone_masked    text NOT NULL DEFAULT '',
    sender_region_code     text NOT NULL,
    sender_address         text NOT NULL,
    recipient_name         text NOT NULL,
    recipient_phone_enc    bytea NOT NULL,
    recipient_phone_bidx   bytea NOT NULL,
    recipient_phone_masked text NOT NULL,
    recipient_region_code  text NOT NULL,
    recipient_address      text NOT NULL,
    items                  jsonb NOT NULL,
    inspection             jsonb NOT NULL,
    terminal_id            text NOT NULL,
    principal_id           bigint NOT NULL REFERENCES principals (id),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((sender_verification_id IS NULL) <> (contract_customer_id IS NULL))
);
CREATE INDEX shipments_sender_document_bidx ON shipments (sender_document_bidx);
CREATE INDEX shipments_sender_phone_bidx ON shipments (sender_phone_bidx);
CREATE INDEX shipments_recipient_phone_bidx ON shipments (recipient_phone_bidx);
CREATE INDEX shipments_created_at ON shipments (created_at);

CREATE TABLE inspection_photos (
    shipment_id uuid NOT NULL REFERENCES shipments (id),
    idx         smallint NOT NULL,
    sha256      bytea NOT NULL,
    content     bytea NOT NULL,
    PRIMARY KEY (shipment_id, idx)
);

CREATE TABLE shipment_events (
    id           bigserial PRIMARY KEY,
    shipment_id  uuid NOT NULL REFERENCES shipments (id),
    seq          integer NOT NULL,
    kind         text NOT NULL,
    from_state   text,
    to_state     text NOT NULL,
    principal_id bigint NOT NULL REFERENCES principals (id),
    principal    text NOT NULL,
    terminal_id  text NOT NULL DEFAULT '',
    device_id    text NOT NULL DEFAULT '',
    location     text NOT NULL DEFAULT '',
    note         text NOT NULL DEFAULT '',
    details      jsonb NOT NULL DEFAULT '{}',
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (shipment_id, seq)
);

-- The history is append-only: no role, the gateway's included, may change or remove an event.
CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER shipment_events_append_only BEFORE UPDATE OR DELETE ON shipment_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER shipment_events_no_truncate BEFORE TRUNCATE ON shipment_events
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();
CREATE TRIGGER sender_verifications_append_only BEFORE DELETE ON sender_verifications
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
