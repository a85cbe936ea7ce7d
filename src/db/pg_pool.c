/* pg_pool.c - non-blocking libpq connections on uv_poll; one pipeline per transaction. */
#include "optsnap/db/pg_pool.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/util/backoff.h"
#include "optsnap/util/log.h"
#include "optsnap/util/scrub.h"

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_IDLE, CONN_BUSY, CONN_CLOSED };

struct pg_conn;

/* The poll handle lives apart from the connection: libpq may replace its
 * socket while connecting, and a handle can only be freed in its close callback. */
struct pg_sock {
    uv_poll_t poll;
    struct pg_conn *conn;
    int fd;
};

struct pg_conn {
    struct pg_pool *pool;
    int index;
    enum conn_state state;
    PGconn *pg;
    struct pg_sock *sock;
    uv_timer_t timer; /* reconnect backoff */
    int failures;     /* consecutive connect failures */
    bool ever_ok;

    struct pg_txn *txn;
    struct pg_txn_result result;
    int cur;              /* statement whose results are being read; 0 = set_config */
    bool cur_has_result;
    uint64_t started_ns;
};

struct pg_pool {
    uv_loop_t *loop;
    char *conninfo;
    char timeout_ms[32];
    char application_name[64];
    int size;
    uint64_t max_backoff_us;
    struct pg_conn *conns;
    pg_pool_notify_cb notify;
    void *user;
    struct pg_pool_stats stats;
    bool ever_connected;
    bool closing;
    int open_handles;
    void (*closed_cb)(void *);
    void *closed_user;
};

static const char set_timeout_sql[] = "SELECT set_config('statement_timeout', $1, true)";

static void conn_start(struct pg_conn *c);
static void conn_fail(struct pg_conn *c, const char *why);
static void on_poll(uv_poll_t *h, int status, int events);

static void pool_handle_closed(struct pg_pool *p)
{
    if (--p->open_handles > 0)
        return;
    void (*cb)(void *) = p->closed_cb;
    void *u = p->closed_user;
    free(p->conns);
    free(p->conninfo);
    free(p);
    if (cb)
        cb(u);
}

static void sock_closed(uv_handle_t *h)
{
    struct pg_sock *s = h->data;
    struct pg_pool *p = s->conn ? s->conn->pool : NULL;
    free(s);
    if (p)
        pool_handle_closed(p);
}

static void sock_release(struct pg_conn *c)
{
    if (c->sock == NULL)
        return;
    /* uv_poll_stop removes the fd from epoll before libpq can close or reuse it. */
    uv_poll_stop(&c->sock->poll);
    c->pool->open_handles++;
    uv_close((uv_handle_t *)&c->sock->poll, sock_closed);
    c->sock = NULL;
}

static int sock_watch(struct pg_conn *c, int events, bool fresh)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -EBADF;
    if (c->sock && (fresh || c->sock->fd != fd))
        sock_release(c);
    if (c->sock == NULL) {
        struct pg_sock *s = calloc(1, sizeof *s);
        if (s == NULL)
            return -ENOMEM;
        int rc = uv_poll_init_socket(c->pool->loop, &s->poll, fd);
        if (rc) {
            free(s);
            return rc;
        }
        s->conn = c;
        s->fd = fd;
        s->poll.data = s;
        c->sock = s;
    }
    return uv_poll_start(&c->sock->poll, events, on_poll);
}

static void pool_notify(struct pg_pool *p)
{
    if (p->notify && !p->closing)
        p->notify(p->user);
}

static void finish_txn(struct pg_conn *c, enum pg_txn_status status)
{
    struct pg_txn *txn = c->txn;
    if (txn == NULL)
        return;
    c->txn = NULL;
    if (status != PG_TXN_OK || c->result.status != PG_TXN_OK) {
        if (c->result.status == PG_TXN_OK)
            c->result.status = status;
        c->pool->stats.errors++;
    }
    c->pool->stats.transactions++;
    c->result.elapsed_s = (double)(uv_hrtime() - c->started_ns) / 1e9;
    struct pg_txn_result res = c->result;
    txn->done(txn, &res);
}

static void timer_fire(uv_timer_t *t)
{
    struct pg_conn *c = t->data;
    if (c->state == CONN_DOWN && !c->pool->closing)
        conn_start(c);
}

