-- Each parcel keeps the seq of its last history event on its own row, so that every writer takes the next seq
-- from the row it locks or conditions on. Reading max(seq) from the events inside the same statement saw the
-- statement's snapshot, so two moves of one parcel at once could pick the same seq (a unique violation where
-- one should have waited), and a scan could not tell that the parcel changed under it.
ALTER TABLE shipments ADD COLUMN last_seq integer NOT NULL DEFAULT 0 CHECK (last_seq >= 0);
UPDATE shipments s SET last_seq = e.last FROM (
    SELECT shipment_id, max(seq) AS last FROM shipment_events GROUP BY shipment_id
) e WHERE e.shipment_id = s.id;

-- An assertion a statement can make about itself: false aborts the whole statement as a serialization failure,
-- which the writer answers by reading again and retrying (optimistic writes of scans).
CREATE FUNCTION courier_expect(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION '%', what USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN true;
END;
$$;
