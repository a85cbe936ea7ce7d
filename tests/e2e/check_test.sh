#!/usr/bin/env bash
# optsnap check against the simulator: a good setup exits 0 with every line
# ok; a wrong key, an unentitled underlying (the real 403 body) and a
# database without migrations each exit 1 with the reason on the FAIL line;
# the key is never printed; `run` logs the same checks at start.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd psql
BIN=${OPTSNAP_BIN:?}
e2e_tmpdir >/dev/null
OUT=$E2E_TMP
KEY="check-key-$(date +%s%N)"
DB=$(e2e_db h12_check_good)
EMPTY=$(pgtest_createdb h12_check_empty)
sim_start "$OUT/sim.log" --underlyings SPY,QQQ --contracts 20 --always-open --api-key "$KEY" --unentitled QQQ
SIM1_URL=$SIM_URL

run_check() { # OUTFILE, then env assignments and flags
    local out=$1; shift
    local rc=0
    env "$@" >"$out" 2>&1 || rc=$?
    echo "$rc"
}

# 1. good key, entitled underlying, migrated database
rc=$(run_check "$OUT/good.out" DATABASE_URL="$DB" OPTSNAP_API_KEY="$KEY" "$BIN" check --api-url "$SIM_URL" --universe SPY)
[ "$rc" = 0 ] || { cat "$OUT/good.out"; fail "good setup: exit $rc, want 0"; }
for name in "api reachable" "api key" "api plan" "api rate limit" "database" "schema" "privileges"; do
    grep -Eq "^$name +ok " "$OUT/good.out" || { cat "$OUT/good.out"; fail "good setup: no ok line for '$name'"; }
done
grep -q " FAIL " "$OUT/good.out" && { cat "$OUT/good.out"; fail "good setup printed a FAIL line"; }

# 2. wrong key: 401 with the API's reason
rc=$(run_check "$OUT/badkey.out" DATABASE_URL="$DB" OPTSNAP_API_KEY="not-$KEY" "$BIN" check --api-url "$SIM_URL" --universe SPY)
[ "$rc" = 1 ] || { cat "$OUT/badkey.out"; fail "wrong key: exit $rc, want 1"; }
grep -Eq "^api key +FAIL .*401.*Unknown API Key" "$OUT/badkey.out" || { cat "$OUT/badkey.out"; fail "wrong key: no FAIL line with the 401 reason"; }

# 3. the plan is not entitled to the first underlying: the real 403 body
rc=$(run_check "$OUT/plan.out" DATABASE_URL="$DB" OPTSNAP_API_KEY="$KEY" "$BIN" check --api-url "$SIM_URL" --universe QQQ,SPY)
[ "$rc" = 1 ] || { cat "$OUT/plan.out"; fail "unentitled: exit $rc, want 1"; }
grep -Eq "^api plan +FAIL .*QQQ.*403.*not entitled" "$OUT/plan.out" || { cat "$OUT/plan.out"; fail "unentitled: no FAIL line with the 403 reason"; }
grep -Eq "^api key +ok " "$OUT/plan.out" || { cat "$OUT/plan.out"; fail "unentitled: the key itself should pass"; }

# 4. a database without migrations
rc=$(run_check "$OUT/empty.out" DATABASE_URL="$EMPTY" OPTSNAP_API_KEY="$KEY" "$BIN" check --api-url "$SIM_URL" --universe SPY)
[ "$rc" = 1 ] || { cat "$OUT/empty.out"; fail "empty database: exit $rc, want 1"; }
grep -Eq "^schema +FAIL .*optsnap migrate" "$OUT/empty.out" || { cat "$OUT/empty.out"; fail "empty database: no schema FAIL line"; }
grep -Eq "^privileges +FAIL .*, option_snapshots \(missing\), " "$OUT/empty.out" || { cat "$OUT/empty.out"; fail "empty database: no privileges FAIL line"; }

# 5. an unreachable API
rc=$(run_check "$OUT/down.out" DATABASE_URL="$DB" OPTSNAP_API_KEY="$KEY" "$BIN" check --api-url "http://127.0.0.1:$(free_port)" --universe SPY)
[ "$rc" = 1 ] || { cat "$OUT/down.out"; fail "unreachable API: exit $rc, want 1"; }
grep -Eq "^api reachable +FAIL " "$OUT/down.out" || { cat "$OUT/down.out"; fail "unreachable API: no FAIL line"; }

