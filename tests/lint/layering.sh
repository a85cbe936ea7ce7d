#!/usr/bin/env bash
# Layering lint: the stage folders of src/ and include/optsnap/ depend one
# way only (util <- config <- api <- http, db <- ops <- pipeline <- history
# <- main; sim uses util, api and http), and the core library (meson.build's
# core_sources) includes no uv, curl or libpq header, directly or through an
# optsnap header. Self-tested on planted violations first.
set -euo pipefail
ROOT=${OPTSNAP_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}

check() { # check ROOT: exit 0 clean, 1 findings
python3 - "$1" <<'PY'
import os, re, sys
root = sys.argv[1]
order = ["util", "config", "api", "http", "db", "ops", "pipeline", "history"]
allowed = {f: set(order[:i + 1]) for i, f in enumerate(order)}
allowed["sim"] = {"util", "api", "http", "sim"}
io_headers = re.compile(r'#\s*include\s*[<"](uv\.h|curl/curl\.h|libpq-fe\.h)[>"]')
inc = re.compile(r'#\s*include\s*"optsnap/([a-z_]+)/([a-z_]+\.h)"')
bad = []

def includes(path):
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        return "", []
    return text, inc.findall(text)

files = []
for top in ("src", "include/optsnap"):
    for d, _, names in os.walk(os.path.join(root, top)):
        files += [os.path.join(d, n) for n in names if n.endswith((".c", ".h"))]
for path in files:
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    folder = parts[1] if parts[0] == "src" and len(parts) > 2 else parts[2] if parts[0] == "include" and len(parts) > 3 else None
    if folder is None:
        continue  # main.c, commands.h: the top
    if folder not in allowed:
        bad.append(f"{rel}: folder '{folder}' is not a stage")
        continue
    _, incs = includes(path)
    for f, h in incs:
        if f not in allowed[folder]:
            bad.append(f"{rel}: includes optsnap/{f}/{h}, a later stage than {folder}")

# purity: the core library's sources and every optsnap header they reach
meson = open(os.path.join(root, "meson.build"), encoding="utf-8").read()
m = re.search(r"core_sources\s*=\s*files\((.*?)\)", meson, re.S)
core = re.findall(r"'([^']+\.c)'", m.group(1)) if m else []
if not core:
    bad.append("meson.build: no core_sources found")
seen = set()
def reach(path, via):
    if path in seen:
        return
    seen.add(path)
    text, incs = includes(path)
    hit = io_headers.search(text)
    if hit:
        bad.append(f"{os.path.relpath(path, root)}: includes {hit.group(1)} (core library, via {via})")
    for f, h in incs:
        reach(os.path.join(root, "include", "optsnap", f, h), via)
for c in core:
    reach(os.path.join(root, c), c)
for b in bad:
    print("layering:", b)
sys.exit(1 if bad else 0)
PY
}

# self-test: a copy of the tree with planted violations must be flagged
T=$(mktemp -d "${TMPDIR:-/tmp}/optsnap-layering.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/src/util" "$T/src/api" "$T/include/optsnap/util" "$T/include/optsnap/pipeline"
printf "core_sources = files(\n  'src/util/a.c',\n)\n" >"$T/meson.build"
printf '#include "optsnap/util/a.h"\n' >"$T/src/util/a.c"
printf '#include <stddef.h>\n' >"$T/include/optsnap/util/a.h"
check "$T" >/dev/null || { echo "layering self-test: the clean tree was flagged" >&2; exit 1; }
printf '#include "optsnap/pipeline/p.h"\n' >"$T/src/api/b.c"
printf '#include <uv.h>\n' >"$T/include/optsnap/pipeline/p.h"
out=$(check "$T" || true)
grep -q 'src/api/b.c: includes optsnap/pipeline/p.h' <<<"$out" || { echo "layering self-test: upward include not flagged" >&2; exit 1; }
printf '#include "optsnap/util/a.h"\n#include "optsnap/pipeline/p.h"\n' >"$T/src/util/a.c"
out=$(check "$T" || true)
grep -q 'includes uv.h (core library' <<<"$out" || { echo "layering self-test: uv.h reached from the core not flagged" >&2; exit 1; }
echo "layering self-test: ok (an upward include and an I/O header in the core flagged)"
check "$ROOT"
echo "layering: clean"
