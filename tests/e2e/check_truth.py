#!/usr/bin/env python3
"""Compares option_snapshots with the simulator's truth, row by row.

usage: check_truth.py DB_URL SIM_URL [--clock SIM_US@REAL_S --speed X] [--rejects]

1. Every row in option_snapshots equals the simulator's snapshot of that
   contract at that row's last_updated (every column; floats exactly, since
   they travel as binary float8 end to end).
2. Every covered window is complete: each contract listed at the window start
   has a row whose key lies between its last event at the window's start and
   at the window's end. The bound is the window's end, never the commit time:
   a window swept again later (a clock stepped back), or marked with data
   from after it, is the breach this check exists to find (issue 11).
   --allow-overrun (needs --clock) tolerates a sweep that overran its window
   by less than one window (retries under HTTP faults): the bound is then the
   commit, capped at the window's end plus one window length, so a window
   swept again later (a clock stepped back) is still a breach.
   --bound-commit (needs --clock): the old bound, the commit, however late;
   only for tests that stall a sweep on purpose (pressure).
3. With --rejects: every bad row the simulator injected into a page the
   daemon ingested (not a one-row start-up probe) is in ingest_rejects when
   its window is covered, matched by the request_id of its page and, when
   the parser could keep one, its ticker.
Prints one summary line; exits 1 on any mismatch.
Standard library only (plus the psql client).
"""
import collections
import json
import subprocess
import sys
import urllib.request

COLUMNS = [
    # (column, json object or None, json key, kind) - kind: f float, i int, t ns timestamp
    ("day_open", "day", "open", "f"), ("day_high", "day", "high", "f"), ("day_low", "day", "low", "f"),
    ("day_close", "day", "close", "f"), ("day_volume", "day", "volume", "i"), ("day_vwap", "day", "vwap", "f"),
    ("day_change", "day", "change", "f"), ("day_change_percent", "day", "change_percent", "f"),
    ("day_previous_close", "day", "previous_close", "f"), ("day_time", "day", "last_updated", "t"),
    ("implied_volatility", None, "implied_volatility", "f"), ("open_interest", None, "open_interest", "i"),
    ("delta", "greeks", "delta", "f"), ("gamma", "greeks", "gamma", "f"), ("theta", "greeks", "theta", "f"),
    ("vega", "greeks", "vega", "f"), ("bid", "last_quote", "bid", "f"), ("ask", "last_quote", "ask", "f"),
    ("bid_size", "last_quote", "bid_size", "i"), ("ask_size", "last_quote", "ask_size", "i"),
    ("midpoint", "last_quote", "midpoint", "f"), ("quote_time", "last_quote", "last_updated", "t"),
    ("trade_price", "last_trade", "price", "f"), ("trade_size", "last_trade", "size", "i"),
    ("trade_exchange", "last_trade", "exchange", "i"), ("trade_time", "last_trade", "sip_timestamp", "t"),
    ("underlying_price", "underlying_asset", "price", "f"),
    ("underlying_time", "underlying_asset", "last_updated", "t"),
    ("change_to_break_even", "underlying_asset", "change_to_break_even", "f"),
    ("break_even_price", None, "break_even_price", "f"), ("fmv", None, "fmv", "f"),
]


def psql(db, sql):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", db, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read().decode())


