-- 003_gaps: expected cadence windows of trading sessions, the gap query
-- (expected minus ingest_coverage, merged into ranges), and the
-- per-underlying lease that repair and backfill take.

-- The cadence in microseconds. Raises for a cadence that is not a positive
-- fixed length: a month or a day is not a fixed number of seconds in a time
-- zone with DST, and a zero step would loop. IMMUTABLE so the SQL functions
-- below that call it can still be inlined into the caller's plan.
CREATE FUNCTION optsnap_cadence_us(cadence interval)
RETURNS bigint
LANGUAGE plpgsql
IMMUTABLE
AS $fn$
BEGIN
    IF cadence IS NULL OR extract(month FROM cadence) <> 0 OR extract(year FROM cadence) <> 0
       OR cadence <= interval '0' THEN
        RAISE EXCEPTION 'optsnap: cadence % must be a positive number of seconds', cadence
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN (extract(epoch FROM cadence) * 1000000)::bigint;
END
$fn$;

-- The cadence windows calendar `cal` expects in [from_ts, to_ts), one row
-- per session: the first and last window_start and how many windows. Windows
-- are aligned to the unix epoch (window_start a multiple of the cadence since
-- 1970-01-01 00:00 UTC, as the live ingester writes them) and lie wholly
-- inside both the session [open_at, close_at) and the range; a window cut by
-- the open, the close or a range bound is not expected. Sessions with no
-- whole window are left out. The step is an absolute number of microseconds
-- (date_bin counts a day as 24 h), so a DST change never shifts the grid.
-- STABLE LANGUAGE sql so the planner inlines it; optsnap_sessions raises for
-- an unknown calendar or days it lacks.
CREATE FUNCTION optsnap_expected_spans(cal text, cadence interval, from_ts timestamptz,
                                       to_ts timestamptz)
RETURNS TABLE (day date, first_start timestamptz, last_start timestamptz, windows bigint)
LANGUAGE sql
STABLE
AS $fn$
    SELECT b.day, b.first_start, b.last_start,
           (extract(epoch FROM b.last_start - b.first_start) * 1000000)::bigint / b.step_us + 1
      FROM (SELECT s.day, st.step_us,
                   -- ceil onto the grid: floor of one microsecond earlier, plus a step
                   date_bin(st.step, greatest(s.open_at, from_ts) - interval '1 microsecond',
                            timestamptz 'epoch') + st.step AS first_start,
                   date_bin(st.step, least(s.close_at, to_ts) - st.step,
                            timestamptz 'epoch') AS last_start
              FROM (SELECT optsnap_cadence_us(cadence) AS step_us,
                           optsnap_cadence_us(cadence) * interval '1 microsecond' AS step) AS st
             CROSS JOIN optsnap_sessions(cal, from_ts, to_ts) AS s) AS b
     WHERE b.last_start >= b.first_start
$fn$;

-- The same windows one per row (window_start, window_end). Unordered:
-- callers ORDER BY window_start when they need it.
CREATE FUNCTION optsnap_expected_windows(cal text, cadence interval, from_ts timestamptz,
                                         to_ts timestamptz)
RETURNS TABLE (window_start timestamptz, window_end timestamptz)
LANGUAGE sql
STABLE
AS $fn$
    SELECT w.ws, w.ws + st.step
      FROM (SELECT optsnap_cadence_us(cadence) * interval '1 microsecond' AS step) AS st
     CROSS JOIN optsnap_expected_spans(cal, cadence, from_ts, to_ts) AS sp
     CROSS JOIN LATERAL generate_series(sp.first_start, sp.last_start, st.step) AS w(ws)
$fn$;

-- Missing windows per underlying, merged into ranges: the expected windows of
-- [from_ts, to_ts) for each of `underlyings`, minus those ingest_coverage
-- holds (any source), consecutive missing windows merged into one range
-- [gap_start, gap_end) of `windows` windows, ordered by underlying and
-- gap_start. A range never spans time the calendar does not expect (a night,
-- a weekend, a holiday): gap_end - gap_start = windows * cadence always.
--
-- Windows that end after `horizon` are not gaps (yet): the window in
-- progress, or the future. The range is cut at least(to_ts, horizon); the
-- default is now(), pass it explicitly to ask "as of" another time.
--
-- Two stages, both driven by the primary key (underlying, window_start):
-- per (underlying, session) an index-only range scan counts the covered
-- windows on this cadence's grid, and only sessions that come up short are
-- expanded into windows and anti-joined (NOT EXISTS, equality on both key
-- columns). A complete month for 50 underlyings is then 1000 short range
-- scans instead of sorting and merging ~400k expected windows. Windows
-- recorded under another cadence (off this grid) do not count.
-- LANGUAGE sql and STABLE: inlined, so EXPLAIN shows the real plan.
CREATE FUNCTION optsnap_gaps(cal text, cadence interval, from_ts timestamptz, to_ts timestamptz,
                             underlyings text[], horizon timestamptz DEFAULT now())
