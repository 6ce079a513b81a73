-- The counterfeit blocklist, its version counter (for LISTEN/NOTIFY), leads, and what re-screening needs.

CREATE TABLE blocklist_entries (
    id                 bigserial PRIMARY KEY,
    kind               text NOT NULL,
    -- What reviewers see: for document, phone and organisation numbers a masked form only.
    display_value      text NOT NULL,
    -- What the in-memory index matches: the blind index (hex) for numbers, else the value as given.
    match_value        text NOT NULL,
    -- Numbers only: the sealed number, so that an investigator on a case can read it.
    value_enc          bytea,
    -- For duplicate detection: the blind index for numbers, else the normalised value.
    dedup_key          text NOT NULL,
    action             text NOT NULL CHECK (action IN ('HOLD', 'REFUSE')),
    aliases            text[] NOT NULL DEFAULT '{}',
    price_floor_fen    bigint,
    source_agency      text NOT NULL,
    source_case_no     text NOT NULL DEFAULT '',
    source_legal_basis text NOT NULL DEFAULT '',
    added_by           bigint NOT NULL REFERENCES principals (id),
    added_by_name      text NOT NULL,
    added_at           timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz,
    retired_at         timestamptz,
    retired_by         text,
    retire_reason      text,
    -- The list version of the last change to this row; a process catches up with WHERE version > $seen.
    version            bigint NOT NULL
);
CREATE UNIQUE INDEX blocklist_entries_active_key ON blocklist_entries (kind, dedup_key) WHERE retired_at IS NULL;
CREATE INDEX blocklist_entries_version ON blocklist_entries (version);
CREATE INDEX blocklist_entries_listing ON blocklist_entries (id DESC);

-- One row: the list's version. Every change bumps it in the change's own transaction and notifies
-- channel 'blocklist' with the new version, delivered at commit.
CREATE TABLE blocklist_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL
);
INSERT INTO blocklist_version (version) VALUES (0);

-- Entries are retired, never deleted.
CREATE TRIGGER blocklist_entries_no_delete BEFORE DELETE ON blocklist_entries
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Holds and refusals as they happen: the investigators' clue feed.
CREATE TABLE leads (
    id          bigserial PRIMARY KEY,
    shipment_id uuid NOT NULL REFERENCES shipments (id),
    waybill_no  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('HELD', 'REFUSED')),
    origin      text NOT NULL CHECK (origin IN ('ACCEPTANCE', 'RESCREEN', 'REVIEW', 'SCAN')),
    reason      text NOT NULL DEFAULT '',
    hits        jsonb NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX leads_created_at ON leads (created_at);

-- Perceptual hashes of the inspection photos (64-bit, stored as signed bigint), so that a new image
-- fingerprint can be screened against parcels already accepted.
ALTER TABLE shipments ADD COLUMN image_hashes bigint[] NOT NULL DEFAULT '{}';
-- Re-screening reads parcels not yet dispatched; the sender pattern counts recent recipients per sender.
CREATE INDEX shipments_undispatched ON shipments (created_at) WHERE state IN ('ACCEPTED', 'STORED');
CREATE INDEX shipments_sender_recent ON shipments (sender_document_bidx, created_at);
