/* write_queue.c - sealed batches -> pool transactions, with the coverage-last
 * rule, retries, bisection and the no-loss bookkeeping, for run and backfill. */
#include "optsnap/db/write_queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "optsnap/db/fingerprint.h"
#include "optsnap/util/backoff.h"
#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"

struct write_queue {
    uv_loop_t *loop;
    struct pg_pool *pool;
    struct write_queue_settings s;
    struct write_queue_hooks hooks;
    void *user;
    struct list_node batches; /* waiting, in dispatch order */
    int waiting, in_flight;
    long rows;
    uv_timer_t timer;
    char token_prefix[32];     /* "PID.START_US": write tokens are unique across restarts */
    uint64_t token_serial;
    bool dispatching, redispatch, closing, timer_closed;
    void (*closed_cb)(void *user);
    void *closed_user;
    struct fingerprint_table *cache; /* NULL = every row is sent */
    uint64_t next_token;
    struct write_queue_stats st;
};

/* One transaction in the database. */
struct write_work {
    struct writer_job job;
    struct batch *batch;
    struct write_queue *q;
    bool *known; /* per row: the contract skipped the options statements; NULL = none did */
};

static void on_txn_done(struct pg_txn *txn, const struct pg_txn_result *r);

/* Refused rows after which a bisection that finds more refused than good
 * rows stops (notes/decisions.md, "Bisection that is not the rows' fault"). */
#define BISECT_STOP_REFUSED 16

static void push(struct write_queue *q, struct batch *b, bool at_head)
{
    if (at_head)
        list_push_front(&q->batches, &b->link);
    else
        list_push_back(&q->batches, &b->link);
    q->waiting++;
}

static void unlink_batch(struct write_queue *q, struct batch *b)
{
    list_remove(&b->link);
    q->waiting--;
}

static void report(struct write_queue *q, struct write_group *g, enum write_event ev,
                   const struct batch *b, const char *stmt, const struct pg_txn_result *r, long written,
                   int64_t wait_us)
{
    long skipped = 0;
    if (ev == WRITE_COMMITTED) {
        skipped = g->skipped_unreported;
        g->skipped_unreported = 0;
    }
    if (q->hooks.report == NULL || q->closing)
        return;
    struct write_report rep = {.event = ev, .statement = stmt ? stmt : "",
                               .sqlstate = r ? r->sqlstate : "", .message = r ? r->message : "",
                               .rows = (b ? (long)b->nrows : 0) + skipped, .written = written, .skipped = skipped,
                               .attempt = b ? b->attempts : 0, .wait_us = wait_us, .batch = b};
    q->hooks.report(q->user, g, &rep);
}

static void maybe_destroy(struct write_queue *q)
{
    if (!q->closing || q->in_flight > 0 || !q->timer_closed)
        return;
    void (*cb)(void *) = q->closed_cb;
    void *u = q->closed_user;
    fingerprint_table_free(q->cache);
    free(q);
    if (cb)
        cb(u);
}

/* The group's state after a change: write the mark when it is due (as a
 * mark-only batch when no batch of the group is left to carry it), or settle. */
static void group_check(struct write_queue *q, struct write_group *g)
{
    if (q->closing || !g->closed || g->outstanding > 0 || g->settled)
        return;
    if (!g->failed && !g->coverage_written) {
        struct batch *b = batch_new();
        if (b != NULL) {
            b->owner = g;
            b->final = true;
            g->outstanding++;
            push(q, b, false);
            write_queue_dispatch(q);
            return;
        }
        log_error("out of memory", "where=coverage mark underlying=%s", g->underlying);
        g->failed = true;
    }
    g->settled = true;
    if (q->hooks.group_settled)
        q->hooks.group_settled(q->user, g);
}

/* Which of b's contracts the skip cache knows to be in `options` with a
 * last_seen that needs no touch: asked at every submission, so a retry or a
 * half of a bisection asks again. NULL when none is (or no cache). */
static bool *contracts_known(struct write_queue *q, const struct batch *b, long *nknown)
{
    *nknown = 0;
    if (q->cache == NULL || b->nrows == 0)
        return NULL;
    bool *known = calloc(b->nrows, sizeof *known);
    if (known == NULL)
        return NULL; /* every contract goes through the options statements: correct, slower */
    for (size_t i = 0, e; i < b->nrows; i = e) {
        e = batch_contract_end(b, i);
        if (fingerprint_table_contract_known(q->cache, b->rows[i].contract.ticker, b->rows[e - 1].last_updated_us)) {
            known[i] = true;
            (*nknown)++;
        }
    }
    if (*nknown == 0) {
        free(known);
        return NULL;
    }
    return known;
}

