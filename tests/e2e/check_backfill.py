#!/usr/bin/env python3
"""Checks backfilled rows against the simulator's truth.

usage: check_backfill.py DB_URL SIM_URL RANGE... [--close] [--no-vwap]

RANGE is UNDERLYING:FROM_US:TO_US. For each range:
1. every row with source 'backfill' and last_updated in [from, to] of that
   underlying equals /_sim/truth/dayblock at its last_updated: day_open,
   day_high, day_low, day_close, day_volume, day_vwap, day_change,
   day_change_percent, day_previous_close and day_time EXACTLY (the same
   float8, compared as Python floats parsed from shortest round-trip text);
   greeks, IV, open interest, quotes and trades are NULL;
2. completeness: for every contract listed at `from`, the set of its row
   keys in [from, to) (also = to with --close: the range ends at the session
   close) is exactly the set of its minute bars' ends there (served by
   /v2/aggs), so no bar is missing and no row is invented.
With --no-vwap (rows from flat files, which have no vwap column) day_vwap
must be NULL and every other column is compared as above.
Prints one summary line; exits 1 on any mismatch. Standard library + psql.
"""
import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

DAY = [("day_open", "open"), ("day_high", "high"), ("day_low", "low"), ("day_close", "close"),
       ("day_volume", "volume"), ("day_vwap", "vwap"), ("day_change", "change"),
       ("day_change_percent", "change_percent"), ("day_previous_close", "previous_close")]
NULLS = ["implied_volatility", "open_interest", "delta", "gamma", "theta", "vega", "bid", "ask",
         "trade_price", "trade_time", "quote_time"]


def psql(db, sql):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", db, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def get(url, key=False):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer e2e-secret-key"} if key else {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read().decode())


NO_VWAP = "--no-vwap" in sys.argv


def check_row(sim, row):
    ticker, lu = row[0], int(row[1])
    vals = row[2:]
    truth = get(f"{sim}/_sim/truth/dayblock?ticker={ticker}&at={lu}")
    day = truth["day"]
    errs = []
    for (col, key), v in zip(DAY, vals[:len(DAY)]):
        want = day.get(key)
        got = None if v == "" else float(v)
        if NO_VWAP and col == "day_vwap":
            if got is not None:
                errs.append(f"day_vwap: db {got} but flat files carry no vwap (want NULL)")
            continue
        if want is None or got is None:
            if want is not None or got is not None:
                errs.append(f"{col}: db {got} truth {want}")
        elif float(want) != got:
            errs.append(f"{col}: db {got!r} truth {float(want)!r}")
    day_time = int(vals[len(DAY)])
    if day_time != day["last_updated"] // 1000:
        errs.append(f"day_time: db {day_time} truth {day['last_updated'] // 1000}")
    if any(v != "" for v in vals[len(DAY) + 1:]):
        errs.append("historically unknown columns are not NULL")
    return f"{ticker} @ {lu}: " + "; ".join(errs) if errs else None


def local_date(us):
    import datetime
    return datetime.datetime.fromtimestamp(us / 1e6 - 5 * 3600, datetime.timezone.utc).strftime("%Y-%m-%d")


def expected_keys(sim, ticker, frm, to, close):
    keys = set()
    for d in sorted({local_date(frm), local_date(to - 1)}):
        url = f"{sim}/v2/aggs/ticker/{ticker}/range/1/minute/{d}/{d}?sort=asc&limit=50000"
        page = get(url, key=True)
        for b in page.get("results", []):
            end = b["t"] * 1000 + 60_000_000
            if frm <= end < to or (close and end == to):
                keys.add(end)
    return keys


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    close = "--close" in sys.argv
    db, sim, ranges = args[0], args[1].rstrip("/"), args[2:]
    cols = ", ".join(c for c, _ in DAY)
    nulls = ", ".join(NULLS)
    checked = contracts = 0
    errors = []
    with ThreadPoolExecutor(8) as pool:
        for spec in ranges:
            und, frm, to = spec.split(":")
            frm, to = int(frm), int(to)
            upper = "<=" if close else "<"
            rows = psql(db, f"""SELECT s.ticker, (extract(epoch FROM s.last_updated) * 1000000)::int8, {cols},
                    (extract(epoch FROM s.day_time) * 1000000)::int8, {nulls}
                FROM option_snapshots s JOIN options o USING (ticker)
               WHERE o.underlying = '{und}' AND s.source = 'backfill'
                 AND s.last_updated >= to_timestamp({frm} / 1e6) AND s.last_updated {upper} to_timestamp({to} / 1e6)""")
            for e in pool.map(lambda r: check_row(sim, r), rows):
                if e:
                    errors.append(e)
            checked += len(rows)
            have = {}
            for r in rows:
                have.setdefault(r[0], set()).add(int(r[1]))
            listed = [c["ticker"] for c in get(f"{sim}/_sim/truth/contracts?underlying={und}&at={frm}")["results"]]
            contracts += len(listed)
            want_all = dict(zip(listed, pool.map(lambda t: expected_keys(sim, t, frm, to, close), listed)))
            for t in set(listed) | set(have):
                want, got = want_all.get(t, set()), have.get(t, set())
                if want != got:
                    errors.append(f"{und} {t}: {len(want - got)} bar(s) without a row, {len(got - want)} row(s) without a bar")
    if errors:
        for e in errors[:20]:
            print("MISMATCH", e)
        print(f"check_backfill: {len(errors)} mismatches in {checked} rows")
        return 1
    if checked == 0:
        print("check_backfill: no backfilled rows to check")
        return 1
    print(f"check_backfill: ok: {checked} rows equal the truth exactly; {contracts} contracts complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
