-- Expired blocklist entries are found by time, not by version: the sweep that turns an expiry into a
-- retirement (so that every process's live list drops it on the next NOTIFY) and the live list's catch-up
-- look for active entries whose expires_at has passed. Without this index each of those is a scan of the
-- whole table (a million rows and more); with it, a look at the few entries that have just expired.
CREATE INDEX blocklist_entries_expiring ON blocklist_entries (expires_at)
    WHERE retired_at IS NULL AND expires_at IS NOT NULL;
