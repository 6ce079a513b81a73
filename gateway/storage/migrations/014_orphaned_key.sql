-- AcceptParcel's batch is one statement (gateway/storage/shipments.py, _INSERT_MANY). When a concurrent write took
-- one of a row's two keys after the statement's snapshot, the row would keep the other key without its parcel: the
-- statement must then fail as a whole, with an error the repository tells apart from every other (its own SQLSTATE),
-- and the batch is written again in a transaction that frees such keys.
CREATE FUNCTION orphaned_shipment_key(shipment uuid) RETURNS uuid LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'shipment %: a concurrent write took one of its keys', shipment USING ERRCODE = 'GW001';
END;
$$;
