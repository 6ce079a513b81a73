-- Investigators: the audit of every call, the evidence log (RFC 6962 Merkle tree) and what search needs.

-- The transaction that inserted a row, on every table whose rows are evidence (and on leads): a row is taken
-- into the log, or a lead into the watched feed, only once its ins_xid is below the oldest transaction still
-- running, so the order of both is fixed and nothing that commits late is skipped.
ALTER TABLE shipment_events ADD COLUMN ins_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE scan_events ADD COLUMN ins_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE sender_verifications ADD COLUMN ins_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE leads ADD COLUMN ins_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX shipment_events_ins ON shipment_events (ins_xid, id);
CREATE INDEX scan_events_ins ON scan_events (ins_xid, event_id);
CREATE INDEX sender_verifications_ins ON sender_verifications (ins_xid, id);
CREATE INDEX leads_feed ON leads (ins_xid, id);
-- A committed lead wakes the watchers (delivered at commit, not at all on rollback).
CREATE FUNCTION notify_leads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('leads', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER leads_notify AFTER INSERT ON leads FOR EACH STATEMENT EXECUTE FUNCTION notify_leads();

-- Who looked at what, for which case: one row per Investigation call, refused ones included.
CREATE TABLE audit_records (
    id           bigserial PRIMARY KEY,
    principal_id bigint REFERENCES principals (id),
    principal    text NOT NULL,
    method       text NOT NULL,
    case_no      text NOT NULL,
    filters      jsonb NOT NULL DEFAULT '{}',
    returned     bigint NOT NULL DEFAULT 0,
    status       text NOT NULL,
    -- The shipments the call returned: what an export of the case gathers.
    shipment_ids uuid[] NOT NULL DEFAULT '{}',
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    ins_xid      xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX audit_records_case ON audit_records (case_no, id DESC);
CREATE INDEX audit_records_at ON audit_records (at DESC, id DESC);
CREATE INDEX audit_records_ins ON audit_records (ins_xid, id);
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- The evidence log. A leaf is one record's canonical bytes (RFC 8785 JSON), hashed as SHA-256(0x00 || bytes);
-- source names the table ('E' shipment_events, 'S' scan_events, 'V' sender_verifications, 'A' audit_records)
-- and source_key the row (its id, or a scan's event_id).
CREATE TABLE evidence_leaves (
    leaf_index  bigint PRIMARY KEY CHECK (leaf_index >= 0),
    source      char(1) NOT NULL CHECK (source IN ('E', 'S', 'V', 'A')),
    source_key  text NOT NULL,
    leaf_hash   bytea NOT NULL CHECK (length(leaf_hash) = 32),
    appended_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_key)
);
-- Hashes of complete subtrees at levels 8, 16, 24, ... (level L, index i covers leaves i*2^L .. (i+1)*2^L - 1);
-- with the leaf hashes they give any node of the tree from at most 256 stored hashes a level group.
CREATE TABLE evidence_nodes (
    level smallint NOT NULL CHECK (level > 0 AND level % 8 = 0),
    idx   bigint NOT NULL CHECK (idx >= 0),
    hash  bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);
-- How far each source has been taken into the log: the (ins_xid, key) of its last row appended.
CREATE TABLE evidence_cursors (
    source     char(1) PRIMARY KEY,
    last_xid   xid8 NOT NULL DEFAULT '0'::xid8,
    last_key   text NOT NULL DEFAULT ''
);
INSERT INTO evidence_cursors (source) VALUES ('E'), ('S'), ('V'), ('A');
-- Signed tree heads, in the C2SP signed-note checkpoint form.
CREATE TABLE evidence_heads (
    tree_size bigint NOT NULL CHECK (tree_size >= 0),
    root_hash bytea NOT NULL CHECK (length(root_hash) = 32),
    signed_at timestamptz NOT NULL,
    key_id    text NOT NULL,
    note      text NOT NULL,
    PRIMARY KEY (tree_size, key_id)
);
CREATE TRIGGER evidence_leaves_append_only BEFORE UPDATE OR DELETE ON evidence_leaves
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER evidence_nodes_append_only BEFORE UPDATE OR DELETE ON evidence_nodes
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER evidence_heads_append_only BEFORE UPDATE OR DELETE ON evidence_heads
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Search: the keys of a name (its tone-free pinyin on every reading, folded as screening folds it; Latin names
-- run together in written order), for sender and recipient, and keyset-ordered indexes for the exact keys.
ALTER TABLE shipments ADD COLUMN sender_name_keys text[] NOT NULL DEFAULT '{}';
ALTER TABLE shipments ADD COLUMN recipient_name_keys text[] NOT NULL DEFAULT '{}';
CREATE INDEX shipments_sender_name ON shipments USING gin (sender_name_keys);
CREATE INDEX shipments_recipient_name ON shipments USING gin (recipient_name_keys);
DROP INDEX shipments_sender_document_bidx;
DROP INDEX shipments_sender_phone_bidx;
DROP INDEX shipments_recipient_phone_bidx;
CREATE INDEX shipments_sender_document ON shipments (sender_document_bidx, created_at DESC, id DESC);
CREATE INDEX shipments_sender_phone ON shipments (sender_phone_bidx, created_at DESC, id DESC);
CREATE INDEX shipments_recipient_phone ON shipments (recipient_phone_bidx, created_at DESC, id DESC);
DROP INDEX shipments_created_at;
CREATE INDEX shipments_newest ON shipments (created_at DESC, id DESC);
CREATE INDEX leads_shipment ON leads (shipment_id);
