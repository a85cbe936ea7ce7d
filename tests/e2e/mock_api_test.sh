#!/usr/bin/env bash
# mock_api_test.sh - end to end: `optsnap mock-api` over real HTTP with curl:
# auth, 404, a full paginated sweep, truth endpoints, every fault switched on at
# run time through /_sim/faults, stats counters, and a clean SIGTERM exit.
set -u
BIN=${OPTSNAP_BIN:?OPTSNAP_BIN must point at the optsnap binary}
command -v curl >/dev/null || { echo "curl missing"; exit 77; }
command -v python3 >/dev/null || { echo "python3 missing"; exit 77; }

WORK=$(mktemp -d)
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID"; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

FAILS=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

# Frozen clock (--speed 0) so every answer is reproducible within the test.
"$BIN" mock-api --port 0 --underlyings SPY,QQQ --contracts 400 --seed 3 \
    --clock 2026-11-03T18:00:00Z --speed 0 --api-key secret 2>"$WORK/err" &
PID=$!
for _ in $(seq 1 100); do
    grep -q 'msg="listening"' "$WORK/err" 2>/dev/null && break
    sleep 0.05
done
ADDR=$(grep -o 'addr=[^ ]*' "$WORK/err" | head -1 | cut -d= -f2)
PER=$(grep -o 'contracts_per_underlying=[0-9]*' "$WORK/err" | head -1 | cut -d= -f2)
[ -n "$ADDR" ] || { echo "server did not start"; cat "$WORK/err"; exit 1; }
BASE="http://$ADDR"
AUTH=(-H "Authorization: Bearer secret")
echo "server at $BASE, $PER contracts per underlying"

code() { curl -s -o "$WORK/body" -D "$WORK/head" -w '%{http_code}' "$@"; }
json() { python3 -c "import json,sys; d=json.load(open('$WORK/body')); $1"; }

# --- auth and errors ---
check "401 without a key" test "$(code "$BASE/v3/snapshot/options/SPY")" = 401
check "401 envelope (missing)" json "assert d['status']=='NOT_AUTHORIZED' and len(d['request_id'])==32 and d['message']"
check "401 with a wrong key" test "$(code -H 'Authorization: Bearer nope' "$BASE/v3/snapshot/options/SPY")" = 401
check "401 envelope (wrong)" json "assert d['status']=='ERROR' and d['error']=='Unknown API Key'"
check "apiKey query accepted" test "$(code "$BASE/v3/snapshot/options/SPY?apiKey=secret&limit=1")" = 200
check "404 unknown route" test "$(code "${AUTH[@]}" "$BASE/v9/nothing")" = 404
check "404 envelope" json "assert d['status']=='NOT_FOUND' and d['request_id'] and d['message']"
check "400 bad limit" test "$(code "${AUTH[@]}" "$BASE/v3/snapshot/options/SPY?limit=251")" = 400

# --- full sweep through next_url ---
sweep() { # $1 = first URL; prints "rows unique pages"
    local url=$1 pages=0 n=0
    : >"$WORK/tickers"
    while [ -n "$url" ] && [ $pages -lt 2000 ]; do
        [ "$(code "${AUTH[@]}" "$url")" = 200 ] || { echo "status $(head -1 "$WORK/head")"; return 1; }
        python3 -c "
import json; d=json.load(open('$WORK/body'))
assert d['status']=='OK'
for r in d['results']: print(r['details']['ticker'])" >>"$WORK/tickers" || return 1
        url=$(json "print(d.get('next_url',''))")
        case "$url" in *apiKey*|*secret*) echo "next_url carries the key"; return 1 ;; esac
        pages=$((pages + 1))
    done
    echo "$(wc -l <"$WORK/tickers") $(sort -u "$WORK/tickers" | wc -l) $pages"
}
read -r ROWS UNIQ PAGES <<<"$(sweep "$BASE/v3/snapshot/options/SPY?limit=50")"
check "sweep covers every contract once ($ROWS rows, $PAGES pages)" test "$ROWS" = "$PER" -a "$UNIQ" = "$PER"
read -r ROWS UNIQ PAGES <<<"$(sweep "$BASE/v3/snapshot/options/QQQ?limit=33&sort=strike_price&order=desc&contract_type=put")"
check "filtered sweep (puts, strike desc): $ROWS rows" test "$ROWS" = $((PER / 2)) -a "$UNIQ" = "$ROWS"

