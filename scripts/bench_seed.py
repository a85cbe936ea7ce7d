#!/usr/bin/env python3
"""bench_seed.py - the seed's ingestion pattern, as a peer in scripts/bench.sh:
every page of each underlying's chain snapshot is fetched, and every contract
becomes two autocommitted statements on a pooled connection (threads stand in
for the seed's asyncio tasks; the pool size is its DB semaphore):
  INSERT INTO options ... ON CONFLICT (ticker) DO UPDATE SET last_seen = ...
  INSERT INTO option_snapshots ... ON CONFLICT (ticker, last_updated) DO UPDATE SET <every column>
with the foreign key assigned directly. Prints one line: rows, seconds, rows/s.
usage: bench_seed.py DATABASE_URL API_URL UNDERLYINGS_FILE [--threads N]
Needs python3-psycopg2 (Debian's package)."""
import concurrent.futures
import json
import sys
import threading
import time
import urllib.request

import psycopg2
import psycopg2.pool

COLS = ["day_open", "day_high", "day_low", "day_close", "day_volume", "day_vwap", "day_change",
        "day_change_percent", "day_previous_close", "implied_volatility", "open_interest", "delta", "gamma",
        "theta", "vega", "bid", "ask", "bid_size", "ask_size", "midpoint", "trade_price", "trade_size",
        "trade_exchange", "underlying_price", "break_even_price", "fmv"]
SNAP_SQL = ("INSERT INTO option_snapshots (ticker, last_updated, underlying, source, " + ", ".join(COLS) + ") "
            "VALUES (%s, to_timestamp(%s / 1e6), %s, 'live', " + ", ".join(["%s"] * len(COLS)) + ") "
            "ON CONFLICT (ticker, last_updated) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLS))
OPT_SQL = ("INSERT INTO options (ticker, underlying, contract_type, exercise_style, expiration_date, strike_price, "
           "shares_per_contract, first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s, "
           "to_timestamp(%s / 1e6), to_timestamp(%s / 1e6)) ON CONFLICT (ticker) DO UPDATE SET last_seen = EXCLUDED.last_seen")


def to_us(v):
    """A timestamp of unknown unit, by magnitude, as epoch microseconds."""
    if not isinstance(v, (int, float)) or v <= 0:
        return 0
    if v > 1e17:
        return int(v // 1000)
    if v > 1e14:
        return int(v)
    if v > 1e11:
        return int(v * 1000)
    return int(v * 1e6)


def row_params(r, underlying):
    d, day, g = r.get("details", {}), r.get("day", {}), r.get("greeks", {})
    q, t, u = r.get("last_quote", {}), r.get("last_trade", {}), r.get("underlying_asset", {})
    at = max(to_us(day.get("last_updated")), to_us(q.get("last_updated")), to_us(t.get("sip_timestamp")))
    vals = [day.get("open"), day.get("high"), day.get("low"), day.get("close"), day.get("volume"), day.get("vwap"),
            day.get("change"), day.get("change_percent"), day.get("previous_close"), r.get("implied_volatility"),
            r.get("open_interest"), g.get("delta"), g.get("gamma"), g.get("theta"), g.get("vega"), q.get("bid"),
            q.get("ask"), q.get("bid_size"), q.get("ask_size"), q.get("midpoint"), t.get("price"), t.get("size"),
            t.get("exchange"), u.get("price"), r.get("break_even_price"), r.get("fmv")]
    ints = {"day_volume", "open_interest", "bid_size", "ask_size", "trade_size", "trade_exchange"}
    vals = [int(v) if (c in ints and v is not None) else v for c, v in zip(COLS, vals)]
    opt = (d["ticker"], underlying, d.get("contract_type", "other"), d.get("exercise_style"),
           d.get("expiration_date"), d.get("strike_price"), d.get("shares_per_contract"), at, at)
    return opt, (d["ticker"], at, underlying, *vals)


def main():
    args = sys.argv[1:]
    threads = 32
    if "--threads" in args:
        i = args.index("--threads")
        threads = int(args[i + 1])
        del args[i:i + 2]
    dburl, api, ufile = args
    underlyings = [x for x in open(ufile).read().split() if x]
    pool = psycopg2.pool.ThreadedConnectionPool(1, threads, dburl)
    local = threading.local()

    def write(underlying, r):
        if not hasattr(local, "conn"):
            local.conn = pool.getconn()
            local.conn.autocommit = True
        opt, snap = row_params(r, underlying)
        with local.conn.cursor() as cur:
            cur.execute(OPT_SQL, opt)
            cur.execute(SNAP_SQL, snap)

    def fetch(url):
        req = urllib.request.Request(url, headers={"Authorization": "Bearer bench"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.load(resp)

    t0 = time.time()
    rows = 0
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        futures = []
        for u in underlyings:
            url = f"{api}/v3/snapshot/options/{u}?limit=250"
            while url:
                page = fetch(url)
                for r in page.get("results", []):
                    futures.append(ex.submit(write, u, r))
                    rows += 1
                url = page.get("next_url")
        for f in futures:
            f.result()
    secs = time.time() - t0
    print(f"rows={rows} seconds={secs:.2f} rows_per_s={rows / secs:.0f}")


if __name__ == "__main__":
    main()
