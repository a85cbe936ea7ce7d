#!/usr/bin/env python3
"""Checks `optsnap chain` output against the simulator's truth at a time T.

usage: check_chain.py DB_URL SIM_URL UNDERLYING T_US CHAIN_CSV

After a backfill of T's session (one row per minute bar carrying the
day-so-far block), the chain at T must hold exactly the contracts listed at
T that have traded that day by T (truth: /_sim/truth/dayblock at T shows a
volume), each with the truth's day block at T: volume from the command's
CSV, and day_open/high/low/close/vwap/volume exactly from
optsnap_chain_at (the SQL the command runs). Prints one summary line; exits
1 on any mismatch. Standard library + psql.
"""
import csv
import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

DAY = [("day_open", "open"), ("day_high", "high"), ("day_low", "low"), ("day_close", "close"),
       ("day_vwap", "vwap"), ("day_volume", "volume")]


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read().decode())


def main():
    db, sim, und, t_us, path = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    with open(path, newline="") as f:
        chain = {r["ticker"]: r for r in csv.DictReader(f)}
    cols = ", ".join(c for c, _ in DAY)
    out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", db, "-c",
                          f"SELECT ticker, {cols} FROM optsnap_chain_at('{und}', to_timestamp({t_us} / 1e6))"],
                         check=True, capture_output=True, text=True).stdout
    sql = {line.split("\t")[0]: line.split("\t")[1:] for line in out.splitlines() if line}
    listed = [c["ticker"] for c in get(f"{sim}/_sim/truth/contracts?underlying={und}&at={t_us}")["results"]]
    with ThreadPoolExecutor(8) as pool:
        days = dict(zip(listed, pool.map(
            lambda t: get(f"{sim}/_sim/truth/dayblock?ticker={t}&at={t_us}")["day"], listed)))
    want = {t for t, d in days.items() if (d.get("volume") or 0) > 0}
    errors = []
    if set(chain) != want:
        errors.append(f"contracts: {len(want - set(chain))} traded but missing, "
                      f"{len(set(chain) - want)} shown but not traded by T")
    if set(sql) != set(chain):
        errors.append("the command and optsnap_chain_at list different contracts")
    for t in sorted(want & set(chain)):
        d = days[t]
        if int(chain[t]["volume"]) != int(d["volume"]):
            errors.append(f"{t}: volume {chain[t]['volume']} truth {d['volume']}")
        for (col, key), v in zip(DAY, sql.get(t, [])):
            if v == "" or float(v) != float(d[key]):
                errors.append(f"{t}: {col} {v!r} truth {d[key]!r}")
    if errors:
        for e in errors[:20]:
            print("MISMATCH", e)
        print(f"check_chain: {len(errors)} mismatches, {len(chain)} contracts in the chain")
        return 1
    if not chain:
        print("check_chain: the chain is empty: the test proves nothing")
        return 1
    print(f"check_chain: ok, {len(chain)} contracts equal the truth at {t_us} ({len(listed)} listed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
