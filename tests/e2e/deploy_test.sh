#!/usr/bin/env bash
# deploy/: the systemd units verify (with ExecStart pointed at the built
# binary), the alert rules pass promtool's checks and unit tests, the Grafana
# dashboard is valid JSON, every optsnap_* metric that deploy/ uses is one
# the daemon emits, and the cron example logs in as a login role and locks
# under /run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
skip_unless_cmd systemd-analyze promtool python3
ROOT=${OPTSNAP_SOURCE_ROOT:?}
BIN=${OPTSNAP_BIN:?}
e2e_tmpdir >/dev/null
for f in "$ROOT"/deploy/*.service "$ROOT"/deploy/*.timer; do
    sed "s|/usr/bin/optsnap|$BIN|g" "$f" >"$E2E_TMP/$(basename "$f")"
done
out=$(cd "$E2E_TMP" && systemd-analyze verify --man=no ./*.service ./*.timer 2>&1) || { echo "$out"; fail "systemd-analyze verify"; }
# verify prints problems without failing for some of them: nothing may be printed about our units
if grep -E "optsnap[^ ]*\.(service|timer)" <<<"$out" | grep -v "^$" >/dev/null; then echo "$out"; fail "systemd-analyze complains"; fi
grep -q '^Type=notify' "$ROOT/deploy/optsnap.service" || fail "optsnap.service is not Type=notify"
grep -q '^WatchdogSec=' "$ROOT/deploy/optsnap.service" || fail "no WatchdogSec"
grep -q '^LoadCredential=api_key' "$ROOT/deploy/optsnap.service" || fail "no LoadCredential for the key"
promtool check rules "$ROOT/deploy/prometheus/optsnap-alerts.yml" >/dev/null || fail "promtool check rules"
(cd "$ROOT/deploy/prometheus" && promtool test rules optsnap-alerts.test.yml >/dev/null) || fail "promtool test rules"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$ROOT/deploy/grafana/optsnap-dashboard.json" || fail "dashboard JSON"
missing=0
for m in $(grep -ohE 'optsnap_[a-z_]+' "$ROOT/deploy/prometheus/optsnap-alerts.yml" "$ROOT/deploy/grafana/optsnap-dashboard.json" | sort -u); do
    base=${m%_bucket}; base=${base%_sum}; base=${base%_count}
    grep -q "\"$base\"\|\"$m\"\|$base" "$ROOT/src/ops/metrics.c" || { echo "deploy uses $m, which optsnap does not emit"; missing=1; }
done
[ "$missing" = 0 ] || fail "unknown metrics in deploy/"
for cmd in repair gaps run migrate; do
    grep -rq "optsnap $cmd" "$ROOT/deploy" "$ROOT/man/optsnap.1" || true
    "$BIN" "$cmd" --help >/dev/null || fail "deploy/ or the man page refer to 'optsnap $cmd', which does not answer --help"
done
# crontab.example and the runbooks (issue 11, finding 9): they log in as a
# LOGIN role, never one of the NOLOGIN roles sql/roles.sql creates, and lock
# under /run, never in /tmp (any local user could take the lock first)
nologin=$(sed -n 's/.*CREATE ROLE \([a-z_]*\) NOLOGIN.*/\1/p' "$ROOT/sql/roles.sql" | sort -u)
[ -n "$nologin" ] || fail "no NOLOGIN role found in sql/roles.sql: the check below would prove nothing"
docs=("$ROOT/deploy/crontab.example" "$ROOT"/notes/runbook-*.md)
urls=$(grep -ohE 'postgres(ql)?://[a-z_]+@' "${docs[@]}" | sed -E 's|.*://([a-z_]+)@|\1|' | sort -u)
[ -n "$urls" ] || fail "crontab.example names no database role"
for r in $urls; do
    for n in $nologin; do [ "$r" != "$n" ] || fail "deploy docs log in as $r, a NOLOGIN role of sql/roles.sql"; done
    grep -q "CREATE ROLE $r LOGIN IN ROLE optsnap_writer" "$ROOT/deploy/crontab.example" || fail "crontab.example does not say how to create $r"
done
if grep -nE '(flock|lock)[^|]*/tmp/|/tmp/[^ ]*lock' "${docs[@]}"; then fail "a lock in /tmp"; fi
locks=$(grep -ohE 'flock -n /[^ ]+' "${docs[@]}" | awk '{print $3}' | sort -u)
[ -n "$locks" ] || fail "crontab.example takes no lock"
for l in $locks; do
    case $l in /run/optsnap/*) ;; *) fail "lock $l is not under /run/optsnap" ;; esac
done
grep -qE '^d /run/optsnap 07[0-5]0 optsnap optsnap' "$ROOT/deploy/optsnap.tmpfiles" || fail "deploy/optsnap.tmpfiles does not create /run/optsnap for optsnap"
echo "deploy e2e: ok"
