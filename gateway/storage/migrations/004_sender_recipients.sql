-- The sender pattern (many recipients from one verified sender within a window) counted from a small
-- table with one row per sender, recipient and day, written with each acceptance. Counting distinct
-- recipients over the shipments themselves cost a scan of every parcel a busy sender sent in the
-- window, on every acceptance; this table holds at most one row per recipient per day.
CREATE TABLE sender_recipients (
    sender_bidx    bytea NOT NULL,
    day            date NOT NULL,
    recipient_bidx bytea NOT NULL,
    PRIMARY KEY (sender_bidx, day, recipient_bidx)
);
DROP INDEX shipments_sender_recent;
