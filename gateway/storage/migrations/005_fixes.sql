-- What the first outside review asked for: the legacy number sealed, the courier's in-person check recorded,
-- keyword exclusion contexts, and re-screening that no way of adding an entry can skip.

-- A 15-digit legacy resident number is upgraded to 18 digits; the legacy form is a document number too,
-- so it is kept only sealed (facts hold its masked form).
ALTER TABLE sender_verifications ADD COLUMN legacy_number_enc bytea;
-- The courier's own comparison of the person with the document (人证相符): MATCHED, MISMATCHED or ''.
ALTER TABLE sender_verifications ADD COLUMN in_person_check text NOT NULL DEFAULT ''
    CHECK (in_person_check IN ('', 'MATCHED', 'MISMATCHED'));

-- Terms that cancel a keyword match they contain (高仿真 for 高仿), given by reviewers per entry.
ALTER TABLE blocklist_entries ADD COLUMN exclusions text[] NOT NULL DEFAULT '{}';

-- Re-screening of parcels in custody against new entries, however they were added (AddEntry, ImportEntries,
-- the command-line import, a direct load): the highest list version whose additions have been screened.
-- A gateway process takes an advisory lock, screens the entries added since, and moves this forward, so
-- one process does each piece of work and entries added while no gateway ran are screened at the next start.
CREATE TABLE rescreen_progress (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL
);
-- Entries that existed before this migration were re-screened as they were added (or never will be).
INSERT INTO rescreen_progress (version) SELECT version FROM blocklist_version;