static void work_free(struct write_work *w)
{
    writer_job_free(&w->job);
    free(w->known);
    free(w);
}

static bool submit(struct write_queue *q, struct batch *b)
{
    struct write_group *g = b->owner;
    struct write_work *w = calloc(1, sizeof *w);
    if (w == NULL)
        return false;
    bool with_mark = b->final && g->closed && !g->failed && g->outstanding == 1;
    if (b->write_token[0] == '\0') /* once: a retry of an unknown COMMIT writes the same rejects once */
        snprintf(b->write_token, sizeof b->write_token, "%s-%llu", q->token_prefix,
                 (unsigned long long)++q->token_serial);
    long nknown;
    w->known = contracts_known(q, b, &nknown);
    if (writer_job_build_known(&w->job, b, g->underlying, g->source, with_mark ? &g->cov : NULL, w->known)) {
        free(w->known);
        free(w);
        return false;
    }
    if (w->job.txn.nstmts == 0) { /* a mark-only batch of a group that failed meanwhile */
        work_free(w);
        g->outstanding--;
        batch_free(b);
        group_check(q, g);
        return true;
    }
    w->batch = b;
    w->q = q;
    w->job.txn.done = on_txn_done;
    w->job.txn.user = w;
    if (pg_pool_submit(q->pool, &w->job.txn)) {
        work_free(w);
        return false;
    }
    q->st.contracts_skipped += (uint64_t)nknown;
    q->in_flight++;
    return true;
}

static void timer_cb(uv_timer_t *t) { write_queue_dispatch(t->data); }

static void dispatch_once(struct write_queue *q)
{
    if (q->hooks.before_dispatch)
        q->hooks.before_dispatch(q->user);
    int64_t now = time_now_us(), earliest = 0;
    struct list_node *n, *tmp;
    list_for_each_safe(n, tmp, &q->batches) {
        if (!pg_pool_has_idle(q->pool))
            break;
        struct batch *b = list_entry(n, struct batch, link);
        struct write_group *g = b->owner;
        if (b->not_before_us > now) {
            if (earliest == 0 || b->not_before_us < earliest)
                earliest = b->not_before_us;
        } else if (b->final && !g->failed && (!g->closed || g->outstanding > 1)) {
            continue; /* the mark commits only after the group's other batches */
        } else {
            unlink_batch(q, b);
            if (!submit(q, b)) {
                push(q, b, true);
                b->not_before_us = now + 100000;
                earliest = b->not_before_us;
                break;
            }
            if (q->closing) /* a group settled inside submit and its owner closed the queue */
                break;
        }
    }
    if (earliest) {
        uint64_t ms = (uint64_t)((earliest - now) / 1000) + 1;
        if (!uv_is_active((uv_handle_t *)&q->timer) || uv_timer_get_due_in(&q->timer) > ms)
            uv_timer_start(&q->timer, timer_cb, ms, 0);
    }
}

void write_queue_dispatch(struct write_queue *q)
{
    if (q->closing)
        return;
    /* not re-entrant: a group settling inside submit may add work */
    if (q->dispatching) {
        q->redispatch = true;
        return;
    }
    q->dispatching = true;
    do {
        q->redispatch = false;
        dispatch_once(q);
    } while (q->redispatch && !q->closing);
    q->dispatching = false;
}

/* A row the database refused on its own becomes a reject (kind refused),
 * with the refusal as reason and, as raw, the row in the API's shape: the
 * snapshot parser reads it back, so `optsnap rejects --replay` can write it
 * once the cause is gone. */
static void row_to_reject(struct batch *b, const struct pg_txn_result *r)
{
    struct snapshot_row *row = &b->rows[0];
    struct row_reject rj;
    memset(&rj, 0, sizeof rj);
    snprintf(rj.ticker, sizeof rj.ticker, "%s", row->contract.ticker);
    snprintf(rj.reason, sizeof rj.reason, "database %s: %.100s", r->sqlstate, r->message);
    rj.kind = REJECT_REFUSED;
    rj.key_us = row->last_updated_us;
    char raw[8192];
    long n = snapshot_row_to_api_json(row, raw, sizeof raw);
    rj.raw = n > 0 ? strdup(raw) : strdup("{}");
    rj.raw_len = rj.raw ? strlen(rj.raw) : 0;
    b->nrows = 0;
    if (rj.raw == NULL || batch_add_reject(b, &rj))
        row_reject_clear(&rj);
}

