/* run_leases.c - the live leases of `optsnap run` (DESIGN §7): one heartbeat
 * statement through the pool every lease_ttl/3 renews what this daemon holds,
 * hands back what it was asked to give up, and claims its fair share; the
 * answer says which underlyings it may sweep, under which epoch (the fencing
 * token its coverage marks carry). Times are the database's; ours only bound
 * how long we trust the last answer (sent + ttl), so a daemon whose heartbeats
 * fail stops sweeping before the database lets anyone else claim. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "optsnap/db/pg_connect.h"
#include "optsnap/db/write_queue.h"
#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"
#include "run_internal.h"

static const char sql_heartbeat[] =
    "SELECT underlying, epoch, (extract(epoch FROM since) * 1000000)::int8, "
    "(extract(epoch FROM last_live) * 1000000)::int8, live_daemons, target "
    "FROM optsnap_live_heartbeat($1::text, $2::text[], $3::int8 * interval '1 microsecond', $4::text[])";

static const char sql_release_all[] = "SELECT optsnap_live_release_all($1::text)";

bool run_lease_allows(const struct run *r, const struct underlying_state *u)
{
    if (r->s->lease_ttl_us <= 0)
        return true;
    /* the database's expiry is at least sent + ttl by its clock: stop a margin before ours says so */
    int64_t trusted_until = r->lease_ok_sent_real_us + r->s->lease_ttl_us - r->s->lease_ttl_us / 6;
    return u->held && run_real_now() < trusted_until;
}

const char *run_lease_holder(const struct run *r) { return r->s->lease_ttl_us > 0 ? r->holder : NULL; }

static bool is_releasing(const struct underlying_state *u) { return u->releasing; }

/* The release list for the heartbeat: underlyings handed back, "{A,B}". */
static int release_literal(struct run *r) { return run_names_replace(r, is_releasing, &r->release_array); }

static void on_heartbeat_rows(void *user, const void *pgresult)
{
    struct run *r = user;
    const PGresult *res = pgresult;
    r->lease_gen++;
    for (int i = 0; i < PQntuples(res); i++) {
        struct underlying_state *u = run_underlying_find(r, PQgetvalue(res, i, 0));
        r->live_daemons = atoi(PQgetvalue(res, i, 4));
        r->lease_target = atoi(PQgetvalue(res, i, 5));
        if (u == NULL)
            continue;
        int64_t epoch = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        u->lease_gen = r->lease_gen;
        if (!PQgetisnull(res, i, 3)) {
            int64_t last_live = strtoll(PQgetvalue(res, i, 3), NULL, 10);
            if (last_live > u->last_window_us)
                u->last_window_us = last_live; /* another holder swept it: never again */
        }
        if (u->held && u->epoch == epoch)
            continue;
        u->held = true;
        u->epoch = epoch;
        /* another daemon may have written its rows since we last did: the skip cache's word is stale */
        write_queue_forget_underlying(engine_write_queue(r->e), u->name);
        u->lease_since_us = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        u->claimed_now = true;
        if (epoch > 1)
            run_heal_soon(r); /* taken over (or ours again after it expired): its last windows may be gaps */
        r->lease_claims++;
        u->lease_claims++;
        log_info("lease claimed", "underlying=%s epoch=%lld", u->name, (long long)epoch);
    }
    if (PQntuples(res) == 0) {
        r->live_daemons = 0;
        r->lease_target = 0;
    }
}

/* Leases we held that the answer no longer lists were lost (expired while
 * our heartbeats failed or waited, or taken after a pause); those we handed
 * back are done. Then the surplus over our fair share is handed back, idle
 * ones only, at the next heartbeat. */
static void settle_heartbeat(struct run *r, bool ok_rows)
{
    size_t held = 0;
    for (size_t i = 0; i < r->nus; i++) {
        struct underlying_state *u = r->us[i];
        if (u->releasing) {
            u->releasing = false;
            r->lease_handbacks++;
            continue;
        }
        if (!u->held)
            continue;
        if (ok_rows && u->lease_gen != r->lease_gen) {
            u->held = false;
            if (u->retired)
                continue; /* dropped from the universe by a reload: not renewed on purpose */
            r->lease_losses++;
            log_warn("lease lost: another daemon may sweep this underlying now", "underlying=%s epoch=%lld",
                     u->name, (long long)u->epoch);
            continue;
        }
        held += !u->retired;
    }
    if (r->lease_target <= 0 || held <= (size_t)r->lease_target)
        return;
    size_t surplus = held - (size_t)r->lease_target;
    for (size_t i = r->nus; i-- > 0 && surplus > 0;) {
        struct underlying_state *u = r->us[i];
        if (!u->held || u->active != NULL || u->retired)
            continue;
        u->held = false;
        u->releasing = true;
        surplus--;
        r->lease_rebalances++;
        log_info("lease handed back to balance the fleet", "underlying=%s live_daemons=%d target=%d", u->name,
                 r->live_daemons, r->lease_target);
    }
}

