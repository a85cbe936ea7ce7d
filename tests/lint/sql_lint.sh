#!/usr/bin/env bash
# SQL lint: no SQL text is built from data. Fails when a C source under src/
#  - passes to PQexec / PQexecParams / PQsendQuery / PQsendQueryParams /
#    PQprepare / PQsendPrepare an SQL argument that is not a string literal
#    or a constant defined from literals only (`static const char x[] = "..."`,
#    `const char *const x = "..."`). The argument may also be a parameter of
#    the enclosing function (a wrapper) or a struct field (`st->sql`): then
#    every call of that wrapper, every assignment of that field, must pass a
#    constant in turn (followed through the whole tree);
#  - formats with snprintf/sprintf/asprintf/vsnprintf/strcat/strcpy/strncat
#    a literal that contains an SQL keyword (SELECT INSERT UPDATE DELETE
#    CREATE DROP ALTER, upper case).
# A reasoned exception carries `/* sql-lint: ok <reason> */` on the line of
# the call or the line above it; a marker without a reason does not count.
# usage: sql_lint.sh            self-test on planted examples, then src/
#        sql_lint.sh DIR...     lint those directories (or .c files) only
set -euo pipefail
ROOT=${OPTSNAP_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "python3 not installed; skipping" >&2; exit 77; }

lint() { # lint PATH...: exit 0 clean, 1 findings
    python3 - "$@" <<'PY'
import os, re, sys

SINKS = {"PQexec": 1, "PQexecParams": 1, "PQsendQuery": 1, "PQsendQueryParams": 1,
         "PQprepare": 2, "PQsendPrepare": 2}
FORMATTERS = ("snprintf", "sprintf", "asprintf", "vsnprintf", "vsprintf", "vasprintf",
              "strcat", "strncat", "strcpy", "strncpy")
KEYWORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER)\b")
MARKER = re.compile(r"sql-lint:\s*ok\s+\S")
IDENT = r"[A-Za-z_]\w*"

def c_files(paths):
    for p in paths:
        if os.path.isdir(p):
            for d, _, fs in os.walk(p):
                for f in sorted(fs):
                    if f.endswith((".c", ".h")):
                        yield os.path.join(d, f)
        else:
            yield p

