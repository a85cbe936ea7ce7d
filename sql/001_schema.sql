-- 001_schema: contracts, snapshots (partitioned by UTC day), coverage,
-- rejects, leases. Applied by `optsnap migrate` inside one transaction.
-- Never edit an applied migration: its sha256 is recorded; add a new file.

-- One row per contract. The snapshot upsert assigns option_snapshots.ticker
-- directly and upserts here first, in the same transaction (LESSONS.md 1).
CREATE TABLE options (
    ticker              text PRIMARY KEY,
    underlying          text NOT NULL,
    contract_type       text CHECK (contract_type IN ('call', 'put', 'other')),
    exercise_style      text,
    expiration_date     date NOT NULL,
    strike_price        double precision NOT NULL,
    shares_per_contract integer,
    first_seen          timestamptz NOT NULL,
    last_seen           timestamptz NOT NULL
);
CREATE INDEX options_underlying_expiration_idx ON options (underlying, expiration_date);

-- The value columns follow include/optsnap/row.h's enum snap_col, in order;
-- tests/integration/test_schema.c checks names, order and types.
CREATE TABLE option_snapshots (
    ticker               text NOT NULL REFERENCES options (ticker),
    last_updated         timestamptz NOT NULL,
    day_open             double precision,
    day_high             double precision,
    day_low              double precision,
    day_close            double precision,
    day_volume           bigint,
    day_vwap             double precision,
    day_change           double precision,
    day_change_percent   double precision,
    day_previous_close   double precision,
    day_time             timestamptz,
    implied_volatility   double precision,
    open_interest        bigint,
    delta                double precision,
    gamma                double precision,
    theta                double precision,
    vega                 double precision,
    bid                  double precision,
    ask                  double precision,
    bid_size             bigint,
    ask_size             bigint,
    midpoint             double precision,
    quote_time           timestamptz,
    trade_price          double precision,
    trade_size           bigint,
    trade_exchange       bigint,
    trade_time           timestamptz,
    underlying_price     double precision,
    underlying_time      timestamptz,
    change_to_break_even double precision,
    break_even_price     double precision,
    fmv                  double precision,
    underlying           text NOT NULL,
    source               text NOT NULL CHECK (source IN ('live', 'backfill')),
    ingested_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticker, last_updated)
) PARTITION BY RANGE (last_updated);

-- Per-underlying reads (freshness, status page, exports) without a scan of
-- the whole day partition.
CREATE INDEX option_snapshots_underlying_idx ON option_snapshots (underlying, last_updated);

-- Catches rows of days that have no partition yet, so an insert never fails
-- for lack of one; optsnap_ensure_partitions() moves them out later.
CREATE TABLE option_snapshots_default PARTITION OF option_snapshots DEFAULT;

-- Creates the missing option_snapshots_pYYYYMMDD partitions for the UTC days
-- from_day..to_day (inclusive) and returns how many it created. Rows of such
-- a day already sitting in the DEFAULT partition are moved into the new
-- partition in the same transaction. Serialised by an advisory lock, so
-- concurrent callers (several ingesters at midnight) are safe; the second
-- one finds the work done. Locks the parent before the default partition,
-- the order an INSERT takes them, so it cannot deadlock with writers.
-- Callers that must not wait long set lock_timeout first.
CREATE FUNCTION optsnap_ensure_partitions(from_day date, to_day date)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    day          date;
    part         text;
    lo           timestamptz;
    hi           timestamptz;
    created      integer := 0;
    missing      boolean;
BEGIN
    IF from_day IS NULL OR to_day IS NULL OR to_day < from_day THEN
        RAISE EXCEPTION 'optsnap_ensure_partitions: bad range % .. %', from_day, to_day
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_day - from_day > 400 THEN
        RAISE EXCEPTION 'optsnap_ensure_partitions: range % .. % longer than 400 days', from_day, to_day
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Cheap check without locks: the daily call usually has nothing to do.
    SELECT bool_or(to_regclass(format('%I.%I', current_schema(),
                                      'option_snapshots_p' || to_char(d, 'YYYYMMDD'))) IS NULL)
      INTO missing
      FROM generate_series(from_day, to_day, interval '1 day') AS g(d);
    IF NOT missing THEN
        RETURN 0;
    END IF;

    -- 0x6f70736e61700002: ASCII "opsnap" then 2 (migrate uses 1); notes/decisions.md.
    PERFORM pg_advisory_xact_lock(8030045053519921154);
    -- Taking a table lock also makes this session read the catalog changes
    -- of the caller we may have waited for (an advisory lock alone does
    -- not), so the to_regclass() checks below see its partitions.
    LOCK TABLE option_snapshots IN ACCESS EXCLUSIVE MODE;
    LOCK TABLE option_snapshots_default IN ACCESS EXCLUSIVE MODE;

    FOR day IN SELECT g::date FROM generate_series(from_day, to_day, interval '1 day') AS g LOOP
        part := 'option_snapshots_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(format('%I.%I', current_schema(), part)) IS NOT NULL;
        lo := day::timestamp AT TIME ZONE 'UTC';
        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
        IF EXISTS (SELECT 1 FROM option_snapshots_default
                    WHERE last_updated >= lo AND last_updated < hi) THEN
            -- A partition cannot be created while the default holds rows of
            -- its range: build it detached, move the rows, then attach.
            EXECUTE format('CREATE TABLE %I (LIKE option_snapshots INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (last_updated >= %L AND last_updated < %L)',
                           part, part || '_range', lo, hi);
            EXECUTE format('WITH moved AS (DELETE FROM option_snapshots_default
                                            WHERE last_updated >= $1 AND last_updated < $2
                                            RETURNING *)
                            INSERT INTO %I SELECT * FROM moved', part)
                USING lo, hi;
            EXECUTE format('ALTER TABLE option_snapshots ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           part, lo, hi);
            -- The CHECK only spared ATTACH a scan; the bound now enforces it.
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_range');
        ELSE
            EXECUTE format('CREATE TABLE %I PARTITION OF option_snapshots FOR VALUES FROM (%L) TO (%L)',
                           part, lo, hi);
        END IF;
        created := created + 1;
    END LOOP;
    RETURN created;
END
$fn$;

-- A few days around now; the ingester calls this at start-up and daily.
SELECT optsnap_ensure_partitions((now() AT TIME ZONE 'UTC')::date - 3,
                                 (now() AT TIME ZONE 'UTC')::date + 7);

-- Which (underlying, window) is known complete. The primary key is the index
-- gap detection probes: expected windows anti-joined on (underlying,
-- window_start), and "latest covered window" per underlying.
CREATE TABLE ingest_coverage (
    underlying   text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    source       text NOT NULL CHECK (source IN ('live', 'backfill')),
    rows         integer NOT NULL DEFAULT 0,
    completed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (underlying, window_start),
    CHECK (window_end > window_start)
);

-- Dead letter: input that could not become a row, kept for replay.
CREATE TABLE ingest_rejects (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    underlying  text,
    ticker      text,
    reason      text NOT NULL,
    raw         text NOT NULL,
    request_id  text,
    source      text NOT NULL DEFAULT 'live'
);
CREATE INDEX ingest_rejects_received_at_idx ON ingest_rejects (received_at);
CREATE INDEX ingest_rejects_underlying_idx ON ingest_rejects (underlying, received_at);

-- Per-underlying lease for repair/backfill (and later, sharding across
-- processes). A row, not a session advisory lock, so it works through a
-- transaction-mode pooler.
CREATE TABLE ingest_leases (
    underlying text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
