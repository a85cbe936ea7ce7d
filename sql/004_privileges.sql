-- 004_privileges: what the least-privilege roles of sql/roles.sql rely on.
-- Creating and attaching a day partition needs the table's owner. The writer
-- role must not own tables (it could drop them), so partition maintenance
-- runs with the owner's rights through this one SECURITY DEFINER function,
-- with a pinned search_path so a caller cannot substitute objects.
ALTER FUNCTION optsnap_ensure_partitions(date, date) SECURITY DEFINER;
ALTER FUNCTION optsnap_ensure_partitions(date, date) SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION optsnap_ensure_partitions(date, date) FROM PUBLIC;
