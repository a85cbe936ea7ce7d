#!/usr/bin/env bash
# optsnap run against `mock-api --realism`: the real API's shapes (ms
# day.last_updated beside ns quote times, timeframe DELAYED, no fmv, greeks
# {} and no IV for some contracts, contracts with no event time at all,
# next_url on an alias host, a 403 for an unentitled underlying, an index
# I:SPX whose chain holds SPX and SPXW roots and underlying_asset.value,
# adjusted contracts (SPY1) with deliverables, the New York calendar). Asserted in
# PostgreSQL against the simulator's own pages: every contract stored, none
# rejected whole, the field-level gaps NULL, rows without an event time keyed
# on the sweep's window and flagged, the 403 in /readyz and the metrics.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_pg
skip_unless_cmd psql curl python3
BIN=${OPTSNAP_BIN:?}
e2e_tmpdir >/dev/null
OUT=$E2E_TMP
KEY="realism-key-$(date +%s%N)"
DB=$(e2e_db h12_realism)
PORT=$(free_port)
# Monday 2026-11-16: the two expiries listed are the monthly 11-20 (root SPX)
# and the weekly 11-27 (root SPXW)
e2e_spawn "$OUT/sim.log" "$BIN" mock-api --port "$PORT" --underlyings SPY,QQQ,IWM,I:SPX --contracts 120 --always-open \
    --api-key "$KEY" --realism --unentitled IWM --link-host "localhost:$PORT" --clock 2026-11-16T15:00:00Z
wait_for_port "$PORT" 10 || fail "simulator"
SIM="http://127.0.0.1:$PORT"
SIM_URL=$SIM
LPORT=$(free_port)
# page_limit 50 over 120 contracts: 3 pages per sweep, pages 2-3 on the alias host
DATABASE_URL=$DB OPTSNAP_API_KEY=$KEY e2e_spawn "$OUT/run.log" "$BIN" run --api-url "$SIM" \
    --api-allowed-hosts "localhost:$PORT" --universe SPY,QQQ,IWM,I:SPX --calendar always --cadence 1s \
    --clock "$(sim_shared_clock)" --page-limit 50 --listen "127.0.0.1:$LPORT"
RUN=$E2E_LAST_PID
wait_for_port "$LPORT" 10 || fail "listener"
E2E_WAIT=30 wait_for bash -c "[ \$(psql -X -Atq '$DB' -c \"SELECT count(DISTINCT window_start) FROM ingest_coverage WHERE underlying IN ('SPY','QQQ','I:SPX')\") -ge 3 ]" \
    || { tail -30 "$OUT/run.log"; fail "three covered sweeps did not happen"; }
readyz=$(curl -sS "http://127.0.0.1:$LPORT/readyz" || true)
curl -fsS "http://127.0.0.1:$LPORT/metrics" >"$OUT/metrics.txt"
e2e_stop "$RUN" TERM 20

# the 403 is visible
[[ "$readyz" == *IWM*"not entitled"* ]] || fail "/readyz does not name the unentitled underlying: $readyz"
plan=$(sed -nE 's/^optsnap_api_refused_total\{reason="plan"\} ([0-9]+).*/\1/p' "$OUT/metrics.txt")
[ "${plan:-0}" -ge 1 ] || fail "optsnap_api_refused_total{reason=\"plan\"} is ${plan:-absent}"
[ "$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots WHERE underlying = 'IWM'")" = 0 ] || fail "rows stored for the unentitled underlying"

# what the simulator sends, page by page on its own host (one page of 250)
for u in SPY QQQ I:SPX; do
    curl -fsS -H "Authorization: Bearer $KEY" "$SIM/v3/snapshot/options/$u?limit=250" >"$OUT/$u.json"
done
curl -fsS -H "Authorization: Bearer $KEY" "$SIM/v3/snapshot/options/SPY?limit=50" >"$OUT/page1.json"
# adjusted contracts (root SPY1 ...): their deliverables come with the contract
# listing, which backfill stores in options.additional_underlyings
DATABASE_URL=$DB OPTSNAP_API_KEY=$KEY "$BIN" backfill --api-url "$SIM" --universe SPY --underlying SPY \
    --calendar always --from 2026-11-13 --to 2026-11-14 --listen "" >"$OUT/backfill.log" 2>&1 \
    || { tail -20 "$OUT/backfill.log"; fail "backfill of the adjusted contracts' day"; }
adj=$(pg_scalar "$DB" "SELECT count(*) FROM options WHERE ticker ~ '^O:SPY1[0-9]{6}[CP]' AND additional_underlyings @> '[{\"type\":\"equity\",\"underlying\":\"SPY\",\"amount\":100},{\"type\":\"cash\",\"underlying\":\"USD\"}]'")
[ "${adj:-0}" -ge 1 ] || fail "no adjusted contract stored with its deliverables"
plain=$(pg_scalar "$DB" "SELECT count(*) FROM options WHERE ticker ~ '^O:SPY[0-9]{6}[CP]' AND additional_underlyings IS NOT NULL")
[ "$plain" = 0 ] || fail "$plain plain contracts carry deliverables"
# the index chain: stored under both roots, with the index level
psql -X -Atq "$DB" -c "SELECT DISTINCT substring(ticker FROM '^O:([A-Z]+)[0-9]') FROM option_snapshots WHERE ticker LIKE 'O:SPX%' ORDER BY 1" >"$OUT/roots.txt"
[ "$(tr '\n' ' ' <"$OUT/roots.txt")" = "SPX SPXW " ] || fail "index chain roots stored: $(tr '\n' ' ' <"$OUT/roots.txt"), want SPX SPXW"
[ "$(pg_scalar "$DB" "SELECT count(*) FROM option_snapshots WHERE ticker LIKE 'O:SPX%' AND underlying_value IS NULL")" = 0 ] \
    || fail "index rows without underlying_value"

