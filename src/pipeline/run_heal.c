/* run_heal.c - self-healing (issue 13): `optsnap run` repairs the recent
 * gaps of the underlyings it holds, at low priority, with the very path
 * `optsnap repair` uses, run as a child process with its own small budget
 * (backfill_http_concurrency, backfill_db_connections) so it can never take
 * the live sweeps' connections or requests. A pass runs every heal_interval,
 * and soon after a takeover (the old holder's last windows are the likely
 * gaps). One child at a time; on drain it is asked to drain too.
 *
 * The child gets its settings through its environment (OPTSNAP_<KEY>), never
 * argv: the database URL may hold a password. */
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"
#include "run_internal.h"

extern char **environ;

#define HEAL_HTTP_CONCURRENCY "2"
#define HEAL_DB_CONNECTIONS "1"

static const char sql_healed[] =
    "SELECT count(*) FROM ingest_coverage WHERE holder = $1::text AND source = 'backfill'";

static void env_free(char **env)
{
    if (env == NULL)
        return;
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

static bool overridden(const char *kv, char *const *mine, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t l = strcspn(mine[i], "=") + 1;
        if (strncmp(kv, mine[i], l) == 0)
            return true;
    }
    return false;
}

static char *kv_dup(const char *key, const char *value)
{
    size_t n = strlen(key) + strlen(value) + 10;
    char *s = malloc(n);
    if (s == NULL)
        return NULL;
    snprintf(s, n, "OPTSNAP_%s=%s", key, value);
    for (char *p = s + 8; *p && *p != '='; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    return s;
}

/* The child's environment: ours, with every setting that is not at its
 * default as OPTSNAP_<KEY>, and the heal's own universe and budget. */
static char **heal_env(struct run *r, const char *universe)
{
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **mine = calloc(settings_count + 5, sizeof *mine);
    size_t n = 0;
    if (mine == NULL)
        return NULL;
    for (size_t i = 0; i < settings_count; i++) {
        const char *name = settings_table[i].name;
        if (r->s->source[i] == SOURCE_DEFAULT || strcmp(name, "universe") == 0 || strcmp(name, "listen") == 0 ||
            strncmp(name, "backfill_", 9) == 0)
            continue;
        char v[SETTING_STR_MAX];
        settings_format_value(r->s, i, v, sizeof v);
        if ((mine[n] = kv_dup(name, v)) == NULL)
            goto oom;
        n++;
    }
    if ((mine[n] = kv_dup("universe", universe)) == NULL)
        goto oom;
    n++;
    if ((mine[n] = kv_dup("backfill_http_concurrency", HEAL_HTTP_CONCURRENCY)) == NULL)
        goto oom;
    n++;
    if ((mine[n] = kv_dup("backfill_db_connections", HEAL_DB_CONNECTIONS)) == NULL)
        goto oom;
    n++;
    char parent[24];
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    if ((mine[n] = kv_dup("heal_parent", parent)) == NULL) /* the child ends with us: repair_heal_guard */
        goto oom;
    n++;
    char **env = calloc(nenv + n + 1, sizeof *env);
    if (env == NULL)
        goto oom;
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++) {
        if (strncmp(environ[i], "DATABASE_URL=", 13) == 0 || overridden(environ[i], mine, n))
            continue;
        if ((env[k] = strdup(environ[i])) == NULL) {
            env_free(env);
            goto oom;
        }
        k++;
    }
    for (size_t i = 0; i < n; i++)
        env[k++] = mine[i];
    free(mine);
    return env;
oom:
    env_free(mine);
    return NULL;
}

static void run_heal_after(struct run *r, int64_t windows);

static bool is_held(const struct underlying_state *u) { return u->held && !u->retired; }

static void healed_done(struct engine_query *q, const struct pg_txn_result *res)
{
    struct run *r = q->user;
    if (res->status != PG_TXN_OK)
        return; /* the count is for metrics only */
    log_info("heal pass finished", "child_holder=%s windows_filled=%lld", r->heal_holder,
             (long long)r->heal_last_windows);
}

static void on_healed_rows(void *user, const void *pgresult)
{
    struct run *r = user;
    const PGresult *res = pgresult;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        long long n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        r->heal_last_windows = n;
        r->heal_windows += (uint64_t)n;
    }
}

static void count_healed(struct run *r)
{
    if (r->heal_q.pending || !engine_running(r->e))
        return;
    r->heal_values[0] = r->heal_holder;
    if (engine_query_one(r->e, &r->heal_q, (struct pg_stmt){.name = "heal_count", .sql = sql_healed, .nparams = 1,
                                             .values = r->heal_values, .on_tuples = on_healed_rows}, healed_done, r) != 0)
        log_debug("heal count not sent", "%s", "");
}

static void on_heal_closed(uv_handle_t *h)
{
    struct run *r = h->data;
    r->heal_running = false;
    if (!engine_closing(r->e))
        engine_after_event(r->e); /* a drain may have waited for the child */
}