def strip_comments(text):
    """Comments become spaces (newlines kept); string and char literals stay."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1]); i = j + 1
        else:
            out.append(c); i += 1
    return "".join(out)

def call_args(text, open_paren):
    """Top-level arguments of the call whose '(' is at open_paren."""
    args, depth, i, start = [], 0, open_paren, open_paren + 1
    while i < len(text):
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(text[start:i].strip())
                return args
        elif c == "," and depth == 1:
            args.append(text[start:i].strip()); start = i + 1
        i += 1
    return args

LITERALS = re.compile(r'^(\s*"(?:[^"\\]|\\.)*"\s*)+$')

files = {}
for path in c_files(sys.argv[1:]):
    raw = open(path, encoding="utf-8", errors="replace").read()
    files[path] = (raw, strip_comments(raw))

# constants defined from literals only
consts = set()
CONST_DEF = re.compile(r"\bconst\s+char\s*(?:\*\s*const\s+)?(" + IDENT + r")\s*(?:\[\s*\w*\s*\])?\s*=\s*([^;]*);")
for raw, text in files.values():
    for m in CONST_DEF.finditer(text):
        if LITERALS.match(m.group(2)):
            consts.add(m.group(1))

# `#define NAME "literal"` (or a number): usable in literal concatenation
macros = set()
for raw, text in files.values():
    for m in re.finditer(r"^\s*#\s*define\s+(" + IDENT + r")\s+(\"(?:[^\"\\\\]|\\\\.)*\"|\d+)\s*$", text, re.M):
        macros.add(m.group(1))

def literal_concat(expr):
    """Adjacent string literals and literal macros only: "a" NAME "b"."""
    rest = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr).split()
    return '"' in expr and all(t in macros for t in rest)

FUNC_DEF = re.compile(r"^[A-Za-z_][^;{}()=]*?\b(" + IDENT + r")\s*\(([^;{}]*?)\)\s*\{", re.M)

def enclosing(text, pos):
    """(name, [param names]) of the function defined before pos."""
    best = None
    for m in FUNC_DEF.finditer(text, 0, pos):
        best = m
    if not best:
        return None, []
    params = []
    for p in best.group(2).split(","):
        m = re.search(r"(" + IDENT + r")\s*(?:\[[^\]]*\])?\s*$", p.strip())
        params.append(m.group(1) if m else "")
    return best.group(1), params

def line_of(text, pos):
    return text.count("\n", 0, pos) + 1

def marked(raw, line):
    lines = raw.split("\n")
    return any(MARKER.search(lines[k]) for k in (line - 1, line - 2) if 0 <= k < len(lines))

findings = []
seen = set()

def check_expr(expr, path, pos, why, depth=0):
    """Returns True when expr is constant SQL; records a finding otherwise."""
    raw, text = files[path]
    line = line_of(text, pos)
    key = (path, line, expr)
    if key in seen:
        return True
    seen.add(key)
    expr = re.sub(r"^\(\s*const\s+char\s*\*\s*\)", "", expr.strip()).strip()
    if LITERALS.match(expr) or expr in consts or literal_concat(expr):
        return True
    if marked(raw, line):
        return True
    if depth > 8:
        findings.append(f"{path}:{line}: {why}: cannot follow '{expr}'")
        return False
    if re.fullmatch(IDENT, expr):
        fname, params = enclosing(text, pos)
        if expr in params:
            idx = params.index(expr)
            ok, calls = True, 0
            for p2, (raw2, text2) in files.items():
                for m in re.finditer(r"\b" + re.escape(fname) + r"\s*\(", text2):
                    d = FUNC_DEF.match(text2, text2.rfind("\n", 0, m.start()) + 1)
                    if d and d.start(1) == m.start():
                        continue  # the definition itself
                    args = call_args(text2, m.end() - 1)
                    if idx < len(args):
                        calls += 1
                        ok &= check_expr(args[idx], p2, m.start(),
                                         f"SQL reaches {why.split(':')[0]} through {fname}()", depth + 1)
            return ok
        findings.append(f"{path}:{line}: {why}: '{expr}' is a variable, not a constant built from literals")
        return False
    m = re.fullmatch(r"(?:" + IDENT + r")(?:\s*(?:->|\.)\s*" + IDENT + r"|\s*\[[^\]]*\])*\s*(?:->|\.)\s*(" + IDENT + r")", expr)
    if m:
        field = m.group(1)
        ok = True
        for p2, (raw2, text2) in files.items():
            for a in re.finditer(r"(?:->|\.)\s*" + field + r"\s*=(?!=)\s*([^,;}]+)", text2):
                ok &= check_expr(a.group(1), p2, a.start(), f"SQL stored in field .{field}", depth + 1)
        return ok
    findings.append(f"{path}:{line}: {why}: '{expr}' is not a string literal or a constant")
    return False

for path, (raw, text) in files.items():
    for m in re.finditer(r"\b(" + "|".join(SINKS) + r")\s*\(", text):
        args = call_args(text, m.end() - 1)
        idx = SINKS[m.group(1)]
        if idx < len(args):
            check_expr(args[idx], path, m.start(), f"{m.group(1)}() SQL argument")
    for m in re.finditer(r"\b(" + "|".join(FORMATTERS) + r")\s*\(", text):
        line = line_of(text, m.start())
        if marked(raw, line):
            continue
        for a in call_args(text, m.end() - 1):
            for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', a):
                if KEYWORD.search(lit):
                    findings.append(f"{path}:{line}: {m.group(1)}() formats SQL text: \"{lit[:60]}\"")

for f in sorted(set(findings)):
    print("sql-lint: " + f)
sys.exit(1 if findings else 0)
PY
}

if [ "$#" -gt 0 ]; then
    lint "$@"
    exit $?
fi

# Self-test: the linter must fail on each planted bad example and pass the good one.
T=$(mktemp -d "${TMPDIR:-/tmp}/sql-lint.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/good" "$T/bad1" "$T/bad2" "$T/bad3" "$T/bad4" "$T/bad5"
cat >"$T/good/good.c" <<'EOF'
static const char sql_one[] = "SELECT 1"
                              " FROM t WHERE a = $1";
static const char *const sql_two = "DELETE FROM t WHERE a = $1";
struct stmt { const char *sql; };
static int run(PGconn *c, const char *sql) { PGresult *r = PQexec(c, sql); PQclear(r); return 0; }
static int f(PGconn *c, const char *const *p)
{
    struct stmt st = {.sql = sql_two};
    PQexecParams(c, "SELECT 2 WHERE $1", 1, NULL, p, NULL, NULL, 0);
    PQexecParams(c, sql_one, 1, NULL, p, NULL, NULL, 0);
    PQsendQueryParams(c, st.sql, 1, NULL, p, NULL, NULL, 0);
    char note[64];
    snprintf(note, sizeof note, "select/poll failed on %s", "x");
    /* sql-lint: ok the name is a quoted identifier checked against [a-z_]+ above */
    snprintf(note, sizeof note, "DROP TABLE %s", "x");
    return run(c, "BEGIN") + run(c, sql_one);
}
EOF
cat >"$T/bad1/bad.c" <<'EOF'
static void f(PGconn *c, const char *ticker)
{
    char q[256];
    snprintf(q, sizeof q, "SELECT * FROM option_snapshots WHERE ticker = '%s'", ticker);
    PQexec(c, q);
}
EOF
cat >"$T/bad2/bad.c" <<'EOF'
static int run(PGconn *c, const char *sql) { PGresult *r = PQexec(c, sql); PQclear(r); return 0; }
static char dyn[64];
static void f(PGconn *c) { run(c, "BEGIN"); run(c, dyn); }
EOF
cat >"$T/bad3/bad.c" <<'EOF'
struct stmt { const char *sql; };
static void f(PGconn *c, struct stmt *st)
{
    char buf[64];
    st->sql = buf;
    PQsendQueryParams(c, st->sql, 0, NULL, NULL, NULL, NULL, 0);
}
EOF
cat >"$T/bad4/bad.c" <<'EOF'
static void f(PGconn *c, const char *name)
{
    char q[128] = "";
    strcat(q, "DROP TABLE ");
    /* sql-lint: ok */
    PQexec(c, q);
}
EOF
cat >"$T/bad5/bad.c" <<'EOF'
static const char base[] = "SELECT 1";
static const char *mutable_sql = base;
static void f(PGconn *c) { PQprepare(c, "s", mutable_sql, 0, NULL); }
EOF
lint "$T/good" >"$T/out" || { cat "$T/out"; echo "sql-lint self-test: the good example was flagged" >&2; exit 1; }
for b in bad1 bad2 bad3 bad4 bad5; do
    if lint "$T/$b" >"$T/out"; then
        echo "sql-lint self-test: planted bad example $b was NOT flagged" >&2
        cat "$T/$b/bad.c" >&2
        exit 1
    fi
    sed "s|$T/||" "$T/out"
done
echo "sql-lint self-test: ok (5 planted bad examples flagged, good example clean)"
lint "$ROOT/src"
echo "sql-lint: src/ clean"