psql -X -Atq -F '|' "$DB" -c "SELECT s.ticker, s.last_updated_fallback, s.day_time IS NULL, (extract(epoch FROM s.day_time) * 1000)::bigint,
    s.delta IS NULL, s.implied_volatility IS NULL, s.fmv IS NULL, coalesce(s.quote_timeframe, '-'), coalesce(s.trade_timeframe, '-'),
    coalesce(s.underlying_timeframe, '-'), s.bid IS NULL
    FROM option_snapshots s JOIN options o USING (ticker) WHERE o.underlying IN ('SPY','QQQ','I:SPX','SPX') AND s.source = 'live'" >"$OUT/rows.txt"
pg_scalar "$DB" "SELECT count(*) FROM ingest_rejects WHERE kind <> 'partial'" >"$OUT/rejects.txt"
python3 - "$OUT" "$PORT" "$adj" <<'PY'
import json, re, sys
out, port = sys.argv[1], sys.argv[2]
def fail(msg):
    print("realism e2e: FAIL: " + msg); sys.exit(1)
page1 = json.load(open(f"{out}/page1.json"))
if f"http://localhost:{port}/" not in page1.get("next_url", ""):
    fail("next_url is not on the alias host: %r" % page1.get("next_url"))
rows = {}
for line in open(f"{out}/rows.txt"):
    t, fb, dnull, dms, dlt, ivn, fmvn, qtf, ttf, utf, bidn = line.rstrip("\n").split("|")
    rows.setdefault(t, []).append(dict(fallback=fb == "t", day_null=dnull == "t", day_ms=int(dms) if dms else None,
        delta_null=dlt == "t", iv_null=ivn == "t", fmv_null=fmvn == "t", qtf=qtf, ttf=ttf, utf=utf, bid_null=bidn == "t"))
sent = {}
for u in ("SPY", "QQQ", "I:SPX"):
    for r in json.load(open(f"{out}/{u}.json"))["results"]:
        sent[r["details"]["ticker"]] = r
if len(sent) < 300:
    fail(f"too few contracts sent ({len(sent)}): the test would prove little")
missing = sorted(set(sent) - set(rows))
if missing:
    fail(f"{len(missing)} contracts sent but not stored, e.g. {missing[:3]}")
n_noevent = n_nogreeks = n_noiv = n_ms = 0
for t, r in sent.items():
    got = rows[t]
    no_event = "last_updated" not in r["day"] and "last_quote" not in r and "last_trade" not in r
    if no_event:
        n_noevent += 1
        if not all(g["fallback"] and g["day_null"] for g in got):
            fail(f"{t}: no event time sent, but a row is not flagged last_updated_fallback")
    else:
        if any(g["fallback"] for g in got):
            fail(f"{t}: flagged fallback although the API sent an event time")
        ms = r["day"]["last_updated"]
        if not (1e12 <= ms < 1e13):
            fail(f"{t}: the simulator's day.last_updated {ms} is not in ms")
        n_ms += 1
        if not all(g["day_ms"] == ms for g in got):
            fail(f"{t}: day_time {sorted(set(g['day_ms'] for g in got))[:5]} != the ms the API sent ({ms})")
    if r.get("greeks") == {}:
        n_nogreeks += 1
        if not all(g["delta_null"] for g in got):
            fail(f"{t}: greeks {{}} but delta stored")
    elif not any(g["delta_null"] is False for g in got):
        fail(f"{t}: greeks sent but delta NULL")
    if "implied_volatility" not in r:
        n_noiv += 1
        if not all(g["iv_null"] for g in got):
            fail(f"{t}: no IV sent but implied_volatility stored")
    if not all(g["fmv_null"] for g in got):
        fail(f"{t}: fmv stored although none was sent")
    for g in got:
        if not g["bid_null"] and g["qtf"] != "DELAYED":
            fail(f"{t}: quote_timeframe {g['qtf']}, want DELAYED")
        if g["utf"] != "DELAYED":
            fail(f"{t}: underlying_timeframe {g['utf']}, want DELAYED")
n_adjusted = sum(1 for t in sent if re.match(r"O:[A-Z]+[0-9][0-9]{6}[CP]", t))  # a root with a digit (SPY1)
for name, n in (("an adjusted root", n_adjusted), ("no event time", n_noevent), ("greeks {}", n_nogreeks), ("no IV", n_noiv), ("ms day time", n_ms)):
    if n == 0:
        fail(f"the simulator sent no contract with {name}: the test proves nothing there")
rejects = int(open(f"{out}/rejects.txt").read().strip() or 0)
if rejects:
    fail(f"{rejects} whole-row rejects (a field-level difference must not cost the row)")
print(f"realism e2e: ok contracts={len(sent)} stored_rows={sum(len(v) for v in rows.values())} "
      f"adjusted={n_adjusted} no_event={n_noevent} greeks_empty={n_nogreeks} no_iv={n_noiv} ms_day={n_ms} refused_plan=yes adjusted_with_deliverables=" + sys.argv[3])
PY

# row by row as truth says (issue 12): every live row equals the simulator's
# snapshot at its key, shapes included (ms times normalised, fields the API
# did not send NULL, rows without an event time keyed inside their window),
# every covered window complete
python3 "$(dirname "$0")/check_truth.py" "$DB" "$SIM" || fail "the realism shapes are not stored as truth says"