static void on_heal_exit(uv_process_t *p, int64_t status, int term_signal)
{
    struct run *r = p->data;
    r->heal_runs++;
    if (status == 0) {
        r->heal_fail_streak = 0;
        log_info("heal child exited", "status=0 (every gap filled)");
    } else if (status == 3) {
        r->heal_fail_streak = 0;
        log_info("heal child exited", "status=3 (some units left: a pass again two windows on)");
        run_heal_soon(r); /* a unit failed or its history lease was held elsewhere */
    } else {
        /* a crash or a runtime failure: its gaps are still gaps, so try again
         * soon, backing off (two windows, doubled per failure in a row, at
         * most heal_interval) rather than waiting a whole interval */
        r->heal_failures++;
        if (r->heal_fail_streak < 16)
            r->heal_fail_streak++;
        log_warn("heal child failed: its gaps stay uncovered, another pass follows", "status=%lld signal=%d "
                 "failures_in_a_row=%u", (long long)status, term_signal, r->heal_fail_streak);
        run_heal_after(r, (int64_t)2 << (r->heal_fail_streak - 1));
    }
    count_healed(r);
    uv_close((uv_handle_t *)p, on_heal_closed);
}

static void heal_spawn(struct run *r)
{
    /* gaps are holes in a history that has begun: never before the first
     * window the ledger has for what we hold (an underlying's first history is
     * `optsnap backfill`'s job), never beyond heal_lookback */
    int64_t first = 0;
    for (size_t i = 0; i < r->nus; i++) {
        const struct underlying_state *u = r->us[i];
        if (u->held && !u->retired && u->first_window_us > 0 && (first == 0 || u->first_window_us < first))
            first = u->first_window_us;
    }
    int64_t span = run_market_now(r) - first;
    if (first == 0 || span <= r->s->cadence_us)
        return;
    if (span > r->s->heal_lookback_us)
        span = r->s->heal_lookback_us;
    char *universe = run_names(r, is_held, false);
    if (universe == NULL)
        return;
    char lookback[32];
    snprintf(lookback, sizeof lookback, "%llds", (long long)(span / USEC_PER_SEC));
    char **env = heal_env(r, universe);
    free(universe);
    if (env == NULL) {
        log_error("out of memory", "where=heal");
        return;
    }
    char exe[] = "/proc/self/exe", a0[] = "optsnap", a1[] = "repair", a2[] = "--lookback";
    char *args[] = {a0, a1, a2, lookback, NULL};
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t o = {.exit_cb = on_heal_exit, .file = exe, .args = args, .env = env,
                              .stdio_count = 3, .stdio = stdio};
    r->heal_proc.data = r;
    int rc = uv_spawn(engine_loop(r->e), &r->heal_proc, &o);
    env_free(env);
    if (rc != 0) {
        r->heal_runs++;
        r->heal_failures++;
        log_warn("cannot start the heal child", "error=%s", uv_strerror(rc));
        r->heal_running = true; /* a failed spawn still initialised the handle: closed, then done */
        uv_close((uv_handle_t *)&r->heal_proc, on_heal_closed);
        return;
    }
    r->heal_running = true;
    snprintf(r->heal_holder, sizeof r->heal_holder, "backfill:%s:%d", r->hostname, r->heal_proc.pid);
    log_info("heal pass started", "child_pid=%d lookback=%s", r->heal_proc.pid, lookback);
}

static void heal_tick(uv_timer_t *t)
{
    struct run *r = t->data;
    if (!engine_running(r->e) || r->heal_running)
        return;
    if (run_real_now() < r->heal_due_real_us)
        return;
    r->heal_due_real_us = run_real_now() + r->s->heal_interval_us;
    heal_spawn(r);
}

int run_heal_init(struct run *r)
{
    uv_timer_init(engine_loop(r->e), &r->heal_timer);
    r->heal_timer.data = r;
    return engine_own_handle(r->e, (uv_handle_t *)&r->heal_timer);
}

void run_heal_start(struct run *r)
{
    if (r->s->heal_lookback_us <= 0 || r->s->lease_ttl_us <= 0)
        return;
    /* the first pass once the first windows have been swept: a previous run's gaps */
    run_heal_soon(r);
    uv_timer_start(&r->heal_timer, heal_tick, 1000, 1000);
}

/* a pass `windows` cadences of market time from now (at most heal_interval) */
static void run_heal_after(struct run *r, int64_t windows)
{
    if (r->s->heal_lookback_us <= 0)
        return;
    int64_t now = run_real_now();
    int64_t wait = market_clock_real_until(&r->clock, run_market_now(r) + windows * r->s->cadence_us, now);
    if (wait < 0)
        wait = 0;
    if (wait > r->s->heal_interval_us)
        wait = r->s->heal_interval_us;
    int64_t due = now + wait;
    if (r->heal_due_real_us == 0 || due < r->heal_due_real_us)
        r->heal_due_real_us = due;
}

void run_heal_soon(struct run *r)
{
    /* two windows on: the one a dead holder was sweeping has ended, so repair can mark it */
    run_heal_after(r, 2);
}

void run_heal_drain(struct run *r)
{
    uv_timer_stop(&r->heal_timer);
    if (r->heal_running && !uv_is_closing((uv_handle_t *)&r->heal_proc))
        (void)uv_process_kill(&r->heal_proc, SIGTERM); /* it drains: what it committed is whole */
}

void run_heal_closing(struct run *r)
{
    if (r->heal_running && !uv_is_closing((uv_handle_t *)&r->heal_proc)) {
        (void)uv_process_kill(&r->heal_proc, SIGKILL);
        uv_close((uv_handle_t *)&r->heal_proc, on_heal_closed);
    }
}

bool run_heal_busy(const struct run *r) { return r->heal_running || r->heal_q.pending; }
