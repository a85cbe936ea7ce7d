-- 009_history: history at market scale (issue 14). One day's partition at a
-- time for backfill, chains as of any time, one contract's series, and
-- retention (whole day partitions dropped, their coverage expired).

-- Ensures the partition of one UTC day, waiting at most `lock_wait` for the
-- locks optsnap_ensure_partitions takes (its advisory lock, the parent's and
-- the default's). Returns the partitions created (0 or 1), or -1 when a lock
-- was not granted in time: nothing changed, the caller tries again later and
-- writes nothing for that day meanwhile. Backfill and repair call it for
-- each day they are about to write, in a transaction of its own, so the
-- parent's lock is held for one day's CREATE TABLE, never for a whole range.
-- SECURITY DEFINER like optsnap_ensure_partitions (the writer owns no table).
CREATE FUNCTION optsnap_ensure_day_partition(day date, lock_wait interval DEFAULT interval '500 milliseconds')
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
    previous text := current_setting('lock_timeout');
    created  integer;
BEGIN
    IF day IS NULL OR lock_wait IS NULL OR lock_wait <= interval '0' OR lock_wait > interval '1 minute' THEN
        RAISE EXCEPTION 'optsnap_ensure_day_partition: a day and a lock_wait in (0, 1 min] are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('lock_timeout', (extract(epoch FROM lock_wait) * 1000)::bigint::text, true);
    BEGIN
        created := optsnap_ensure_partitions(day, day);
    EXCEPTION WHEN lock_not_available THEN
        created := -1;
    END;
    PERFORM set_config('lock_timeout', previous, true);
    RETURN created;
END
$fn$;
REVOKE EXECUTE ON FUNCTION optsnap_ensure_day_partition(date, interval) FROM PUBLIC;

-- ---- retention ----

-- Everything before expired_before was dropped on purpose: no window there is
-- a gap, and repair never brings it back. One row at most; it only moves
-- forward.
CREATE TABLE ingest_retention (
    one            boolean PRIMARY KEY DEFAULT true CHECK (one),
    expired_before timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One row per day partition dropped by retention, for audits.
CREATE TABLE ingest_expired_days (
    day        date PRIMARY KEY,
    partition  text NOT NULL,
    dropped_at timestamptz NOT NULL DEFAULT now()
);

-- Drops the day partitions wholly before `cutoff` (a UTC day: the partition
-- of day D goes when D < cutoff), oldest first, and moves ingest_retention's
-- horizon to cutoff's midnight UTC. Never the DEFAULT partition (rows there
-- have no day of their own; optsnap_ensure_partitions moves them out), never
-- a day of the last two (the cutoff must be before yesterday, whatever
-- clock the caller believes). With dry_run nothing changes and the rows say
-- what would go. Each drop waits at most `lock_wait` for the parent's lock;
-- a day not granted in time is reported with dropped = false and stays for
-- the next call (the horizon then stops before it). Serialised with
-- optsnap_ensure_partitions by its advisory lock.
CREATE FUNCTION optsnap_retention_apply(cutoff date, dry_run boolean DEFAULT false,
                                        lock_wait interval DEFAULT interval '2 seconds')
RETURNS TABLE (day date, partition_name text, dropped boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    previous text := current_setting('lock_timeout');
    p        record;
    horizon  date := cutoff;
BEGIN
    IF cutoff IS NULL OR cutoff > (now() AT TIME ZONE 'UTC')::date - 1 THEN
        RAISE EXCEPTION 'optsnap_retention_apply: cutoff % must be before yesterday', cutoff
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lock_wait IS NULL OR lock_wait <= interval '0' OR lock_wait > interval '1 minute' THEN
        RAISE EXCEPTION 'optsnap_retention_apply: lock_wait must be in (0, 1 min]'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT dry_run THEN
        PERFORM set_config('lock_timeout', (extract(epoch FROM lock_wait) * 1000)::bigint::text, true);
        BEGIN
            PERFORM pg_advisory_xact_lock(8030045053519921154);
        EXCEPTION WHEN lock_not_available THEN
            PERFORM set_config('lock_timeout', previous, true);
            RAISE EXCEPTION 'optsnap_retention_apply: partition maintenance is busy, try again'
                USING ERRCODE = 'lock_not_available';
        END;
    END IF;
    FOR p IN
        SELECT to_date(substr(c.relname, 19), 'YYYYMMDD') AS d, c.relname::text AS name
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'option_snapshots'::regclass
           AND c.relname ~ '^option_snapshots_p[0-9]{8}$'
           AND c.relispartition
           AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
           AND to_date(substr(c.relname, 19), 'YYYYMMDD') < cutoff
         ORDER BY 1
    LOOP
        day := p.d;
        partition_name := p.name;
        dropped := false;
        IF NOT dry_run THEN
            BEGIN
                EXECUTE format('DROP TABLE %I', p.name);
                dropped := true;
                INSERT INTO ingest_expired_days AS x (day, partition) VALUES (p.d, p.name)
                ON CONFLICT (day) DO UPDATE SET partition = EXCLUDED.partition, dropped_at = now();
            EXCEPTION WHEN lock_not_available THEN
                horizon := least(horizon, p.d);
            END;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF NOT dry_run THEN
        PERFORM set_config('lock_timeout', previous, true);
        INSERT INTO ingest_retention AS r (one, expired_before)
        VALUES (true, horizon::timestamp AT TIME ZONE 'UTC')
        ON CONFLICT (one) DO UPDATE SET expired_before = greatest(r.expired_before, EXCLUDED.expired_before),
                                        updated_at = now();
    END IF;
END
$fn$;
REVOKE EXECUTE ON FUNCTION optsnap_retention_apply(date, boolean, interval) FROM PUBLIC;

-- optsnap_gaps of 003 with the retention horizon: windows starting before
-- ingest_retention.expired_before are not gaps. Same plan otherwise (the
-- horizon is one row read once).
CREATE OR REPLACE FUNCTION optsnap_gaps(cal text, cadence interval, from_ts timestamptz, to_ts timestamptz,
                                        underlyings text[], horizon timestamptz DEFAULT now())
RETURNS TABLE (underlying text, gap_start timestamptz, gap_end timestamptz, windows integer)
LANGUAGE sql
STABLE
AS $fn$
    WITH step AS (
        SELECT optsnap_cadence_us(cadence) * interval '1 microsecond' AS step
    ), retained AS (
        SELECT coalesce(max(r.expired_before), timestamptz '-infinity') AS since FROM ingest_retention r
    ), short AS (
        SELECT u.name, sp.first_start, sp.last_start
          FROM (SELECT DISTINCT x AS name FROM unnest(underlyings) AS x WHERE x IS NOT NULL) AS u
         CROSS JOIN optsnap_expected_spans(cal, cadence, from_ts,
                                           least(to_ts, coalesce(horizon, to_ts))) AS sp
         CROSS JOIN step
         CROSS JOIN retained
         WHERE sp.last_start >= retained.since
           AND sp.windows > (SELECT count(*)
                               FROM ingest_coverage c
                              WHERE c.underlying = u.name
                                AND c.window_start >= sp.first_start
                                AND c.window_start <= sp.last_start
                                AND date_bin(step.step, c.window_start, timestamptz 'epoch')
                                    = c.window_start)
    ), probed AS (
        SELECT sh.name, w.ws, w.ws + step.step AS we,
               NOT EXISTS (SELECT 1
                             FROM ingest_coverage c
                            WHERE c.underlying = sh.name
                              AND c.window_start = w.ws) AS absent
          FROM short sh
         CROSS JOIN step
         CROSS JOIN LATERAL generate_series(sh.first_start, sh.last_start, step.step) AS w(ws)
    ), missing AS (
        SELECT p.name, p.ws, p.we FROM probed p CROSS JOIN retained WHERE p.absent AND p.ws >= retained.since
    ), islands AS (
        SELECT m.name, m.ws, m.we,
               m.ws - (row_number() OVER (PARTITION BY m.name ORDER BY m.ws)) * (m.we - m.ws) AS island
          FROM missing m
    )
    SELECT i.name, min(i.ws), max(i.we), count(*)::integer
      FROM islands i
     GROUP BY i.name, i.island
     ORDER BY i.name, min(i.ws)
$fn$;

-- ---- reading history ----

-- The chain of `underlying` as it stood at `at`: for each contract of the
-- underlying not expired at `at` (local date), its latest snapshot at or
-- before `at` and not before `since` (default: the start of `at`'s local day
-- in New York, so a contract that has not printed today is left out rather
-- than shown with yesterday's state). One backward probe per contract on the
-- primary key (ticker, last_updated) of each day partition in range, driven
-- by options_underlying_expiration_idx: never a scan of a day partition.
-- LANGUAGE sql and STABLE: inlined, so EXPLAIN shows the real plan.
CREATE FUNCTION optsnap_chain_at(underlying text, at timestamptz, since timestamptz DEFAULT NULL)
RETURNS SETOF option_snapshots
LANGUAGE sql
STABLE
AS $fn$
    SELECT s.*
      FROM options o
     CROSS JOIN LATERAL (
            SELECT x.*
              FROM option_snapshots x
             WHERE x.ticker = o.ticker
               AND x.last_updated <= at
               AND x.last_updated >= coalesce(since, (date_trunc('day', at AT TIME ZONE 'America/New_York'))
                                                      AT TIME ZONE 'America/New_York')
             ORDER BY x.last_updated DESC
             LIMIT 1) AS s
     WHERE o.underlying = optsnap_chain_at.underlying
       AND o.expiration_date >= (at AT TIME ZONE 'America/New_York')::date
$fn$;

-- One contract's snapshots in [from_ts, to_ts), oldest first: a range scan
-- of the primary key in the partitions of the range.
CREATE FUNCTION optsnap_series(ticker text, from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF option_snapshots
LANGUAGE sql
STABLE
AS $fn$
    SELECT x.*
      FROM option_snapshots x
     WHERE x.ticker = optsnap_series.ticker
       AND x.last_updated >= from_ts
       AND x.last_updated < to_ts
     ORDER BY x.last_updated
$fn$;
