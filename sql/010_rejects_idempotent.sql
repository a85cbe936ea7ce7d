-- 010_rejects_idempotent: a batch whose COMMIT's outcome is unknown (the
-- connection dropped around it, a failover) is sent again; its rows are
-- upserts and its mark ON CONFLICT, so only the rejects could be written
-- twice. Each batch now carries a write token (set when it is first sent,
-- kept across retries) and each reject its ordinal in the batch; a second
-- insert of the same (token, ordinal) does nothing. Rejects written before
-- this migration have no token and are left as they are.
ALTER TABLE ingest_rejects ADD COLUMN write_token text;
ALTER TABLE ingest_rejects ADD COLUMN write_ordinal integer;
CREATE UNIQUE INDEX ingest_rejects_write_token_idx ON ingest_rejects (write_token, write_ordinal)
    WHERE write_token IS NOT NULL;
