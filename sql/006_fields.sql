-- 006_fields: every field the API sends (timeframes, quote exchanges, trade
-- conditions, the index level, fmv's time; on contracts the primary exchange,
-- the CFI code and the deliverables of adjusted contracts), the flag of rows
-- keyed on the sweep's window because the API sent no event time, and what
-- the dead letter needs for `optsnap rejects --replay` (notes/decisions.md,
-- "Partial rows, fallback keys and replay").
--
-- Columns are appended: each ADD COLUMN without a default, or with a
-- constant one, changes only the catalog (no rewrite of the day partitions).
-- The value columns follow include/optsnap/api/row.h's enum snap_col from
-- SNAP_QUOTE_TIMEFRAME on; tests/integration/test_schema.c checks the order.
ALTER TABLE option_snapshots
    ADD COLUMN quote_timeframe       text,             -- 'DELAYED' | 'REAL-TIME'
    ADD COLUMN bid_exchange          bigint,
    ADD COLUMN ask_exchange          bigint,
    ADD COLUMN trade_timeframe       text,
    ADD COLUMN trade_conditions      jsonb,            -- [209, 219]: condition codes
    ADD COLUMN underlying_value      double precision, -- an index underlying's level
    ADD COLUMN underlying_timeframe  text,
    ADD COLUMN fmv_time              timestamptz,      -- fmv_last_updated
    ADD COLUMN last_updated_fallback boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN option_snapshots.last_updated_fallback IS
    'true: the API sent no event time for this contract; last_updated is the start of the sweep window it was fetched in';
COMMENT ON COLUMN option_snapshots.quote_timeframe IS 'DELAYED or REAL-TIME, as the API labels the quote (plan dependent)';

ALTER TABLE options
    ADD COLUMN primary_exchange       text,
    ADD COLUMN cfi                    text,
    ADD COLUMN additional_underlyings jsonb, -- [{"type","underlying","amount"}]: an adjusted contract's deliverables
    ADD COLUMN reference_updated_at   timestamptz;

-- The dead letter. kind: 'reject' (no row), 'partial' (stored with fields
-- NULL; raw restores them), 'refused' (the database refused the row; raw is
-- rebuilt from the parsed row). key_time: the key the row has (partial,
-- refused) or would have had without an event time (reject): a replay keys
-- the row alike. replayed_at/replay_result: set in the transaction that
-- wrote the replayed row, so a reject is replayed once.
ALTER TABLE ingest_rejects
    ADD COLUMN kind          text NOT NULL DEFAULT 'reject',
    ADD COLUMN key_time      timestamptz,
    ADD COLUMN replayed_at   timestamptz,
    ADD COLUMN replay_result text;
ALTER TABLE ingest_rejects
    ADD CONSTRAINT ingest_rejects_kind_check CHECK (kind IN ('reject', 'partial', 'refused'));
-- Before this migration a row the database refused was kept with its
-- refusal as reason and a raw rebuilt from the row.
UPDATE ingest_rejects SET kind = 'refused' WHERE reason LIKE 'database %';

-- What `optsnap rejects --replay` walks: the ones not replayed yet.
CREATE INDEX ingest_rejects_pending_idx ON ingest_rejects (id) WHERE replayed_at IS NULL;
