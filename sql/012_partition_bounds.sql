-- 012_partition_bounds: what a role that does not own the tables (the
-- writer, sql/roles.sql) may ask of optsnap_ensure_partitions (issue 11,
-- finding 6: 800 partitions in 6.5 s from the writer role, each call an
-- ACCESS EXCLUSIVE lock on option_snapshots, stalled ingestion).
--
-- The owner of option_snapshots (and a superuser, and members of the owner
-- role) keeps the old contract: any range of up to 400 days. Anyone else,
-- judged by session_user (inside these SECURITY DEFINER functions
-- current_user is always the owner):
--   * a range inside [today - 7, today + 14] (UTC, the database's clock), at
--     most 22 days, what `run` asks at start-up and daily (today-1 ..
--     today+7 by its own clock, so a daemon clock up to a week off still fits);
--   * or ONE day per call anywhere before that window (backfill and repair
--     ensure each day they write, through optsnap_ensure_day_partition, back
--     to any history date), but the partitions so created by non-owners are
--     rate-limited: at most 10 in any 10 seconds. A call over the limit
--     creates nothing and takes no table lock: it fails with SQLSTATE 55P03
--     (lock_not_available, "rate limit" in the message), which
--     optsnap_ensure_day_partition already turns into -1 ("busy, try again
--     later"), the answer backfill backs off on (a unit still busy after its
--     retries stays uncovered; a re-run or the next heal fills it).
--   * anything else (a day after today + 14, a multi-day range outside the
--     window) fails with SQLSTATE 42501 (insufficient_privilege).
-- So a storm of calls from the writer role creates at most one partition a
-- second and holds the parent's lock for no call that is refused.
-- Tests: tests/integration/test_roles.c `test_partition_bounds`.

-- The old function keeps its body under a new name, for the owner's rights
-- only; optsnap_ensure_partitions becomes the gate in front of it.
ALTER FUNCTION optsnap_ensure_partitions(date, date) RENAME TO optsnap_create_partitions;
REVOKE EXECUTE ON FUNCTION optsnap_create_partitions(date, date) FROM PUBLIC;

-- The partitions non-owners created before the near window, for the rate
-- limit (and audits). Written only by the function below (owner's rights).
CREATE TABLE ingest_partition_requests (
    day        date PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    by_role    name NOT NULL
);
CREATE INDEX ingest_partition_requests_at ON ingest_partition_requests (created_at);

CREATE FUNCTION optsnap_ensure_partitions(from_day date, to_day date)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
    today      date := (now() AT TIME ZONE 'UTC')::date;
    privileged boolean;
    created    integer;
BEGIN
    SELECT pg_has_role(session_user, c.relowner, 'USAGE') INTO privileged
      FROM pg_class c WHERE c.oid = 'option_snapshots'::regclass;
    IF privileged OR from_day IS NULL OR to_day IS NULL OR to_day < from_day
       OR (from_day >= today - 7 AND to_day <= today + 14) THEN
        RETURN optsnap_create_partitions(from_day, to_day); -- it checks the range itself
    END IF;
    IF from_day <> to_day OR to_day >= today - 7 THEN
        RAISE EXCEPTION 'optsnap_ensure_partitions: % may ask for days % .. % (UTC) or one earlier day a call, not % .. %',
            session_user, today - 7, today + 14, from_day, to_day
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'wider ranges: run it as the owner of option_snapshots (the role optsnap migrate uses)';
    END IF;
    IF to_regclass(format('%I.%I', current_schema(), 'option_snapshots_p' || to_char(from_day, 'YYYYMMDD'))) IS NOT NULL THEN
        RETURN 0;
    END IF;
    -- counted under the creators' advisory lock (taken again inside, same
    -- session: granted at once) and before any table lock
    PERFORM pg_advisory_xact_lock(8030045053519921154);
    IF (SELECT count(*) FROM ingest_partition_requests
         WHERE created_at > clock_timestamp() - interval '10 seconds') >= 10 THEN
        RAISE EXCEPTION 'optsnap_ensure_partitions: rate limit: % created 10 partitions of past days in 10 s; try again later',
            session_user
            USING ERRCODE = 'lock_not_available';
    END IF;
    created := optsnap_create_partitions(from_day, to_day);
    IF created > 0 THEN
        INSERT INTO ingest_partition_requests AS r (day, by_role) VALUES (from_day, session_user)
            ON CONFLICT ON CONSTRAINT ingest_partition_requests_pkey
            DO UPDATE SET created_at = clock_timestamp(), by_role = EXCLUDED.by_role;
    END IF;
    RETURN created;
END
$fn$;
REVOKE EXECUTE ON FUNCTION optsnap_ensure_partitions(date, date) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'optsnap_writer') THEN
        -- roles.sql's grant followed the old function to its new name
        REVOKE EXECUTE ON FUNCTION optsnap_create_partitions(date, date) FROM optsnap_writer;
        GRANT EXECUTE ON FUNCTION optsnap_ensure_partitions(date, date) TO optsnap_writer;
    END IF;
END
$$;
