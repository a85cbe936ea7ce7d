#!/usr/bin/env bash
# Every setting in the settings table is documented in the README's
# configuration reference and in deploy/optsnap.conf.example; every
# subcommand answers --help with exit 0; unknown settings are errors.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROOT=${OPTSNAP_SOURCE_ROOT:?}
BIN=${OPTSNAP_BIN:?}
missing=0
for key in $("$BIN" config --help | sed -n 's/^  --\([a-z_]*\) .*/\1/p'); do
    grep -q "^| \`$key\` |" "$ROOT/README.md" || { echo "README.md: setting '$key' is not in the configuration reference"; missing=1; }
    grep -qE "^# $key =" "$ROOT/deploy/optsnap.conf.example" || { echo "deploy/optsnap.conf.example: setting '$key' is missing"; missing=1; }
done
n=$("$BIN" config --help | grep -c '^  --')
[ "$n" -ge 25 ] || fail "only $n settings listed: the check would prove nothing"
[ "$missing" = 0 ] || fail "settings missing from the docs"
for cmd in run migrate mock-api config gaps; do
    "$BIN" "$cmd" --help >/dev/null || fail "optsnap $cmd --help failed"
done
rc=0; "$BIN" run --no-such-setting 1 >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "an unknown flag must exit 2, got $rc"
rc=0; OPTSNAP_CADENCE=soon "$BIN" config >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "a bad OPTSNAP_ variable must exit 2, got $rc"
e2e_tmpdir >/dev/null
printf 'cadence = 30s\nbogus = 1\n' >"$E2E_TMP/bad.conf"
msg=$("$BIN" config --config "$E2E_TMP/bad.conf" 2>&1 >/dev/null || true)
[[ "$msg" == *"bad.conf:2: unknown setting 'bogus'"* ]] || fail "bad config error lacks file:line: $msg"
out=$(DATABASE_URL=postgresql://u:hunter2@h/db OPTSNAP_API_KEY=sekrit-key "$BIN" config)
[[ "$out" != *hunter2* && "$out" != *sekrit-key* ]] || fail "optsnap config printed a secret"
echo "docs e2e: ok ($n settings)"