/* Most rows examined refused: the cause is not in the rows. */
static bool bisection_hopeless(const struct write_group *g)
{
    long need = g->bisect_rows / 2 + 1;
    if (need > BISECT_STOP_REFUSED)
        need = BISECT_STOP_REFUSED;
    return g->bisect_refused >= need && g->bisect_refused > g->bisect_committed;
}

/* The batch committed: its rows are stored as sent, its new contracts are in
 * `options` with last_seen at least the seen it sent. */
static void cache_committed(struct write_queue *q, const struct write_work *w)
{
    const struct batch *b = w->batch;
    const struct write_group *g = b->owner;
    if (q->cache == NULL)
        return;
    for (size_t i = 0, e; i < b->nrows; i = e) {
        const char *t = b->rows[i].contract.ticker;
        e = batch_contract_end(b, i);
        for (size_t k = i; k < e; k++)
            fingerprint_table_commit(q->cache, t, fingerprint_row(&b->rows[k], g->underlying, g->source), b->token);
        if (w->known == NULL || !w->known[i])
            fingerprint_table_contract_commit(q->cache, t, b->rows[e - 1].last_updated_us);
    }
}

/* What becomes of a batch after its transaction: sent again (retry, bisect,
 * a refused row moved to the rejects), finished (its rows are accounted
 * for), or dropped (finished, the group's mark lost). */
enum txn_step { STEP_REQUEUED, STEP_FINISHED, STEP_DROP };

static enum txn_step on_committed(struct write_queue *q, struct write_work *w, const struct pg_txn_result *r)
{
    struct batch *b = w->batch;
    struct write_group *g = b->owner;
    long nrows = (long)b->nrows;
    long written = writer_job_rows_written(&w->job, r);
    if (written < 0)
        written = 0;
    g->rows_written += written;
    g->rows_unchanged += nrows - written;
    cache_committed(q, w);
    if (b->bisected)
        g->bisect_committed += nrows;
    report(q, g, WRITE_COMMITTED, b, NULL, NULL, written, 0);
    if (w->job.has_coverage && writer_job_mark_refused(&w->job, r)) {
        g->failed = true;
        report(q, g, WRITE_MARK_REFUSED, b, "mark_coverage", r, written, 0);
    } else if (w->job.has_coverage) {
        g->coverage_written = true;
    }
    return STEP_FINISHED;
}

/* What a failure tells the skip cache. */
static void cache_after_failure(struct write_queue *q, const struct batch *b, const struct pg_txn_result *r,
                                enum pg_error_action action)
{
    if (q->cache == NULL)
        return;
    if (r->status == PG_TXN_CONN_LOST || action == PG_ERROR_RECONNECT) {
        /* the COMMIT may have been applied or not, or we are on a new primary
         * after a failover that may have lost acknowledged commits: nothing
         * the cache holds is trusted any more */
        fingerprint_table_forget_all(q->cache);
        q->st.cache_forgets++;
    }
    if (pg_sqlstate_is_data_error(r->sqlstate))
        for (size_t i = 0; i < b->nrows; i++) /* maybe our word that it is in options was wrong */
            fingerprint_table_contract_forget(q->cache, b->rows[i].contract.ticker);
}

/* A data error (22xxx/23xxx) in the rows: bisect down to the refused row,
 * which goes to the rejects; unless the group's bisection is hopeless. */
static enum txn_step on_data_error(struct write_queue *q, struct batch *b, const char *stmt,
                                   const struct pg_txn_result *r)
{
    struct write_group *g = b->owner;
    long nrows = (long)b->nrows;
    if (!b->bisected)
        g->bisect_rows += nrows;
    if (!g->bisect_stopped && bisection_hopeless(g)) {
        g->bisect_stopped = true;
        struct pg_txn_result why = *r;
        snprintf(why.message, sizeof why.message,
                 "bisection stopped: %ld rows refused, %ld committed, of %ld: not the rows' fault: %.120s",
                 g->bisect_refused, g->bisect_committed, g->bisect_rows, r->message);
        g->failed = true;
        report(q, g, WRITE_DROPPED, b, stmt, &why, 0, 0);
        return STEP_FINISHED;
    }
    if (g->bisect_stopped) { /* the group gave up: its other parts are not tried one by one */
        g->failed = true;
        report(q, g, WRITE_DROPPED, b, stmt, r, 0, 0);
        return STEP_FINISHED;
    }
    if (nrows == 1) {
        report(q, g, WRITE_ROW_REFUSED, b, stmt, r, 0, 0);
        g->bisect_refused++;
        q->rows -= 1;
        row_to_reject(b, r);
        push(q, b, true);
        return STEP_REQUEUED;
    }
    struct batch *second;
    if (batch_split(b, &second) != 0)
        return STEP_DROP;
    report(q, g, WRITE_BISECTED, b, stmt, r, 0, 0);
    b->bisected = true;
    second->bisected = true;
    /* neither half carries the mark: the group writes it after both */
    b->final = false;
    second->final = false;
    g->outstanding++;
    push(q, second, true);
    push(q, b, true);
    return STEP_REQUEUED;
}

