#!/usr/bin/env bash
# The README's first command: scripts/demo.sh runs on its defaults (simulator +
# the given database), stops by itself, and rows and covered windows arrived.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd curl psql python3
ROOT=${OPTSNAP_SOURCE_ROOT:?}
DB=$(pgtest_createdb optsnap_e2e_demo)
e2e_tmpdir >/dev/null
out=$(DATABASE_URL=$DB OPTSNAP_API_KEY= OPTSNAP_BIN=${OPTSNAP_BIN:?} "$ROOT/scripts/demo.sh" --run-for 12s --cadence 2s 2>"$E2E_TMP/demo.err") \
    || { tail -20 "$E2E_TMP/demo.err"; fail "demo.sh exited non-zero"; }
echo "$out"
rows=$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots")
windows=$(pg_scalar "$DB" "SELECT count(*) FROM ingest_coverage")
underlyings=$(pg_scalar "$DB" "SELECT count(DISTINCT underlying) FROM option_snapshots")
[ "$rows" -gt 1000 ] || fail "only $rows rows arrived"
[ "$windows" -ge 8 ] || fail "only $windows windows covered"
[ "$underlyings" = 4 ] || fail "rows for $underlyings underlyings, expected 4"
grep -q "optsnap is running" "$E2E_TMP/demo.err" || fail "the demo did not say where to look"
echo "demo e2e: ok rows=$rows windows=$windows"
