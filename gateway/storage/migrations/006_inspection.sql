-- Inspections after acceptance: every scan an adapter or terminal sends, once per event_id, and the blob
-- store for images (acceptance photos included).

-- The weight recorded at acceptance, in grams, for a scale that later measures something else.
ALTER TABLE shipments ADD COLUMN weight_g bigint CHECK (weight_g IS NULL OR weight_g > 0);

-- Acceptance photos now live in the blob store, named by sha256; rows written before keep their bytes here.
ALTER TABLE inspection_photos ALTER COLUMN content DROP NOT NULL;

-- One row per scan event, known parcel or not: the event_id makes a resend (after a reconnect, a restart of
-- the adapter or of the gateway) answer with the first ack and never record twice. ack holds what is
-- answered again: decision, reasons, hits, state, the history event's seq, the images' hashes.
CREATE TABLE scan_events (
    event_id     text PRIMARY KEY CHECK (length(event_id) BETWEEN 8 AND 64),
    device_id    text NOT NULL,
    terminal_id  text NOT NULL DEFAULT '',
    kind         text NOT NULL,
    waybill_no   text NOT NULL DEFAULT '',
    shipment_id  uuid REFERENCES shipments (id),
    event_seq    integer,
    decision     text NOT NULL CHECK (decision IN ('PASS', 'DIVERT_TO_HOLD', 'REJECT')),
    ack          jsonb NOT NULL,
    principal_id bigint NOT NULL REFERENCES principals (id),
    device_time  timestamptz,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scan_events_shipment ON scan_events (shipment_id) WHERE shipment_id IS NOT NULL;
CREATE INDEX scan_events_unresolved ON scan_events (recorded_at) WHERE shipment_id IS NULL;
CREATE TRIGGER scan_events_append_only BEFORE UPDATE OR DELETE ON scan_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER scan_events_no_truncate BEFORE TRUNCATE ON scan_events
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();