static enum txn_step on_failed(struct write_queue *q, struct write_work *w, const char *stmt,
                               const struct pg_txn_result *r)
{
    struct batch *b = w->batch;
    struct write_group *g = b->owner;
    enum pg_error_action action = pg_error_classify(r->sqlstate, r->message);
    cache_after_failure(q, b, r, action);
    if (strcmp(r->sqlstate, "23503") == 0 && w->known != NULL && r->status == PG_TXN_SQL_ERROR && !q->closing) {
        /* a foreign key refused a row whose contract skipped the options
         * statements on the cache's word: the rows are not at fault; the
         * batch goes again, now with every contract in the options statements */
        q->st.cache_forgets++;
        push(q, b, true);
        return STEP_REQUEUED;
    }
    if (r->status == PG_TXN_CONN_LOST || action == PG_ERROR_RETRY || action == PG_ERROR_RECONNECT) {
        b->attempts++;
        if (q->s.max_attempts != 0 && b->attempts >= q->s.max_attempts)
            return STEP_DROP;
        int64_t wait = backoff_full_jitter_us(b->attempts, 200000, q->s.retry_cap_us);
        b->not_before_us = time_now_us() + wait;
        report(q, g, WRITE_RETRYING, b, stmt, r, 0, wait);
        push(q, b, true);
        return STEP_REQUEUED;
    }
    if (pg_sqlstate_is_data_error(r->sqlstate) && strcmp(stmt, "insert_rejects") != 0 &&
        strcmp(stmt, "mark_coverage") != 0 && strcmp(stmt, "mark_coverage_range") != 0 && b->nrows > 0)
        return on_data_error(q, b, stmt, r);
    if (strcmp(stmt, "insert_rejects") == 0 && b->nrows > 0) {
        /* keep the rows; the refused rejects cost the group its mark */
        report(q, g, WRITE_REJECTS_DROPPED, b, stmt, r, 0, 0);
        for (size_t i = 0; i < b->nrejects; i++)
            row_reject_clear(&b->rejects[i]);
        b->nrejects = 0;
        g->failed = true;
        push(q, b, true);
        return STEP_REQUEUED;
    }
    return STEP_DROP;
}

static void on_txn_done(struct pg_txn *txn, const struct pg_txn_result *r)
{
    struct write_work *w = txn->user;
    struct write_queue *q = w->q;
    struct batch *b = w->batch;
    struct write_group *g = b->owner;
    long nrows = (long)b->nrows;
    const char *stmt = writer_job_failed_name(&w->job, r);
    q->in_flight--;

    enum txn_step step;
    if (r->status == PG_TXN_OK) {
        step = on_committed(q, w, r);
    } else if (r->status == PG_TXN_CANCELLED || q->closing) {
        g->failed = true;
        report(q, g, WRITE_CANCELLED, b, stmt, r, 0, 0);
        step = STEP_FINISHED;
    } else {
        step = on_failed(q, w, stmt, r);
    }
    if (step == STEP_DROP) {
        g->failed = true;
        report(q, g, WRITE_DROPPED, b, stmt, r, 0, 0);
        step = STEP_FINISHED;
    }
    if (step == STEP_FINISHED) {
        q->rows -= nrows;
        g->outstanding--;
        batch_free(b);
        group_check(q, g);
    }
    work_free(w);
    if (q->closing) {
        maybe_destroy(q);
        return;
    }
    write_queue_dispatch(q);
}