# 6. least-privilege roles (sql/roles.sql): the writer passes, the reader does not
SRC=${OPTSNAP_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
psql -X -q -v ON_ERROR_STOP=1 "$DB" -f "$SRC/sql/roles.sql" >/dev/null || fail "roles.sql"
psql -X -q -v ON_ERROR_STOP=1 "$DB" -c "DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'h12_check_writer') THEN CREATE ROLE h12_check_writer LOGIN PASSWORD 'h12pw' IN ROLE optsnap_writer; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'h12_check_reader') THEN CREATE ROLE h12_check_reader LOGIN PASSWORD 'h12pw' IN ROLE optsnap_reader; END IF;
    END \$\$" >/dev/null || fail "login roles"
as_role() { sed -E "s|^postgresql://[^@]*@|postgresql://$1:h12pw@|" <<<"$DB"; }
rc=$(run_check "$OUT/writer.out" DATABASE_URL="$(as_role h12_check_writer)" OPTSNAP_API_KEY="$KEY" "$BIN" check --api-url "$SIM_URL" --universe SPY)
[ "$rc" = 0 ] || { cat "$OUT/writer.out"; fail "optsnap_writer: exit $rc, want 0"; }
rc=$(run_check "$OUT/reader.out" DATABASE_URL="$(as_role h12_check_reader)" OPTSNAP_API_KEY="$KEY" "$BIN" check --api-url "$SIM_URL" --universe SPY)
[ "$rc" = 1 ] || { cat "$OUT/reader.out"; fail "optsnap_reader: exit $rc, want 1"; }
grep -Eq "^privileges +FAIL role h12_check_reader: .*option_snapshots INSERT \(not granted\)" "$OUT/reader.out" || { cat "$OUT/reader.out"; fail "optsnap_reader: no privileges FAIL line"; }
grep -q "h12pw" "$OUT"/*.out && fail "a database password was printed"

# 7. the real API's rate-limit header (the simulator sends it under --realism)
sim_start "$OUT/sim-realism.log" --underlyings SPY --contracts 20 --always-open --api-key "$KEY" --realism
rc=$(run_check "$OUT/ratelimit.out" DATABASE_URL="$DB" OPTSNAP_API_KEY="$KEY" "$BIN" check --api-url "$SIM_URL" --universe SPY)
[ "$rc" = 0 ] || { cat "$OUT/ratelimit.out"; fail "realism simulator: exit $rc, want 0"; }
grep -Eq "^api rate limit +ok +X-RateLimit-Remaining=[1-9][0-9]*$" "$OUT/ratelimit.out" || { cat "$OUT/ratelimit.out"; fail "the rate-limit header was not shown"; }

# 8. `run` runs the same checks at start and logs them: with a wrong key, a
# warning line names the check and the API's reason; with a good setup every
# check is logged ok (the simulator of step 1 still listens at $SIM1_URL)
run_start_checks() { # LOG KEY
    local rc=0
    DATABASE_URL=$DB OPTSNAP_API_KEY=$2 timeout 20 "$BIN" run --api-url "$SIM1_URL" --universe SPY \
        --calendar always --cadence 1s --max-sweeps 1 --listen "" >"$1" 2>&1 || rc=$?
    echo "$rc"
}
run_start_checks "$OUT/run-badkey.log" "not-$KEY" >/dev/null
grep -Eq 'msg="start-up check failed" check="?api key"? result=FAIL detail=.*401.*Unknown API Key' "$OUT/run-badkey.log" ||
    { head -20 "$OUT/run-badkey.log"; fail "run with a wrong key did not log the failed start-up check"; }
run_start_checks "$OUT/run-good.log" "$KEY" >/dev/null
for name in "api reachable" "api key" "api plan" "database" "schema" "privileges"; do
    grep -Eq "msg=\"start-up check\" check=\"?$name\"? result=ok" "$OUT/run-good.log" ||
        { head -20 "$OUT/run-good.log"; fail "run did not log the '$name' start-up check ok"; }
done
grep -q 'msg="start-up check failed"' "$OUT/run-good.log" && { head -20 "$OUT/run-good.log"; fail "run logged a failed start-up check on a good setup"; }

if grep -F -l -e "$KEY" "$OUT"/*.out "$OUT"/run-*.log; then fail "the API key was printed"; fi
for f in good badkey plan empty reader; do sed "s/^/  $f: /" "$OUT/$f.out"; done
echo "check e2e: ok (good=0, wrong key=1, unentitled=1, no migrations=1, unreachable=1, writer role=0, reader role=1; run logs them at start)"
