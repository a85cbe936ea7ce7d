#!/usr/bin/env bash
# End to end: `optsnap rejects` lists the dead letter and `--replay` recovers
# what an older parser rejected, exactly once.
#  1. ingest_rejects holds rows an older parser turned away for reasons
#     today's parser no longer has (a day.last_updated in ms read as an
#     impossible ns; a "partial" whose fmv an old parser could not read, with
#     the degraded row stored), a row the database refused (a trigger), a
#     reject that is still bad, and 300 more old rejects;
#  2. listing: table, json (with the raw text), filters by kind and reason;
#  3. --dry-run writes nothing; --replay with the trigger still there leaves
#     the refused row (exit 3); after it is dropped, a replay recovers every
#     row but the still-bad one, with the values of the API's text;
#  4. a second replay writes nothing (no new row version anywhere);
#  5. two replays at once over the 300: each written once, none twice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd psql python3
BIN=${OPTSNAP_BIN:?}
FIX=${OPTSNAP_FIXTURES:?}
e2e_tmpdir >/dev/null
TMP=$E2E_TMP
DB=$(pgtest_createdb optsnap_e2e_rejects)
export DATABASE_URL=$DB
"$BIN" migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log"; fail "migrate"; }

# ---- 1. the dead letter an older parser left ----
python3 - "$FIX/massive-com__client-python/test_rest/mocks/v3/snapshot/options/AAPL.json" >"$TMP/seed.sql" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
# the exact text of results[0], as the API sent it (what the parser stores as raw)
start = text.index("[{") + 1
end = text.index("}],") + 1
raw = text[start:end]
assert json.loads(raw)["details"]["ticker"] == "O:AAPL230616C00150000"
def q(s):
    assert "$r$" not in s
    return "$r$" + s + "$r$"
def reject(raw, reason, kind="reject", key="NULL", und="AAPL"):
    return (f"INSERT INTO ingest_rejects (underlying, ticker, reason, raw, request_id, kind, key_time, received_at) "
            f"VALUES ('{und}', 'O:AAPL230616C00150000', {q(reason)}, {q(raw)}, '104d9b901d0c9e81d284cb8b41c5cdd3', "
            f"'{kind}', {key}, now() - interval '1 day');")
out = []
# (a) day.last_updated in milliseconds: an ns-only parser called it out of range and lost the row
ms = raw.replace('"last_updated": 1651204800000000000', '"last_updated": 1651204800000')
ms = ms.replace("O:AAPL230616C00150000", "O:AAPL230616P00145000").replace('"call"', '"put"').replace(
    '"strike_price": 150', '"strike_price": 145')
assert ms != raw
out.append(reject(ms, "day.last_updated: timestamp out of range"))
# (b) a partial: the row was stored without fmv by a parser that could not read it
out.append(reject(raw, "fmv: not a number", kind="partial", key="'2023-03-13 14:42:07.714665+00'"))
out.append("INSERT INTO options (ticker, underlying, contract_type, exercise_style, expiration_date, strike_price, "
           "shares_per_contract, first_seen, last_seen) VALUES ('O:AAPL230616C00150000', 'AAPL', 'call', 'american', "
           "'2023-06-16', 150, 100, now(), now());")
out.append("INSERT INTO option_snapshots (ticker, last_updated, day_close, underlying, source) VALUES "
           "('O:AAPL230616C00150000', '2023-03-13 14:42:07.714665+00', 29, 'AAPL', 'live');")
# (c) a row the database refused (the raw a refused row keeps: the API's shape)
refused = raw.replace("O:AAPL230616C00150000", "O:AAPL230616C00155000").replace('"strike_price": 150', '"strike_price": 155')
out.append(reject(refused, "database 22023: refused by policy", kind="refused", key="'2023-03-13 14:42:07.714665+00'"))
# (d) still bad today: no OCC ticker
out.append(reject(raw.replace("O:AAPL230616C00150000", "AAPL-BAD"), "details.ticker: not an OCC symbol"))
# (e) 300 more, each its own contract, for the concurrent replays
for i in range(300):
    strike = 200 + i
    r = raw.replace("O:AAPL230616C00150000", "O:AAPL230616C%05d000" % strike).replace(
        '"strike_price": 150', '"strike_price": %d' % strike)
    out.append(reject(r, "old parser: bulk", und="AAPL").replace("'O:AAPL230616C00150000'", "'O:AAPL230616C%05d000'" % strike))
print("\n".join(out))
PY
psql "$DB" -v ON_ERROR_STOP=1 -qAt -f "$TMP/seed.sql" >/dev/null
psql "$DB" -v ON_ERROR_STOP=1 -qAt -c "CREATE FUNCTION refuse_155() RETURNS trigger LANGUAGE plpgsql AS \$\$
    BEGIN IF NEW.ticker = 'O:AAPL230616C00155000' THEN
    RAISE EXCEPTION 'refused by policy' USING ERRCODE = '22023'; END IF; RETURN NEW; END \$\$;
    CREATE TRIGGER refuse_155 BEFORE INSERT ON option_snapshots FOR EACH ROW EXECUTE FUNCTION refuse_155()" >/dev/null
[ "$(pg_scalar "$DB" "SELECT count(*) FROM ingest_rejects")" = 304 ] || fail "seed"