RETURNS TABLE (underlying text, gap_start timestamptz, gap_end timestamptz, windows integer)
LANGUAGE sql
STABLE
AS $fn$
    WITH step AS (
        SELECT optsnap_cadence_us(cadence) * interval '1 microsecond' AS step
    ), short AS (
        SELECT u.name, sp.first_start, sp.last_start
          FROM (SELECT DISTINCT x AS name FROM unnest(underlyings) AS x WHERE x IS NOT NULL) AS u
         CROSS JOIN optsnap_expected_spans(cal, cadence, from_ts,
                                           least(to_ts, coalesce(horizon, to_ts))) AS sp
         CROSS JOIN step
         WHERE sp.windows > (SELECT count(*)
                               FROM ingest_coverage c
                              WHERE c.underlying = u.name
                                AND c.window_start >= sp.first_start
                                AND c.window_start <= sp.last_start
                                AND date_bin(step.step, c.window_start, timestamptz 'epoch')
                                    = c.window_start)
    ), probed AS (
        -- NOT EXISTS in the select list, not in WHERE: it stays a per-row
        -- subplan probing the primary key with both columns, and cannot be
        -- turned into a hash anti-join over a scan of the whole table (the
        -- planner cannot know how few windows the short sessions hold).
        SELECT sh.name, w.ws, w.ws + step.step AS we,
               NOT EXISTS (SELECT 1
                             FROM ingest_coverage c
                            WHERE c.underlying = sh.name
                              AND c.window_start = w.ws) AS absent
          FROM short sh
         CROSS JOIN step
         CROSS JOIN LATERAL generate_series(sh.first_start, sh.last_start, step.step) AS w(ws)
    ), missing AS (
        SELECT p.name, p.ws, p.we FROM probed p WHERE p.absent
    ), islands AS (
        -- Within one run of consecutive missing windows, start minus
        -- rank * cadence is constant; a covered window or time outside a
        -- session between two missing ones changes it.
        SELECT m.name, m.ws, m.we,
               m.ws - (row_number() OVER (PARTITION BY m.name ORDER BY m.ws)) * (m.we - m.ws) AS island
          FROM missing m
    )
    SELECT i.name, min(i.ws), max(i.we), count(*)::integer
      FROM islands i
     GROUP BY i.name, i.island
     ORDER BY i.name, min(i.ws)
$fn$;

-- Per-underlying lease (ingest_leases): repair and backfill take one before
-- they work an underlying, so two runs never work the same one at once. A row
-- with an expiry, not an advisory lock, so it holds through a
-- transaction-mode pooler and a crashed holder's lease simply expires. Each
-- call is one statement; call it outside a long transaction (the row lock of
-- an uncommitted acquire blocks a competitor until commit). Under REPEATABLE
-- READ a racing acquire fails with a serialization error instead of false.
-- Times are clock_timestamp(), so a lease taken late in a transaction still
-- lasts its ttl.

-- True when `holder` now holds the lease on `underlying` for `ttl`: it was
-- free, expired, or already ours (then it is renewed). Of two sessions racing
-- for the same free underlying exactly one gets true: the loser's ON CONFLICT
-- waits for the winner's row and its WHERE then sees another live holder.
CREATE FUNCTION optsnap_lease_acquire(underlying text, holder text, ttl interval)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
AS $fn$
#variable_conflict use_column
DECLARE
    won boolean;
BEGIN
    IF optsnap_lease_acquire.underlying IS NULL OR optsnap_lease_acquire.holder IS NULL
       OR optsnap_lease_acquire.ttl IS NULL OR optsnap_lease_acquire.ttl <= interval '0' THEN
        RAISE EXCEPTION 'optsnap_lease_acquire: underlying, holder and a positive ttl are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO ingest_leases AS l (underlying, holder, expires_at)
    VALUES (optsnap_lease_acquire.underlying, optsnap_lease_acquire.holder,
            clock_timestamp() + optsnap_lease_acquire.ttl)
    ON CONFLICT ON CONSTRAINT ingest_leases_pkey DO UPDATE
        SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
        WHERE l.expires_at < clock_timestamp() OR l.holder = EXCLUDED.holder
    RETURNING true INTO won;
    RETURN coalesce(won, false);
END
$fn$;

-- Extends a lease `holder` still holds to clock_timestamp() + ttl. False when
-- the lease is gone or another holder took it (after it expired): the caller
-- must stop working the underlying. A lease that expired but nobody took is
-- still the holder's and is renewed.
CREATE FUNCTION optsnap_lease_renew(underlying text, holder text, ttl interval)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
AS $fn$
#variable_conflict use_column
BEGIN
    IF optsnap_lease_renew.ttl IS NULL OR optsnap_lease_renew.ttl <= interval '0' THEN
        RAISE EXCEPTION 'optsnap_lease_renew: a positive ttl is required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE ingest_leases l
       SET expires_at = clock_timestamp() + optsnap_lease_renew.ttl
     WHERE l.underlying = optsnap_lease_renew.underlying
       AND l.holder = optsnap_lease_renew.holder;
    RETURN FOUND;
END
$fn$;

-- Gives the lease up. False when `holder` did not hold it (never did, or it
-- expired and another holder took it); the other holder's lease is untouched.
CREATE FUNCTION optsnap_lease_release(underlying text, holder text)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
AS $fn$
#variable_conflict use_column
BEGIN
    DELETE FROM ingest_leases l
     WHERE l.underlying = optsnap_lease_release.underlying
       AND l.holder = optsnap_lease_release.holder;
    RETURN FOUND;
END
$fn$;