static void schedule_reconnect(struct pg_conn *c)
{
    c->state = CONN_DOWN;
    c->failures++;
    /* the first retry after a working connection is immediate; then full
     * jitter over an exponential ceiling, 100 ms .. max_backoff (retry_max_backoff) */
    uint64_t wait = c->failures == 1 && c->ever_ok
                        ? 0
                        : (uint64_t)(backoff_full_jitter_us(c->failures, 100000,
                                                            (int64_t)c->pool->max_backoff_us) /
                                     1000);
    uv_timer_start(&c->timer, timer_fire, wait, 0);
}

/* Tears the connection down and schedules a new one; a running transaction
 * fails with PG_TXN_CONN_LOST. */
/* Ends c's transaction, if any, with status, stops watching its socket and
 * closes its libpq connection. */
static void conn_drop(struct pg_conn *c, enum pg_txn_status status)
{
    if (c->txn) {
        c->result.status = status;
        finish_txn(c, status);
    }
    sock_release(c);
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
}

static void conn_fail(struct pg_conn *c, const char *why)
{
    struct pg_pool *p = c->pool;
    char msg[256];
    if (c->pg) {
        scrub_secrets(msg, sizeof msg, PQerrorMessage(c->pg)); /* it may repeat the conninfo */
        char *nl = strchr(msg, '\n');
        if (nl)
            *nl = '\0';
    } else {
        msg[0] = '\0';
    }
    char q1[300];
    /* one warning per outage per connection; the retries behind it are debug noise */
    enum log_level lvl = c->failures == 0 ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG;
    log_at(lvl, "database connection lost", "conn=%d reason=%s failures=%d error=%s", c->index, why,
           c->failures, log_quote(q1, sizeof q1, msg));
    if (c->txn) {
        if (c->result.sqlstate[0] == '\0')
            snprintf(c->result.sqlstate, sizeof c->result.sqlstate, "08006");
        if (c->result.message[0] == '\0')
            snprintf(c->result.message, sizeof c->result.message, "%s", msg[0] ? msg : why);
    }
    conn_drop(c, PG_TXN_CONN_LOST);
    if (c->state == CONN_CONNECTING)
        p->stats.connect_failures++;
    else
        p->stats.reconnects++;
    if (p->closing) {
        c->state = CONN_CLOSED;
        return;
    }
    schedule_reconnect(c);
    pool_notify(p);
}

/* Closes a connection that answered but must not be used again (the server
 * is a standby now, or the session was terminated) and connects again at
 * once: with target_session_attrs=read-write libpq walks the hosts of a
 * multi-host database_url to the primary. Later failures back off. */
static void conn_replace(struct pg_conn *c, const char *why)
{
    struct pg_pool *p = c->pool;
    char q1[300];
    log_warn("database connection replaced", "conn=%d reason=%s host=%s", c->index,
             log_quote(q1, sizeof q1, why), c->pg ? PQhost(c->pg) : "");
    sock_release(c);
    PQfinish(c->pg);
    c->pg = NULL;
    p->stats.reconnects++;
    c->ever_ok = true;
    c->failures = 0;
    schedule_reconnect(c);
}

static void conn_start(struct pg_conn *c)
{
    struct pg_pool *p = c->pool;
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {p->conninfo, p->application_name, "10", NULL};
    c->state = CONN_CONNECTING;
    c->pg = PQconnectStartParams(keys, vals, 1);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        conn_fail(c, "connect start failed");
        return;
    }
    if (sock_watch(c, UV_WRITABLE, true))
        conn_fail(c, "cannot watch socket");
}

static void conn_connected(struct pg_conn *c)
{
    struct pg_pool *p = c->pool;
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        conn_fail(c, "cannot enter non-blocking pipeline mode");
        return;
    }
    if (c->failures > 0 || !c->ever_ok)
        log_info("database connected", "conn=%d db=%s host=%s server_version=%d", c->index,
                 PQdb(c->pg), PQhost(c->pg), PQserverVersion(c->pg));
    c->failures = 0;
    c->ever_ok = true;
    p->ever_connected = true;
    c->state = CONN_IDLE;
    /* READABLE stays armed while idle so a server-side close is noticed. */
    if (sock_watch(c, UV_READABLE, false)) {
        conn_fail(c, "cannot watch socket");
        return;
    }
    pool_notify(p);
}

static void conn_connect_step(struct pg_conn *c)
{
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    switch (st) {
    case PGRES_POLLING_OK:
        conn_connected(c);
        return;
    case PGRES_POLLING_READING:
        /* the socket may have changed (next host/address): always re-arm a fresh handle */
        if (sock_watch(c, UV_READABLE, true))
            conn_fail(c, "cannot watch socket");
        return;
    case PGRES_POLLING_WRITING:
        if (sock_watch(c, UV_WRITABLE, true))
            conn_fail(c, "cannot watch socket");
        return;
    default:
        conn_fail(c, "connect failed");
        return;
    }
}

