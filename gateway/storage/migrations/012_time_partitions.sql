-- The events partitioned by month (native declarative partitioning), so that records older than the retention
-- (RETENTION_MONTHS, at least 36: the express licensing rules keep records three years) can be archived and their
-- partitions dropped whole, while the newest months stay small. `python -m gateway partitions` keeps the months
-- ahead created (gateways also do at start and daily), lists them, archives and verifies archives.

-- One month's partition of a table partitioned by range on a timestamptz, named <table>_pYYYYMM, bounds in UTC.
-- Every partition refuses TRUNCATE as its parent does (a row trigger on the parent is cloned to its partitions,
-- a statement trigger is not). Returns whether it created the partition.
CREATE FUNCTION courier_ensure_month(parent text, month date) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    part text := parent || '_p' || to_char(first, 'YYYYMM');
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', part, parent,
                   first::timestamp AT TIME ZONE 'UTC', (first + interval '1 month')::timestamp AT TIME ZONE 'UTC');
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION forbid_change()',
                   part || '_no_truncate', part);
    RETURN true;
END;
$$;

-- shipment_events by the parcel's acceptance time (accepted_at, copied from shipments.created_at by every writer):
-- a parcel's whole history is in one partition, and the unique (shipment_id, seq, accepted_at) is exactly as strict
-- as the old (shipment_id, seq), since accepted_at is the same for every event of one parcel. The key carries
-- shipment_id first, the distribution column on Citus.
ALTER TABLE shipment_events RENAME TO shipment_events_old;
ALTER TABLE shipment_events_old RENAME CONSTRAINT shipment_events_pkey TO shipment_events_old_pkey;
ALTER TABLE shipment_events_old RENAME CONSTRAINT shipment_events_shipment_id_seq_key TO shipment_events_old_seq_key;
ALTER TABLE shipment_events_old RENAME CONSTRAINT shipment_events_shipment_id_fkey TO shipment_events_old_shipment_fkey;
ALTER TABLE shipment_events_old RENAME CONSTRAINT shipment_events_principal_id_fkey TO shipment_events_old_principal_fkey;
ALTER INDEX shipment_events_ins RENAME TO shipment_events_old_ins;
CREATE TABLE shipment_events (
    id           bigint NOT NULL DEFAULT nextval('shipment_events_id_seq'),
    shipment_id  uuid NOT NULL REFERENCES shipments (id),
    accepted_at  timestamptz NOT NULL,
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
    ins_xid      xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (shipment_id, id, accepted_at),
    UNIQUE (shipment_id, seq, accepted_at)
) PARTITION BY RANGE (accepted_at);
ALTER SEQUENCE shipment_events_id_seq OWNED BY shipment_events.id;
-- The evidence appender reads in (ins_xid, id) order; a leaf's record is found by its id.
CREATE INDEX shipment_events_ins ON shipment_events (ins_xid, id);
CREATE INDEX shipment_events_id ON shipment_events (id);
CREATE TRIGGER shipment_events_append_only BEFORE UPDATE OR DELETE ON shipment_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER shipment_events_no_truncate BEFORE TRUNCATE ON shipment_events
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- audit_records by the call's time. (id, at) is as strict as id: ids come from one sequence.
ALTER TABLE audit_records RENAME TO audit_records_old;
ALTER TABLE audit_records_old RENAME CONSTRAINT audit_records_pkey TO audit_records_old_pkey;
ALTER TABLE audit_records_old RENAME CONSTRAINT audit_records_principal_id_fkey TO audit_records_old_principal_fkey;
ALTER INDEX audit_records_case RENAME TO audit_records_old_case;
ALTER INDEX audit_records_at RENAME TO audit_records_old_at;
ALTER INDEX audit_records_ins RENAME TO audit_records_old_ins;
CREATE TABLE audit_records (
    id           bigint NOT NULL DEFAULT nextval('audit_records_id_seq'),
    principal_id bigint REFERENCES principals (id),
    principal    text NOT NULL,
    method       text NOT NULL,
    case_no      text NOT NULL,
    filters      jsonb NOT NULL DEFAULT '{}',
    returned     bigint NOT NULL DEFAULT 0,
    status       text NOT NULL,
    shipment_ids uuid[] NOT NULL DEFAULT '{}',
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    ins_xid      xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
ALTER SEQUENCE audit_records_id_seq OWNED BY audit_records.id;
CREATE INDEX audit_records_case ON audit_records (case_no, id DESC);
CREATE INDEX audit_records_at ON audit_records (at DESC, id DESC);
CREATE INDEX audit_records_ins ON audit_records (ins_xid, id);
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- A default partition each, for a row no month partition takes: an event of a parcel whose acceptance month was
-- archived (the parcel row stays), or a month `partitions ensure` has not created. `partitions list` shows its
-- rows; a month holding rows in it cannot be created until they are moved.
CREATE TABLE shipment_events_default PARTITION OF shipment_events DEFAULT;
CREATE TRIGGER shipment_events_default_no_truncate BEFORE TRUNCATE ON shipment_events_default
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();
CREATE TABLE audit_records_default PARTITION OF audit_records DEFAULT;
CREATE TRIGGER audit_records_default_no_truncate BEFORE TRUNCATE ON audit_records_default
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- A partition for every month that holds rows, and for this month and the next three.
DO $$
DECLARE
    m date;
BEGIN
    FOR m IN SELECT generate_series(date_trunc('month', LEAST(COALESCE(min(s.created_at), now()), now()) AT TIME ZONE 'UTC'),
                                    date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months',
                                    interval '1 month')::date
             FROM shipment_events_old e JOIN shipments s ON s.id = e.shipment_id LOOP
        PERFORM courier_ensure_month('shipment_events', m);
    END LOOP;
    FOR m IN SELECT generate_series(date_trunc('month', LEAST(COALESCE(min(at), now()), now()) AT TIME ZONE 'UTC'),
                                    date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months',
                                    interval '1 month')::date
             FROM audit_records_old LOOP
        PERFORM courier_ensure_month('audit_records', m);
    END LOOP;
END;
$$;

-- The rows as they were (ins_xid too: the evidence appender's cursors name positions in it).
INSERT INTO shipment_events (id, shipment_id, accepted_at, seq, kind, from_state, to_state, principal_id, principal,
    terminal_id, device_id, location, note, details, recorded_at, ins_xid)
SELECT e.id, e.shipment_id, s.created_at, e.seq, e.kind, e.from_state, e.to_state, e.principal_id, e.principal,
    e.terminal_id, e.device_id, e.location, e.note, e.details, e.recorded_at, e.ins_xid
FROM shipment_events_old e JOIN shipments s ON s.id = e.shipment_id;
INSERT INTO audit_records (id, principal_id, principal, method, case_no, filters, returned, status, shipment_ids, at,
    ins_xid)
SELECT id, principal_id, principal, method, case_no, filters, returned, status, shipment_ids, at, ins_xid
FROM audit_records_old;
DROP TABLE shipment_events_old;
DROP TABLE audit_records_old;