# --- single contract, truth, aggs, reference ---
T=$(head -1 "$WORK/tickers")
check "single contract" test "$(code "${AUTH[@]}" "$BASE/v3/snapshot/options/QQQ/$T")" = 200
json "print(json.dumps(d['results'],sort_keys=True))" >"$WORK/single"
code "$BASE/_sim/truth/snapshot?ticker=$T" >/dev/null
json "print(json.dumps(d['results'],sort_keys=True))" >"$WORK/truth"
check "truth snapshot = served snapshot" cmp -s "$WORK/single" "$WORK/truth"
check "truth contracts" test "$(code "$BASE/_sim/truth/contracts?underlying=SPY")" = 200
check "truth contracts count" json "assert d['count']==$PER and all(r['last_updated_us']>0 for r in d['results'])"

# A busy-ish contract: the one with most trades today per the truth day block.
BEST=
for t in $(sort -u "$WORK/tickers" | head -60); do
    code "$BASE/_sim/truth/dayblock?ticker=$t" >/dev/null
    nb=$(json "print(d['day']['bars'])")
    if [ "$nb" -gt 3 ]; then BEST=$t; break; fi
done
if [ -n "$BEST" ]; then
    cp "$WORK/body" "$WORK/dayblock"
    check "aggs minute bars" test "$(code "${AUTH[@]}" "$BASE/v2/aggs/ticker/$BEST/range/1/minute/2026-11-03/2026-11-03?limit=2")" = 200
    # follow next_url, then aggregate the bars like a backfill does
    : >"$WORK/bars"
    URL="$BASE/v2/aggs/ticker/$BEST/range/1/minute/2026-11-03/2026-11-03?limit=2"
    for _ in $(seq 1 500); do
        code "${AUTH[@]}" "$URL" >/dev/null
        json "[print(json.dumps(b)) for b in d.get('results',[])]" >>"$WORK/bars"
        URL=$(json "print(d.get('next_url',''))")
        [ -z "$URL" ] && break
    done
    check "day block = aggregated minute bars ($BEST)" python3 -c "
import json
bars=[json.loads(l) for l in open('$WORK/bars')]
day=json.load(open('$WORK/dayblock'))['day']
assert len(bars)==day['bars'], (len(bars), day['bars'])
assert all(bars[i]['t']<bars[i+1]['t'] for i in range(len(bars)-1))
v=sum(b['v'] for b in bars); vw=sum(b['vw']*b['v'] for b in bars)/v
assert bars[0]['o']==day['open'] and bars[-1]['c']==day['close'], 'open/close'
assert max(b['h'] for b in bars)==day['high'] and min(b['l'] for b in bars)==day['low'], 'high/low'
assert v==day['volume'] and abs(vw-day['vwap'])<1e-9, (vw, day['vwap'])"
else
    fail "no contract with trades found"
fi
check "reference contracts" test "$(code "${AUTH[@]}" "$BASE/v3/reference/options/contracts?underlying_ticker=SPY&limit=1000")" = 200
check "reference rows" json "assert len(d['results'])==$PER and d['results'][0]['underlying_ticker']=='SPY' and 'next_url' not in d"
check "reference expired" test "$(code "${AUTH[@]}" "$BASE/v3/reference/options/contracts?underlying_ticker=SPY&expired=true&limit=5")" = 200
check "reference expired rows" json "assert len(d['results'])==5 and d['results'][0]['expiration_date']<'2026-11-03' and 'cursor=' in d['next_url']"