# ---- 2. listing ----
out=$("$BIN" rejects --limit 500)
[[ "$out" == *"304 rejects"* ]] || fail "table listing: $(tail -1 <<<"$out")"
[[ "$out" == *"partial"*"fmv: not a number"* ]] || fail "table lacks the partial reject"
out=$("$BIN" rejects --kind refused --format json)
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["count"]==1, d; r=d["rejects"][0]; \
assert r["kind"]=="refused" and r["replayed_at"] is None and "\"sip_timestamp\": 1678718527714665700" in r["raw"], r' "$out" ||
    fail "json listing by kind"
[ "$("$BIN" rejects --reason 'TIMESTAMP OUT' --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')" = 1 ] ||
    fail "--reason filter"
rc=0; "$BIN" rejects --kind nope >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "a bad --kind must exit 2, got $rc"
echo "rejects e2e: listing ok"

# ---- 3. replay ----
snap() { pg_scalar "$DB" "SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM option_snapshots"; }
before=$(snap)
out=$("$BIN" rejects --replay --dry-run --reason 'out of range')
[[ "$out" == *"examined=1 written=1 "* ]] || fail "dry run: $out"
[ "$(snap)" = "$before" ] || fail "a dry run wrote rows"
[ "$(pg_scalar "$DB" "SELECT count(*) FROM ingest_rejects WHERE replayed_at IS NOT NULL")" = 0 ] || fail "a dry run marked rejects"

rc=0; out=$("$BIN" rejects --replay --underlying AAPL --reason 'refused by policy' 2>"$TMP/replay1.err") || rc=$?
[ "$rc" = 3 ] || fail "a row refused again must exit 3, got $rc: $out"
[[ "$out" == *"examined=1 written=0 unchanged=0 partial=0 still_rejected=0 failed=1"* ]] || fail "refused again: $out"
[ "$(pg_scalar "$DB" "SELECT count(*) FROM ingest_rejects WHERE kind = 'refused' AND replayed_at IS NULL")" = 1 ] ||
    fail "a failed replay marked its reject"
psql "$DB" -v ON_ERROR_STOP=1 -qAt -c "DROP TRIGGER refuse_155 ON option_snapshots" >/dev/null

out=$("$BIN" rejects --replay --limit 4)
[[ "$out" == *"examined=4 written=3 unchanged=0 partial=0 still_rejected=1 failed=0"* ]] || fail "replay: $out"
# the rows hold the API's values: the ms day time read as ms, fmv read at last
[ "$(pg_scalar "$DB" "SELECT day_time FROM option_snapshots WHERE ticker = 'O:AAPL230616P00145000'")" = "2022-04-29 04:00:00+00" ] ||
    fail "the ms day time"
[ "$(pg_scalar "$DB" "SELECT fmv || '|' || day_open || '|' || trade_conditions::text FROM option_snapshots
                      WHERE ticker = 'O:AAPL230616C00150000' AND last_updated = '2023-03-13 14:42:07.714665+00'")" = "20.5|29.99|[209]" ] ||
    fail "the partial row was not restored"
[ "$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots WHERE ticker = 'O:AAPL230616C00150000'")" = 1 ] ||
    fail "the partial's replay made a second row"
[ "$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots WHERE ticker = 'O:AAPL230616C00155000'")" = 1 ] ||
    fail "the refused row"
[ "$(pg_scalar "$DB" "SELECT replay_result FROM ingest_rejects WHERE ticker = 'AAPL-BAD' OR raw LIKE '%AAPL-BAD%'")" = \
  "still rejected: details.ticker: not an OCC symbol" ] || fail "the still-bad reject's note"
echo "rejects e2e: replay ok"

# ---- 4. a second replay of those writes nothing ----
before=$(snap)
out=$("$BIN" rejects --replay --limit 1)
[[ "$out" == *"examined=1 written=0 unchanged=0 partial=0 still_rejected=1 failed=0"* ]] || fail "second replay: $out"
[ "$(snap)" = "$before" ] || fail "a second replay changed option_snapshots"

# ---- 5. two replays at once: each reject written once ----
e2e_spawn "$TMP/a.out" "$BIN" rejects --replay --reason bulk
A=$E2E_LAST_PID
e2e_spawn "$TMP/b.out" "$BIN" rejects --replay --reason bulk
B=$E2E_LAST_PID
e2e_stop "$A" CONT 120; [ "$E2E_STOP_RC" = 0 ] || fail "replay A exit $E2E_STOP_RC: $(cat "$TMP/a.out")"
e2e_stop "$B" CONT 120; [ "$E2E_STOP_RC" = 0 ] || fail "replay B exit $E2E_STOP_RC: $(cat "$TMP/b.out")"
wa=$(sed -n 's/.* written=\([0-9]*\) .*/\1/p' "$TMP/a.out")
wb=$(sed -n 's/.* written=\([0-9]*\) .*/\1/p' "$TMP/b.out")
[ $(( wa + wb )) = 300 ] || fail "two replays wrote $wa + $wb rows, want 300 once"
[ "$(pg_scalar "$DB" "SELECT count(*) FROM ingest_rejects WHERE reason = 'old parser: bulk' AND replayed_at IS NOT NULL
                      AND replay_result = 'written'")" = 300 ] || fail "bulk rejects not all marked once"
[ "$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots WHERE ticker LIKE 'O:AAPL230616C00%' AND ticker NOT IN
                      ('O:AAPL230616C00150000', 'O:AAPL230616C00155000')")" = 300 ] || fail "bulk rows"
out=$("$BIN" rejects --replay)
[[ "$out" == *"written=0 unchanged=0 partial=0"* ]] || fail "replay after all: $out"
echo "rejects e2e: ok (concurrent replays wrote $wa + $wb)"
