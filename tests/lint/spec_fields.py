#!/usr/bin/env python3
"""spec_fields.py - every response field of the chain-snapshot and contracts
endpoints in the OpenAPI spec (tests/fixtures/spec/) is either stored (a
column that exists in sql/, and for snapshot values the column the parser's
table snap_cols in src/api/row.c maps that field to) or ignored with a
reason, in README.md's field table. Fails (exit 1) naming each field that is
neither; proves it can fail by checking a copy of the table with a row
removed and a column renamed."""
import json
import os
import re
import sys

ROOT = os.environ.get("OPTSNAP_SOURCE_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = ["tests/fixtures/spec/massive-com__client-python__.massive_rest.json"]
ENDPOINTS = {
    "snapshot": ["/v3/snapshot/options/{underlyingAsset}", "/v3/snapshot/options/{underlyingAsset}/{optionContract}"],
    "contracts": ["/v3/reference/options/contracts", "/v3/reference/options/contracts/{options_ticker}"],
}
ENVELOPE = {"status", "request_id", "next_url", "results", "count"}


def spec_fields(spec, path):
    """Dotted field names of one result of path's 200 answer, plus the envelope's."""
    schemas = spec.get("components", {}).get("schemas", {})
    out = set()

    def walk(sch, prefix, seen):
        if "$ref" in sch:
            name = sch["$ref"].split("/")[-1]
            if name in seen:
                return
            seen = seen | {name}
            sch = schemas[name]
        for k in ("allOf", "anyOf", "oneOf"):
            for x in sch.get(k, []):
                walk(x, prefix, seen)
        if sch.get("type") == "array" and "items" in sch:
            walk(sch["items"], prefix, seen)
        for name, sub in sch.get("properties", {}).items():
            field = prefix + name
            out.add(field)
            walk(sub, field + ".", seen)

    op = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    walk(op, "", frozenset())
    fields = set()
    for f in out:
        if f.startswith("results."):
            fields.add(f[len("results."):])
        elif f != "results":
            fields.add(f)
    # a parent object ("day", "greeks") is covered by its children
    parents = {f.rsplit(".", 1)[0] for f in fields if "." in f}
    return fields - parents


def readme_table(text):
    """{(endpoint, field): column-or-ignored} from README's field table."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\| (snapshot|contracts) \| `([^`]+)` \| (.*?) \|", line)
        if m:
            rows[(m.group(1), m.group(2))] = m.group(3).strip()
    return rows


def sql_columns():
    cols = set()
    sql_dir = os.path.join(ROOT, "sql")
    for name in sorted(os.listdir(sql_dir)):
        if not name.endswith(".sql"):
            continue
        text = open(os.path.join(sql_dir, name), encoding="utf-8").read()
        for m in re.finditer(r"(?:CREATE TABLE|ALTER TABLE)\s+(\w+)\s*(\(.*?\n\);|.*?;)", text, re.S):
            table = m.group(1)
            for c in re.finditer(r"(?:^|\n|\(|ADD COLUMN)\s*(\w+)\s+(text|bigint|integer|double precision|date|timestamptz|jsonb|boolean|smallint|real|numeric)", m.group(2)):
                cols.add((table, c.group(1)))
    return cols


def snap_cols():
    """{column: "obj.key"} from src/api/row.c's snap_cols table."""
    text = open(os.path.join(ROOT, "src/api/row.c"), encoding="utf-8").read()
    out = {}
    for m in re.finditer(r'\[SNAP_\w+\]\s*=\s*\{"(\w+)",\s*(NULL|"(\w+)"),\s*"(\w+)"', text):
        col, obj, key = m.group(1), m.group(3), m.group(4)
        out[col] = (obj + "." + key) if obj else key
    return out


def check(table, fields, columns, snap):
    errors = []
    for endpoint, names in sorted(fields.items()):
        for f in sorted(names):
            if (endpoint, f) not in table:
                errors.append(f"{endpoint}: field {f} of the spec is neither stored nor ignored in README's field table")
    for (endpoint, f), target in sorted(table.items()):
        if target.startswith("ignored:"):
            if len(target[len("ignored:"):].strip()) < 8:
                errors.append(f"{endpoint}: field {f} is ignored without a reason")
            continue
        m = re.fullmatch(r"`(\w+)\.(\w+)`", target)
        if not m:
            errors.append(f"{endpoint}: field {f}: column cell {target!r} is neither `table.column` nor 'ignored: reason'")
            continue
        tcol = (m.group(1), m.group(2))
        if tcol not in columns:
            errors.append(f"{endpoint}: field {f}: column {tcol[0]}.{tcol[1]} does not exist in sql/")
        if endpoint == "snapshot" and tcol[0] == "option_snapshots" and tcol[1] in snap:
            if not f.startswith("(") and snap[tcol[1]] != f:
                errors.append(f"{endpoint}: field {f}: the parser fills {tcol[1]} from {snap[tcol[1]]}")
    # every column the parser fills from a field is in the table
    listed = {(e, f) for (e, f) in table}
    for col, f in sorted(snap.items()):
        if ("snapshot", f) not in listed:
            errors.append(f"snapshot: the parser stores {f} in {col} but README's field table does not list it")
    return errors


def main():
    fields = {}
    for rel in SPECS:
        spec = json.load(open(os.path.join(ROOT, rel), encoding="utf-8"))
        for endpoint, paths in ENDPOINTS.items():
            for p in paths:
                if p in spec["paths"]:
                    fields.setdefault(endpoint, set()).update(spec_fields(spec, p))
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    table = readme_table(readme)
    columns = sql_columns()
    snap = snap_cols()
    nfields = sum(len(v) for v in fields.values())
    if nfields < 60 or len(table) < 60 or len(snap) < 39:
        print(f"spec_fields: too little read (spec fields {nfields}, table rows {len(table)}, snap_cols {len(snap)})")
        return 1
    errors = check(table, fields, columns, snap)
    for e in errors:
        print("spec_fields: " + e)
    # the check can fail: a removed row and a renamed column are both noticed
    broken = dict(table)
    del broken[("snapshot", "last_quote.timeframe")]
    broken[("contracts", "cfi")] = "`options.cfi_code`"
    planted = check(broken, fields, columns, snap)
    if not any("last_quote.timeframe" in e for e in planted) or not any("cfi_code" in e for e in planted):
        print("spec_fields: the planted mistakes were not found: the lint is broken")
        return 1
    print(f"spec_fields: spec fields={nfields} table rows={len(table)} errors={len(errors)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