# --- faults, switched on at run time ---
setf() { curl -s -o /dev/null -w '%{http_code}' -X POST --data "$1" "$BASE/_sim/faults"; }
PAGE="$BASE/v3/snapshot/options/SPY?limit=100"
check "faults endpoint rejects unknown names" test "$(setf 'nonsense-rate=1')" = 400
setf "429-rate=1&retry-after=7" >/dev/null
check "429" test "$(code "${AUTH[@]}" "$PAGE")" = 429
check "429 Retry-After" grep -qi '^Retry-After: 7' "$WORK/head"
check "429 envelope" json "assert d['status']=='ERROR' and d['request_id']"
setf "clear=1&5xx-rate=1" >/dev/null
S=$(code "${AUTH[@]}" "$PAGE")
check "5xx ($S)" test "$S" -ge 500 -a "$S" -le 503
setf "clear=1&reset-rate=1" >/dev/null
curl -s -o /dev/null "${AUTH[@]}" "$PAGE"; RC=$?
check "reset (curl exit $RC)" test "$RC" -ne 0
setf "clear=1&truncate-rate=1" >/dev/null
curl -s -o /dev/null "${AUTH[@]}" "$PAGE"; RC=$?
check "truncate (curl exit $RC)" test "$RC" = 18
setf "clear=1&malformed-rate=1" >/dev/null
code "${AUTH[@]}" "$PAGE" >/dev/null
check "malformed JSON" bash -c "! python3 -c 'import json; json.load(open(\"$WORK/body\"))' 2>/dev/null"
setf "clear=1&slow-rate=1&slow-ms=400" >/dev/null
TM=$(curl -s -o /dev/null -w '%{time_total}' "${AUTH[@]}" "$PAGE")
check "slow ($TM s)" python3 -c "assert $TM >= 0.38"
setf "clear=1&stall-rate=1&stall-ms=400" >/dev/null
TM=$(curl -s -o "$WORK/body" -w '%{time_total}' "${AUTH[@]}" "$PAGE")
check "stall ($TM s) then a complete body" python3 -c "
import json; assert $TM >= 0.38; json.load(open('$WORK/body'))"
setf "clear=1&cursor-loop-rate=1" >/dev/null
code "${AUTH[@]}" "$PAGE" >/dev/null
N1=$(json "print(d['next_url'])")
code "${AUTH[@]}" "$N1" >/dev/null
N2=$(json "print(d['next_url'])")
check "cursor loop (next_url repeats)" test "$N1" = "$N2"
setf "clear=1&bad-row-rate=1" >/dev/null
for _ in 1 2 3 4 5 6; do code "${AUTH[@]}" "$PAGE" >/dev/null; done
code "$BASE/_sim/injected" >/dev/null
check "bad rows recorded" json "assert d['count']==6 and all(r['ticker'].startswith('O:SPY') and r['reason'] for r in d['results'])"
setf "clear=1&outage=2026-11-03T17:00:00Z..2026-11-03T19:00:00Z" >/dev/null
check "outage 503" test "$(code "${AUTH[@]}" "$PAGE")" = 503
setf "outage-mode=reset" >/dev/null
curl -s -o /dev/null "${AUTH[@]}" "$PAGE"; RC=$?
check "outage reset (curl exit $RC)" test "$RC" -ne 0
setf "clear=1&outage-mode=503" >/dev/null
check "cleared: 200 again" test "$(code "${AUTH[@]}" "$PAGE")" = 200

# --- counters ---
code "$BASE/_sim/stats" >/dev/null
check "stats counters" json "
f=d['faults']
assert all(f[k]>=1 for k in ['429','5xx','reset','truncate','malformed','slow','stall','cursor_loop','bad_row']), f
assert d['unauthorized']==2 and d['not_found']>=1 and d['rows']>=2*$PER and d['outage_replies']==2, d"

# --- shutdown ---
kill -TERM "$PID"
wait "$PID"; RC=$?
PID=
check "SIGTERM exits 0 (got $RC)" test "$RC" = 0
check "stats line on exit" grep -q 'msg="mock-api stats".*fault_bad_row=6' "$WORK/err"

echo "failures: $FAILS"
[ "$FAILS" = 0 ]