int write_queue_create(struct write_queue **out, uv_loop_t *loop, struct pg_pool *pool,
                       const struct write_queue_settings *s, const struct write_queue_hooks *hooks,
                       void *user)
{
    struct write_queue *q = calloc(1, sizeof *q);
    if (q == NULL)
        return -ENOMEM;
    q->loop = loop;
    q->pool = pool;
    q->s = *s;
    if (q->s.retry_cap_us <= 0)
        q->s.retry_cap_us = 30 * USEC_PER_SEC;
    if (hooks)
        q->hooks = *hooks;
    q->user = user;
    snprintf(q->token_prefix, sizeof q->token_prefix, "%ld.%lld", (long)getpid(), (long long)time_now_us());
    if (q->s.skip_cache_entries >= 0 &&
        fingerprint_table_create(&q->cache, q->s.skip_cache_entries ? q->s.skip_cache_entries
                                                                    : FINGERPRINT_DEFAULT_ENTRIES)) {
        free(q);
        return -ENOMEM;
    }
    list_init(&q->batches);
    uv_timer_init(loop, &q->timer);
    q->timer.data = q;
    *out = q;
    return 0;
}

long write_queue_add(struct write_queue *q, struct write_group *g, struct batch *b)
{
    long dropped = batch_sort_dedupe(b); /* never fails: out of memory, it dedupes in place */
    if (dropped < 0)
        dropped = 0;
    b->owner = g;
    b->final = false;
    b->token = ++q->next_token;
    if (q->cache != NULL) {
        /* rows a confirmed commit stored exactly so are never sent; the
         * others claim their slots for this batch before they are */
        size_t kept = 0;
        for (size_t i = 0; i < b->nrows; i++) {
            const struct snapshot_row *row = &b->rows[i];
            if (fingerprint_table_hit(q->cache, row->contract.ticker, fingerprint_row(row, g->underlying, g->source)))
                continue;
            fingerprint_table_pending(q->cache, row->contract.ticker, g->underlying, b->token);
            if (kept != i)
                b->rows[kept] = *row;
            kept++;
        }
        long skipped = (long)(b->nrows - kept);
        b->nrows = kept;
        g->rows_skipped += skipped;
        g->skipped_unreported += skipped;
        q->st.rows_skipped += (uint64_t)skipped;
        if (b->nrows == 0 && b->nrejects == 0) { /* nothing left to send */
            batch_free(b);
            return dropped;
        }
    }
    g->outstanding++;
    q->rows += (long)b->nrows;
    push(q, b, false);
    write_queue_dispatch(q);
    return dropped;
}

void write_queue_close_group(struct write_queue *q, struct write_group *g)
{
    g->closed = true;
    if (!g->failed) {
        /* the group's last queued batch carries the mark, if one is still queued */
        struct batch *last = NULL;
        struct list_node *n, *tmp;
        list_for_each_safe(n, tmp, &q->batches)
            if (list_entry(n, struct batch, link)->owner == g)
                last = list_entry(n, struct batch, link);
        if (last)
            last->final = true;
    }
    group_check(q, g);
    write_queue_dispatch(q);
}

void write_queue_forget_underlying(struct write_queue *q, const char *underlying)
{
    if (q == NULL || q->cache == NULL)
        return;
    fingerprint_table_forget_underlying(q->cache, underlying);
    q->st.cache_forgets++;
}

void write_queue_forget_all(struct write_queue *q)
{
    if (q == NULL || q->cache == NULL)
        return;
    fingerprint_table_forget_all(q->cache);
    q->st.cache_forgets++;
}

void write_queue_get_stats(const struct write_queue *q, struct write_queue_stats *out)
{
    if (q == NULL) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = q->st;
    if (q->cache != NULL) {
        struct fingerprint_stats fs;
        fingerprint_table_get_stats(q->cache, &fs);
        out->cache_evictions = fs.evictions;
        out->cache_bytes = fs.bytes;
    }
}

long write_queue_rows(const struct write_queue *q) { return q->rows; }
int write_queue_waiting(const struct write_queue *q) { return q->waiting; }
int write_queue_in_flight(const struct write_queue *q) { return q->in_flight; }
bool write_queue_idle(const struct write_queue *q) { return q->waiting == 0 && q->in_flight == 0; }

static void timer_closed(uv_handle_t *h)
{
    struct write_queue *q = h->data;
    q->timer_closed = true;
    maybe_destroy(q);
}

void write_queue_close(struct write_queue *q, void (*closed_cb)(void *user), void *user)
{
    q->closing = true;
    q->closed_cb = closed_cb;
    q->closed_user = user;
    struct list_node *n;
    while ((n = list_first(&q->batches)) != NULL) {
        struct batch *b = list_entry(n, struct batch, link);
        unlink_batch(q, b);
        struct write_group *g = b->owner;
        g->outstanding--;
        g->failed = true;
        q->rows -= (long)b->nrows;
        batch_free(b);
    }
    uv_timer_stop(&q->timer);
    uv_close((uv_handle_t *)&q->timer, timer_closed);
}