static void record_result(struct pg_conn *c, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    int stmt = c->cur - 1; /* cur 0 is set_config */
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (st == PGRES_TUPLES_OK && stmt >= 0 && stmt < c->txn->nstmts &&
            c->txn->stmts[stmt].on_tuples)
            c->txn->stmts[stmt].on_tuples(c->txn->user, res);
        if (stmt >= 0 && stmt < PG_TXN_MAX_STMTS) {
            const char *n = PQcmdTuples(res);
            c->result.affected[stmt] = (n && *n) ? atol(n) : -1;
        }
        return;
    }
    if (st == PGRES_PIPELINE_ABORTED)
        return;
    if (c->result.status == PG_TXN_OK) {
        c->result.status = PG_TXN_SQL_ERROR;
        c->result.failed_stmt = stmt;
        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(c->result.sqlstate, sizeof c->result.sqlstate, "%s", code ? code : "XX000");
        scrub_secrets(c->result.message, sizeof c->result.message, msg ? msg : "unknown error");
        for (char *q = c->result.message; *q; q++)
            if (*q == '\n')
                *q = ' ';
    }
}

static void conn_read(struct pg_conn *c)
{
    if (PQconsumeInput(c->pg) == 0) {
        conn_fail(c, "read failed");
        return;
    }
    if (c->state != CONN_BUSY) {
        /* idle: drain anything unsolicited; EOF shows up as a bad status */
        if (PQstatus(c->pg) != CONNECTION_OK)
            conn_fail(c, "server closed the connection");
        return;
    }
    while (c->txn && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (res == NULL) {
            if (!c->cur_has_result)
                break; /* nothing more until the next input */
            c->cur++;
            c->cur_has_result = false;
            continue;
        }
        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            c->state = CONN_IDLE;
            if (sock_watch(c, UV_READABLE, false)) {
                conn_fail(c, "cannot watch socket");
                return;
            }
            enum pg_error_action action =
                c->result.status == PG_TXN_SQL_ERROR
                    ? pg_error_classify(c->result.sqlstate, c->result.message)
                    : PG_ERROR_FAIL;
            char why[80];
            snprintf(why, sizeof why, "sqlstate %s", c->result.sqlstate);
            finish_txn(c, c->result.status);
            /* Only a lost, terminated or read-only (standby) session is
             * replaced; a timeout, deadlock or serialization failure leaves
             * the session usable, and closing it would be connection churn
             * under pressure (a new backend before the old one is gone). */
            if (c->state == CONN_IDLE && c->pg) {
                if (PQstatus(c->pg) != CONNECTION_OK)
                    conn_replace(c, "connection lost");
                else if (action == PG_ERROR_RECONNECT)
                    conn_replace(c, why);
            }
            pool_notify(c->pool);
            return;
        }
        record_result(c, res);
        c->cur_has_result = true;
        PQclear(res);
    }
    if (PQstatus(c->pg) != CONNECTION_OK)
        conn_fail(c, "connection lost");
}

