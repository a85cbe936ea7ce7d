-- 011_flatfiles: the flat-file objects applied, one row per (day,
-- underlying): the object's ETag when its rows for that underlying were
-- written and the day's windows marked. A later backfill sends the ETag as
-- If-None-Match and skips a day whose object has not changed (304); a
-- republished object (new ETag) is applied again (the row upserts make that
-- idempotent) and its row updated. Per underlying, not per day alone: one
-- file holds every underlying, and a run over another universe must still
-- apply it to its own.
CREATE TABLE IF NOT EXISTS ingest_flatfiles (
    day         date        NOT NULL,
    underlying  text        NOT NULL,
    etag        text        NOT NULL,
    rows        bigint      NOT NULL DEFAULT 0,
    rejects     bigint      NOT NULL DEFAULT 0,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, underlying)
);
