-- Key rotation: a verification's blind indexes as the evidence log recorded them.
-- Re-keying a row under a new index key changes document_bidx and phone_bidx (what look-ups match), but the
-- record in the evidence log was made from the old values; `keys rotate` keeps those here, in the same
-- transaction, the first time it changes a row, and the row's record is built from them. NULL: unchanged since
-- recorded (the look-up columns hold what was logged). A changed logged_* value no longer matches its leaf.
ALTER TABLE sender_verifications ADD COLUMN logged_document_bidx bytea;
ALTER TABLE sender_verifications ADD COLUMN logged_phone_bidx bytea;