static void conn_flush(struct pg_conn *c)
{
    int rc = PQflush(c->pg);
    if (rc < 0) {
        conn_fail(c, "write failed");
        return;
    }
    if (sock_watch(c, rc == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE, false))
        conn_fail(c, "cannot watch socket");
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct pg_sock *s = h->data;
    struct pg_conn *c = s->conn;
    if (c == NULL || c->sock != s)
        return;
    if (c->state == CONN_CONNECTING) {
        conn_connect_step(c);
        return;
    }
    if (status < 0) {
        conn_fail(c, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE) {
        conn_flush(c);
        if (c->sock != s || c->pg == NULL)
            return;
    }
    if (events & UV_READABLE)
        conn_read(c);
}

int pg_pool_submit(struct pg_pool *p, struct pg_txn *txn)
{
    if (p->closing)
        return -ECANCELED;
    struct pg_conn *c = NULL;
    for (int i = 0; i < p->size; i++) {
        if (p->conns[i].state == CONN_IDLE) {
            c = &p->conns[i];
            break;
        }
    }
    if (c == NULL)
        return -EBUSY;
    memset(&c->result, 0, sizeof c->result);
    c->result.failed_stmt = -1;
    for (int i = 0; i < PG_TXN_MAX_STMTS; i++)
        c->result.affected[i] = -1;
    c->txn = txn;
    c->cur = 0;
    c->cur_has_result = false;
    c->started_ns = uv_hrtime();
    c->state = CONN_BUSY;

    const char *tv[1] = {p->timeout_ms};
    bool ok = PQsendQueryParams(c->pg, set_timeout_sql, 1, NULL, tv, NULL, NULL, 0) == 1;
    for (int i = 0; ok && i < txn->nstmts; i++) {
        const struct pg_stmt *st = &txn->stmts[i];
        ok = PQsendQueryParams(c->pg, st->sql, st->nparams, st->types, st->values, st->lengths,
                               st->formats, 0) == 1;
    }
    if (ok)
        ok = PQpipelineSync(c->pg) == 1;
    if (!ok) {
        /* the transaction was accepted: its callback reports the failure */
        conn_fail(c, "send failed");
        return 0;
    }
    conn_flush(c);
    return 0;
}

bool pg_pool_has_idle(const struct pg_pool *p)
{
    if (p->closing)
        return false;
    for (int i = 0; i < p->size; i++)
        if (p->conns[i].state == CONN_IDLE)
            return true;
    return false;
}

bool pg_pool_ever_connected(const struct pg_pool *p) { return p->ever_connected; }

void pg_pool_set_statement_timeout(struct pg_pool *p, int64_t statement_timeout_us)
{
    snprintf(p->timeout_ms, sizeof p->timeout_ms, "%lld",
             (long long)(statement_timeout_us > 0 ? statement_timeout_us / 1000 : 0));
}

void pg_pool_set_max_backoff(struct pg_pool *p, int64_t max_backoff_us)
{
    p->max_backoff_us = max_backoff_us > 0 ? (uint64_t)max_backoff_us : PG_POOL_DEFAULT_MAX_BACKOFF_US;
    if (p->max_backoff_us < 100000)
        p->max_backoff_us = 100000;
}

void pg_pool_get_stats(const struct pg_pool *p, struct pg_pool_stats *out)
{
    *out = p->stats;
    out->busy = out->idle = out->connecting = out->down = 0;
    for (int i = 0; i < p->size; i++) {
        switch (p->conns[i].state) {
        case CONN_BUSY: out->busy++; break;
        case CONN_IDLE: out->idle++; break;
        case CONN_CONNECTING: out->connecting++; break;
        default: out->down++; break;
        }
    }
}

int pg_pool_create(struct pg_pool **out, uv_loop_t *loop, const struct pg_pool_settings *s,
                   pg_pool_notify_cb notify, void *user)
{
    if (s->size < 1)
        return -EINVAL;
    struct pg_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->conns = calloc((size_t)s->size, sizeof *p->conns);
    p->conninfo = strdup(s->conninfo ? s->conninfo : "");
    if (p->conns == NULL || p->conninfo == NULL) {
        free(p->conns);
        free(p->conninfo);
        free(p);
        return -ENOMEM;
    }
    p->loop = loop;
    p->size = s->size;
    p->notify = notify;
    p->user = user;
    pg_pool_set_max_backoff(p, s->max_backoff_us);
    snprintf(p->timeout_ms, sizeof p->timeout_ms, "%lld",
             (long long)(s->statement_timeout_us > 0 ? s->statement_timeout_us / 1000 : 0));
    snprintf(p->application_name, sizeof p->application_name, "%s",
             s->application_name ? s->application_name : "optsnap");
    for (int i = 0; i < p->size; i++) {
        struct pg_conn *c = &p->conns[i];
        c->pool = p;
        c->index = i;
        uv_timer_init(loop, &c->timer);
        c->timer.data = c;
        p->open_handles++;
    }
    for (int i = 0; i < p->size; i++)
        conn_start(&p->conns[i]);
    *out = p;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    struct pg_conn *c = h->data;
    pool_handle_closed(c->pool);
}

void pg_pool_close(struct pg_pool *p, void (*closed_cb)(void *user), void *user)
{
    p->closing = true;
    p->closed_cb = closed_cb;
    p->closed_user = user;
    /* Keep the pool alive while the loop below closes handles. */
    p->open_handles++;
    for (int i = 0; i < p->size; i++) {
        struct pg_conn *c = &p->conns[i];
        conn_drop(c, PG_TXN_CANCELLED);
        c->state = CONN_CLOSED;
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, timer_closed);
    }
    pool_handle_closed(p);
}