def expected_value(result, obj, key, kind):
    src = result if obj is None else result.get(obj)
    if not isinstance(src, dict) or src.get(key) is None:
        return None
    v = src[key]
    if kind == "t":
        # by magnitude, as the parser does (DESIGN §3): the real API sends
        # day.last_updated in ms beside ns quote and trade times
        v = int(v)
        if abs(v) < 10**11:
            return v * 1000000  # s
        if abs(v) < 10**14:
            return v * 1000  # ms
        return v if abs(v) < 10**17 else v // 1000  # us, ns
    if kind == "i":
        return int(v)
    return float(v)


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def main():
    db, sim = sys.argv[1], sys.argv[2].rstrip("/")
    check_rejects = "--rejects" in sys.argv
    clock, speed = arg("--clock"), float(arg("--speed", "1"))
    if clock:
        sim_anchor_us, real_anchor_s = clock.split("@")
        sim_anchor_us, real_anchor_s = int(sim_anchor_us), float(real_anchor_s)
    cols = ", ".join(
        f"(extract(epoch from {c}) * 1000000)::int8" if k == "t" else c for c, _, _, k in COLUMNS)
    # live rows only: backfilled rows (repair, the daemon's self-healing) are
    # bars keyed at their end, held to the day-block truth by check_backfill.py
    rows = psql(db, "SELECT ticker, (extract(epoch from last_updated) * 1000000)::int8, "
                    "CASE WHEN last_updated_fallback THEN 'fallback' ELSE 'event' END, "
                    f"{cols} FROM option_snapshots WHERE source = 'live' ORDER BY ticker, last_updated")
    # DESIGN §4: a row stored with a field the parser could not read has that
    # field NULL, and its raw JSON in ingest_rejects (kind 'partial', keyed
    # like the row) naming the field: NULL is what the database must hold there
    partial = {}
    for t, k, reason in psql(db, "SELECT ticker, (extract(epoch from key_time) * 1000000)::int8, reason "
                                 "FROM ingest_rejects WHERE kind = 'partial'"):
        partial.setdefault((t, int(k)), set()).add(reason.split(":")[0])
    mismatches = 0
    for r in rows:
        ticker, key_us, keyed = r[0], int(r[1]), r[2]
        # a row the API sent without an event time is keyed on its window's
        # start and holds the market as it was when the page was served, an
        # instant the database does not keep: held to the truth at the key,
        # which is exact only while the market does not move between the
        # window's start and the fetch (realism_test: speed 1, fetched at once)
        at_us = key_us
        truth = get(f"{sim}/_sim/truth/snapshot?ticker={ticker}&at={at_us}")
        res = truth.get("results", truth)
        for i, (col, obj, key, kind) in enumerate(COLUMNS):
            got = r[3 + i]
            got = None if got == "" else (int(got) if kind in "it" else float(got))
            want = expected_value(res, obj, key, kind)
            if got is None and (key if obj is None else f"{obj}.{key}") in partial.get((ticker, key_us), ()):
                continue
            if got != want:
                mismatches += 1
                if mismatches <= 10:
                    print(f"MISMATCH {ticker} @ {key_us} {col}: db={got!r} truth={want!r}")
        times = [expected_value(res, o, k, "t") for o, k in
                 (("day", "last_updated"), ("last_quote", "last_updated"), ("last_trade", "sip_timestamp"))]
        truth_key = max((t for t in times if t is not None), default=None)
        if truth_key is not None and truth_key != key_us:
            mismatches += 1
            print(f"MISMATCH {ticker}: key {key_us} but truth's last event is {truth_key}")
        if (truth_key is None) != (keyed == "fallback"):
            # DESIGN §3: a row the API sent with no event time is keyed on its
            # sweep's window and flagged; every other row on its own event
            mismatches += 1
            print(f"MISMATCH {ticker} @ {key_us}: keyed on {keyed} but the API sent "
                  f"{'no' if truth_key is None else 'an'} event time")

    windows = psql(db, "SELECT underlying, (extract(epoch from window_start) * 1000000)::int8, "
                       "(extract(epoch from window_end) * 1000000)::int8, extract(epoch from completed_at) "
                       "FROM ingest_coverage WHERE source = 'live' ORDER BY 1, 2")
    have, have_fallback = {}, {}
    for t, k, keyed in ((r[0], int(r[1]), r[2]) for r in rows):
        (have_fallback if keyed == "fallback" else have).setdefault(t, []).append(k)
    # a contract whose row the simulator replaced by a bad one (now in
    # ingest_rejects) is not expected in option_snapshots for that sweep
    replaced = set()
    if check_rejects:
        replaced = {item.get("ticker") for item in get(f"{sim}/_sim/injected").get("results", [])}
    missing = 0
    checked_pairs = 0
    live_windows = [(w[0], int(w[1]), int(w[2]), float(w[3])) for w in windows]
    allow_overrun = ("--allow-overrun" in sys.argv or "--bound-commit" in sys.argv) and clock
    overrun_cap = "--bound-commit" not in sys.argv

    def window_bound(ws, we, done):
        if not allow_overrun:
            return we - 1
        # + 100 ms of real time: the anchor was read a few ms after the simulator's clock was
        commit = sim_anchor_us + int((done - real_anchor_s + 0.1) * speed * 1e6)
        return max(we - 1, min(commit, we - 1 + (we - ws)) if overrun_cap else commit)

    for und, ws, we, done in live_windows:
        end = window_bound(ws, we, done)
        at_start = {c["ticker"]: c for c in get(f"{sim}/_sim/truth/contracts?underlying={und}&at={ws}")["results"]}
        at_end = {c["ticker"]: c for c in get(f"{sim}/_sim/truth/contracts?underlying={und}&at={end}")["results"]}
        for ticker, c in at_start.items():
            if ticker in replaced:
                continue
            lo = int(c["last_updated_us"])
            hi = int(at_end.get(ticker, c)["last_updated_us"])
            checked_pairs += 1
            # a contract sent without an event time has its row keyed inside the window
            if not any(lo <= k <= hi for k in have.get(ticker, [])) and \
                    not any(ws <= k <= end for k in have_fallback.get(ticker, [])):
                missing += 1
                if missing <= 10:
                    print(f"MISSING {und} window {ws}: {ticker} has no row keyed in [{lo}, {hi}]; "
                          f"its keys: {sorted(have.get(ticker, []))}")

    # 3. Injected bad rows. DESIGN §4: a row ends in option_snapshots, in
    # ingest_rejects, or in a window that is not marked covered. A sweep's
    # mark commits only after all of its batches, so when a live mark covers
    # the moment a bad row was fetched, its reject must be in ingest_rejects.
    # A bad row whose sweep never got its mark (the daemon was killed first)
    # satisfies the contract through the uncovered window.
    rejects_missing = 0
    injected = 0
    excused = 0
    probes = 0
    if check_rejects:
        inj = get(f"{sim}/_sim/injected").get("results", [])
        got = psql(db, "SELECT coalesce(ticker, ''), coalesce(request_id, '') FROM ingest_rejects")
        # rejects not yet matched to a bad row, by the request_id of the page
        # they came in (each reject keeps its own page's, DESIGN §4): a bad
        # row's reject carries the simulator's request_id for that response,
        # and its sent ticker when the parser could keep one
        unmatched = collections.Counter((g[0], g[1]) for g in got)

        def take(item):
            rid = item.get("request_id") or ""
            t = item.get("sent_ticker") or ""
            keys = [(t, rid)] if t.startswith("O:") else [k for k in unmatched if k[1] == rid and unmatched[k] > 0]
            for k in keys:
                if unmatched[k] > 0:
                    unmatched[k] -= 1
                    return True
            return False

        def covered_at(underlying, at_us):
            for und, ws, we, done in live_windows:
                if und == underlying and ws <= at_us <= window_bound(ws, we, done):
                    return True
            return False

        # bad rows with a ticker first: a ticker-less one takes any reject of its page left
        for item in sorted(inj, key=lambda i: not (i.get("sent_ticker") or "").startswith("O:")):
            if int(item.get("page_limit", 0)) == 1:
                # a one-row page is a start-up probe (run's and check's "api
                # plan" check): its rows are read to see the plan answers, never
                # ingested, and no window is marked from them
                probes += 1
                continue
            injected += 1
            true_ticker = item.get("ticker") or ""
            # OCC: "O:" + root + a fixed 15-character tail (YYMMDD, C/P, 8-digit strike)
            underlying = true_ticker[2:-15] if true_ticker.startswith("O:") and len(true_ticker) > 17 else ""
            if take(item):
                continue
            if not covered_at(underlying, int(item.get("at_us", 0))):
                excused += 1
                continue
            rejects_missing += 1
            print(f"REJECT MISSING {item.get('sent_ticker') or '(no ticker)'} request_id={item.get('request_id')}: "
                  f"{item.get('reason')} (its window is marked covered)")

    print(f"truth check: rows={len(rows)} mismatches={mismatches} windows={len(windows)} "
          f"contract_windows={checked_pairs} missing={missing} injected_bad_rows={injected} "
          f"rejects_missing={rejects_missing} rejects_excused_uncovered={excused} probe_bad_rows={probes}")
    sys.exit(1 if mismatches or missing or rejects_missing or not rows or not windows else 0)


if __name__ == "__main__":
    main()
