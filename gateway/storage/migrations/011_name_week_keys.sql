-- Names searched within a time window: each name key paired with the week the shipment was accepted in.
-- The plain GIN indexes of 008 find every shipment of a name over all time, and a window then has to visit each
-- one's heap page to read its created_at: over a year of 10 M shipments a common name (张伟) is some 10,000 pages
-- for the 700 of one month. Keyed by week, the index gives only the weeks the window touches. Weeks are whole
-- 7-day spans from the Unix epoch (floor(epoch / 604800)), which do not depend on the time zone, so the function
-- is immutable as an index expression must be; InvestigationRepository builds the same keys ("key@week").
CREATE FUNCTION shipment_name_weeks(keys text[], at timestamptz) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT ARRAY(SELECT k || '@' || floor(extract(epoch FROM at) / 604800)::bigint FROM unnest(keys) AS k) $$;

CREATE INDEX shipments_sender_name_week ON shipments USING gin (shipment_name_weeks(sender_name_keys, created_at));
CREATE INDEX shipments_recipient_name_week ON shipments
    USING gin (shipment_name_weeks(recipient_name_keys, created_at));