static void heartbeat_done(struct engine_query *q, const struct pg_txn_result *res)
{
    struct run *r = q->user;
    if (res->status == PG_TXN_CANCELLED)
        return;
    if (res->status != PG_TXN_OK) {
        char m[300];
        r->lease_heartbeat_failures++;
        /* what we asked to hand back is still ours in the database: asked again next time */
        for (size_t i = 0; i < r->nus; i++)
            if (r->us[i]->releasing) {
                r->us[i]->releasing = false;
                r->us[i]->release_again = true;
            }
        log_warn("lease heartbeat failed: sweeps stop when the last answer is older than the ttl",
                 "sqlstate=%s error=%s", res->sqlstate, log_quote(m, sizeof m, res->message));
    } else {
        r->lease_ok_sent_real_us = r->lease_sent_real_us;
        settle_heartbeat(r, true);
    }
    run_leases_after_heartbeat(r);
}

static void heartbeat_submit(struct run *r)
{
    if (r->lease_q.pending || !engine_running(r->e))
        return;
    for (size_t i = 0; i < r->nus; i++)
        if (r->us[i]->release_again) {
            r->us[i]->release_again = false;
            r->us[i]->releasing = true;
        }
    if (release_literal(r) != 0) {
        log_error("out of memory", "where=lease heartbeat");
        return;
    }
    /* the statement may wait in the queue across a reload, which replaces universe_array */
    char *universe = strdup(r->universe_array);
    if (universe == NULL) {
        log_error("out of memory", "where=lease heartbeat");
        return;
    }
    free(r->lease_universe);
    r->lease_universe = universe;
    snprintf(r->lease_ttl_text, sizeof r->lease_ttl_text, "%lld", (long long)r->s->lease_ttl_us);
    r->lease_values[0] = r->holder;
    r->lease_values[1] = r->lease_universe;
    r->lease_values[2] = r->lease_ttl_text;
    r->lease_values[3] = r->release_array;
    r->lease_sent_real_us = run_real_now();
    if (engine_query_one(r->e, &r->lease_q, (struct pg_stmt){.name = "live_heartbeat", .sql = sql_heartbeat, .nparams = 4,
                                             .values = r->lease_values, .on_tuples = on_heartbeat_rows}, heartbeat_done, r) != 0)
        log_warn("lease heartbeat not sent", "%s", "");
}

static void heartbeat_tick(uv_timer_t *t) { heartbeat_submit(t->data); }

int run_leases_init(struct run *r)
{
    if (gethostname(r->hostname, sizeof r->hostname) != 0)
        snprintf(r->hostname, sizeof r->hostname, "unknown");
    r->hostname[sizeof r->hostname - 1] = '\0';
    snprintf(r->holder, sizeof r->holder, "run:%s:%ld", r->hostname, (long)getpid());
    uv_timer_init(engine_loop(r->e), &r->lease_timer);
    r->lease_timer.data = r;
    return engine_own_handle(r->e, (uv_handle_t *)&r->lease_timer);
}

void run_leases_start(struct run *r)
{
    uint64_t every = (uint64_t)(r->s->lease_ttl_us / 3000);
    uv_timer_start(&r->lease_timer, heartbeat_tick, every ? every : 1, every ? every : 1);
    heartbeat_submit(r);
}

void run_leases_stop(struct run *r) { uv_timer_stop(&r->lease_timer); }

bool run_leases_busy(const struct run *r) { return r->lease_q.pending; }

size_t run_leases_held(const struct run *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nus; i++)
        n += r->us[i]->held;
    return n;
}

/* After the loop: every lease this daemon holds expires now, so the others
 * claim them at their next heartbeat (a planned restart loses no window).
 * Blocking, bounded by libpq's connect_timeout; best effort: the ttl ends
 * them anyway. */
void run_leases_release_all(struct run *r)
{
    if (r->s->lease_ttl_us <= 0 || r->holder[0] == '\0')
        return;
    PGconn *c = pg_connect_blocking(r->s->database_url, "optsnap-release");
    if (c == NULL)
        return;
    const char *v[1] = {r->holder};
    PGresult *res = PQexecParams(c, sql_release_all, 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        log_info("leases handed back", "holder=%s leases=%s", r->holder, PQgetvalue(res, 0, 0));
    else
        pg_log_error("cannot hand the leases back (they expire after lease_ttl)", c, res);
    PQclear(res);
    PQfinish(c);
}
