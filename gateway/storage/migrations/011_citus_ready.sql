-- The schema ready for Citus (distributed PostgreSQL), as gateway/storage/layout.py declares it: every distributed
-- table carries its distribution column in its primary key and in every unique constraint, and foreign keys run
-- only to reference tables or between co-located tables on the distribution column. On one PostgreSQL nothing
-- changes for the application but how the two global keys of a parcel are kept unique.

-- A waybill number and an idempotency key are unique over all parcels, but shipments is distributed by its id: a
-- unique constraint on another column cannot hold across shards. Each global key gets a small table distributed by
-- that key, written in the same transaction as the parcel (ShipmentRepository); a parcel is written only when both
-- of its keys were free.
CREATE TABLE shipment_waybills (
    waybill_no  text PRIMARY KEY,
    shipment_id uuid NOT NULL
);
CREATE TABLE shipment_idempotency_keys (
    idempotency_key text PRIMARY KEY,
    shipment_id     uuid NOT NULL
);
INSERT INTO shipment_waybills (waybill_no, shipment_id) SELECT waybill_no, id FROM shipments;
INSERT INTO shipment_idempotency_keys (idempotency_key, shipment_id) SELECT idempotency_key, id FROM shipments;
ALTER TABLE shipments DROP CONSTRAINT shipments_waybill_no_key;
ALTER TABLE shipments DROP CONSTRAINT shipments_idempotency_key_key;
-- Custody, inspection and investigation find a parcel by its waybill: a plain index now does what the unique one did.
CREATE INDEX shipments_waybill ON shipments (waybill_no);

-- Leads are co-located with their parcel: the key carries shipment_id (id alone stays unique by its sequence).
ALTER TABLE leads DROP CONSTRAINT leads_pkey;
ALTER TABLE leads ADD PRIMARY KEY (shipment_id, id);

-- A sender_ref is 144 random bits (core/verification.py): unique by construction, so a plain index finds it; a
-- unique constraint on it could not hold on a table distributed by id.
ALTER TABLE sender_verifications DROP CONSTRAINT sender_verifications_sender_ref_key;
CREATE INDEX sender_verifications_sender_ref ON sender_verifications (sender_ref);

-- Foreign keys between distributed tables that are not co-located cannot exist on Citus. The application writes
-- both ends itself: a parcel's verification id comes from the sender_ref it was just given (AcceptParcel), a
-- scan's shipment id from the parcel row the same statement read.
ALTER TABLE shipments DROP CONSTRAINT shipments_sender_verification_id_fkey;
ALTER TABLE scan_events DROP CONSTRAINT scan_events_shipment_id_fkey;

-- shipment_events and audit_records get their new keys in 012, which rebuilds them partitioned by time.
