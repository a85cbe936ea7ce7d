-- sql/roles.sql - least-privilege roles for optsnap. Not a migration: roles are
-- cluster-wide and creating them needs CREATEROLE. Run it once per database as
-- the owner of the optsnap schema (after `optsnap migrate`):
--     psql "$DATABASE_URL" -f sql/roles.sql
-- then give login roles membership:
--     CREATE ROLE ingest LOGIN PASSWORD '...' IN ROLE optsnap_writer;
--     CREATE ROLE analyst LOGIN PASSWORD '...' IN ROLE optsnap_reader;
-- optsnap_writer can do exactly what `run`, `backfill`, `repair` and `gaps`
-- need (insert and update rows, take leases, create day partitions through
-- optsnap_ensure_partitions) and cannot drop, alter or truncate anything.
-- optsnap_reader can only read. `optsnap migrate` still runs as the owner.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'optsnap_writer') THEN
        CREATE ROLE optsnap_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'optsnap_reader') THEN
        CREATE ROLE optsnap_reader NOLOGIN;
    END IF;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO optsnap_writer, optsnap_reader', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO optsnap_writer, optsnap_reader;

-- the writer
GRANT SELECT, INSERT, UPDATE ON options, option_snapshots, ingest_coverage TO optsnap_writer;
GRANT SELECT, INSERT ON ingest_rejects TO optsnap_writer;
-- `optsnap rejects --replay` marks what it replayed; the dead letter itself stays as written
GRANT UPDATE (replayed_at, replay_result) ON ingest_rejects TO optsnap_writer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO optsnap_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_leases TO optsnap_writer;
GRANT SELECT, INSERT ON ingest_lease_log TO optsnap_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_daemons TO optsnap_writer;
GRANT SELECT ON schema_migrations, trading_calendars, trading_holidays, trading_sessions TO optsnap_writer;
GRANT EXECUTE ON FUNCTION optsnap_ensure_partitions(date, date) TO optsnap_writer;

-- the reader
GRANT SELECT ON ALL TABLES IN SCHEMA public TO optsnap_reader;
-- partitions created later are read through the parent; grant on the parent suffices

-- 009_history: one day's partition before backfill writes it; retention
GRANT EXECUTE ON FUNCTION optsnap_ensure_day_partition(date, interval) TO optsnap_writer;
GRANT EXECUTE ON FUNCTION optsnap_retention_apply(date, boolean, interval) TO optsnap_writer;
GRANT SELECT ON ingest_retention, ingest_expired_days TO optsnap_writer;
-- the reader: optsnap_chain_at and optsnap_series are SECURITY INVOKER over
-- tables it may read (granted above); EXECUTE is PUBLIC's by default
GRANT EXECUTE ON FUNCTION optsnap_chain_at(text, timestamptz, timestamptz),
                          optsnap_series(text, timestamptz, timestamptz) TO optsnap_reader;
-- 011: the flat-file ETags, kept by backfill
GRANT SELECT, INSERT, UPDATE ON ingest_flatfiles TO optsnap_writer;
GRANT SELECT ON ingest_flatfiles TO optsnap_reader;
