/* bench_writer.c - the writer against its physical ceiling, in one run:
 *   (1) plain binary COPY of N snapshot rows into an empty table of the same shape;
 *   (2) the writer alone: the same rows, already in memory, through pg_pool +
 *       writer (db_connections, batch_rows) into an empty option_snapshots;
 *   (3) the writer again with the same rows: an unchanged re-poll.
 * Prints rows/s and ratios against (1). Not a test: nothing here asserts time.
 * usage: bench_writer CONNINFO [rows] [db_connections] [batch_rows] */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "optsnap/db/batch.h"
#include "optsnap/db/migrate.h"
#include "optsnap/db/pg_pool.h"
#include "optsnap/db/pgbinary.h"
#include "optsnap/util/timeutil.h"
#include "optsnap/db/writer.h"

static double now_s(void) { return (double)uv_hrtime() / 1e9; }

static void die(const char *what, PGconn *c)
{
    fprintf(stderr, "bench_writer: %s: %s\n", what, c ? PQerrorMessage(c) : "");
    exit(1);
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die(sql, c);
    PQclear(r);
}

/* Realistic rows: 20 underlyings' worth of contracts, every column filled the
 * way a liquid snapshot fills it. Deterministic. */
static struct snapshot_row *make_rows(size_t n)
{
    struct snapshot_row *rows = calloc(n, sizeof *rows);
    if (rows == NULL)
        exit(1);
    int64_t t0;
    if (timestamp_parse("2026-11-02T15:00:00Z", &t0))
        exit(1);
    for (size_t i = 0; i < n; i++) {
        struct snapshot_row *r = &rows[i];
        int und = (int)(i % 20);
        int k = (int)(i / 20);
        snprintf(r->contract.underlying, sizeof r->contract.underlying, "U%02d", und);
        snprintf(r->contract.ticker, sizeof r->contract.ticker, "O:U%02d%06d%c%08d", und,
                 261218 + (k % 7), (k & 1) ? 'C' : 'P', (k / 14 + 1) * 500);
        r->contract.contract_type = (k & 1) ? 'C' : 'P';
        r->contract.exercise_style = 'A';
        r->contract.expiration_days = 20805 + k % 7;
        r->contract.strike_price = (k / 14 + 1) * 0.5;
        r->contract.shares_per_contract = 100;
        r->last_updated_us = t0 + (int64_t)(i % 997) * 1000003;
        for (int c = 0; c < SNAP_NCOLS; c++) {
            if (snap_cols[c].type == SNAP_F64)
                snapshot_row_set_f64(r, (enum snap_col)c, 1.0 + (double)((i * 31 + (size_t)c) % 1000) / 7.0);
            else if (snap_cols[c].type == SNAP_I64)
                snapshot_row_set_i64(r, (enum snap_col)c, (int64_t)((i + (size_t)c) % 5000));
            else
                snapshot_row_set_i64(r, (enum snap_col)c, r->last_updated_us - (int64_t)c * 1000);
        }
    }
    return rows;
}

/* (1) binary COPY: the same bytes the server must parse and store, minus
 * everything upsert adds (conflict checks, options, unnest). */
static double bench_copy(const char *conninfo, const struct snapshot_row *rows, size_t n, bool real_table)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", c);
    if (real_table) {
        /* the real table: partitioned, PK, FK to options (filled first, untimed) */
        exec_ok(c, "TRUNCATE option_snapshots, options CASCADE");
        exec_ok(c, "INSERT INTO options (ticker, underlying, contract_type, expiration_date, strike_price, "
                   "first_seen, last_seen) SELECT DISTINCT ticker, underlying, 'call', date '2026-12-18', 1, now(), now() "
                   "FROM bench_copy_source");
    } else {
        exec_ok(c, "DROP TABLE IF EXISTS bench_copy_target");
        exec_ok(c, "CREATE TABLE bench_copy_target (LIKE option_snapshots INCLUDING DEFAULTS)");
        exec_ok(c, "ALTER TABLE bench_copy_target ADD PRIMARY KEY (ticker, last_updated)");
    }
    exec_ok(c, "CHECKPOINT");
    struct bytebuf b = {0};
    static const char sig[] = "PGCOPY\n\377\r\n";
    bytebuf_append(&b, sig, 11);
    bytebuf_put_u32(&b, 0);
    bytebuf_put_u32(&b, 0);
    double t = now_s();
    PGresult *r = PQexec(c, real_table ? "COPY option_snapshots (ticker, last_updated, day_open, day_high, day_low, "
                            "day_close, day_volume, day_vwap, day_change, day_change_percent, day_previous_close, "
                            "day_time, implied_volatility, open_interest, delta, gamma, theta, vega, bid, ask, "
                            "bid_size, ask_size, midpoint, quote_time, trade_price, trade_size, trade_exchange, "
                            "trade_time, underlying_price, underlying_time, change_to_break_even, "
                            "break_even_price, fmv, underlying, source) FROM STDIN (FORMAT binary)"
                            : "COPY bench_copy_target (ticker, last_updated, day_open, day_high, day_low, "
                            "day_close, day_volume, day_vwap, day_change, day_change_percent, day_previous_close, "
                            "day_time, implied_volatility, open_interest, delta, gamma, theta, vega, bid, ask, "
                            "bid_size, ask_size, midpoint, quote_time, trade_price, trade_size, trade_exchange, "
                            "trade_time, underlying_price, underlying_time, change_to_break_even, "
                            "break_even_price, fmv, underlying, source) FROM STDIN (FORMAT binary)");
    if (PQresultStatus(r) != PGRES_COPY_IN)
        die("COPY", c);
    PQclear(r);
    for (size_t i = 0; i < n; i++) {
        const struct snapshot_row *row = &rows[i];
        /* the columns of 001_schema.sql, named in the COPY above; the later ones stay NULL */
        unsigned char nf[2] = {0, (unsigned char)(2 + SNAP_NCOLS_001 + 2)};
        bytebuf_append(&b, nf, 2);
        size_t tl = strlen(row->contract.ticker);
        bytebuf_put_u32(&b, (uint32_t)tl);
        bytebuf_append(&b, row->contract.ticker, tl);
        bytebuf_put_u32(&b, 8);
        bytebuf_put_u64(&b, (uint64_t)(row->last_updated_us - PG_EPOCH_OFFSET_US));
        for (int col = 0; col < SNAP_NCOLS_001; col++) {
            bytebuf_put_u32(&b, 8);
            if (snap_cols[col].type == SNAP_F64) {
                uint64_t bits;
                memcpy(&bits, &row->v[col].f, 8);
                bytebuf_put_u64(&b, bits);
            } else if (snap_cols[col].type == SNAP_I64) {
                bytebuf_put_u64(&b, (uint64_t)row->v[col].i);
            } else {
                bytebuf_put_u64(&b, (uint64_t)(row->v[col].i - PG_EPOCH_OFFSET_US));
            }
        }
        size_t ul = strlen(row->contract.underlying);
        bytebuf_put_u32(&b, (uint32_t)ul);
        bytebuf_append(&b, row->contract.underlying, ul);
        bytebuf_put_u32(&b, 4);
        bytebuf_append(&b, "live", 4);
        if (b.len > (1 << 20)) {
            if (PQputCopyData(c, b.data, (int)b.len) != 1)
                die("copy data", c);
            bytebuf_reset(&b);
        }
    }
    unsigned char trailer[2] = {0xff, 0xff};
    bytebuf_append(&b, trailer, 2);
    if (PQputCopyData(c, b.data, (int)b.len) != 1 || PQputCopyEnd(c, NULL) != 1)
        die("copy end", c);
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("copy result", c);
    PQclear(r);
    double secs = now_s() - t;
    if (real_table)
        exec_ok(c, "TRUNCATE option_snapshots, options CASCADE");
    else
        exec_ok(c, "DROP TABLE bench_copy_target");
    PQfinish(c);
    bytebuf_free(&b);
    return secs;
}

struct writer_run {
    uv_loop_t loop;
    struct pg_pool *pool;
    const struct snapshot_row *rows;
    size_t n, next, batch_rows;
    int in_flight;
    long written;
    int errors;
    int started;
};

struct job_slot {
    struct writer_job job;
    struct batch *batch;
    struct writer_run *run;
};

static void submit_more(struct writer_run *w);

static void job_done(struct pg_txn *txn, const struct pg_txn_result *r)
{
    struct job_slot *s = txn->user;
    struct writer_run *w = s->run;
    if (r->status != PG_TXN_OK) {
        fprintf(stderr, "bench_writer: batch failed: %s %s\n", r->sqlstate, r->message);
        w->errors++;
    } else {
        w->written += writer_job_rows_written(&s->job, r);
    }
    writer_job_free(&s->job);
    batch_free(s->batch);
    free(s);
    w->in_flight--;
    submit_more(w);
}

static void submit_more(struct writer_run *w)
{
    while (w->next < w->n && pg_pool_has_idle(w->pool)) {
        struct job_slot *s = calloc(1, sizeof *s);
        s->batch = batch_new();
        s->run = w;
        /* one underlying per batch, as the ingester sends them: rows are
         * interleaved by underlying, so take every 20th row of one of them */
        size_t end = w->next + w->batch_rows;
        if (end > w->n)
            end = w->n;
        for (size_t i = w->next; i < end; i++)
            if (batch_add_row(s->batch, &w->rows[i]))
                exit(1);
        w->next = end;
        if (batch_sort_dedupe(s->batch) < 0 ||
            writer_job_build(&s->job, s->batch, w->rows[end - 1].contract.underlying, ROW_SOURCE_LIVE, NULL))
            exit(1);
        s->job.txn.done = job_done;
        s->job.txn.user = s;
        if (pg_pool_submit(w->pool, &s->job.txn))
            exit(1);
        w->in_flight++;
    }
}

static void on_notify(void *user)
{
    struct writer_run *w = user;
    if (w->started)
        submit_more(w);
}

static double bench_writer(const char *conninfo, const struct snapshot_row *rows, size_t n, int conns,
                           size_t batch_rows, long *written)
{
    struct writer_run w = {.rows = rows, .n = n, .batch_rows = batch_rows};
    uv_loop_init(&w.loop);
    struct pg_pool_settings ps = {.conninfo = conninfo, .size = conns, .statement_timeout_us = 60000000};
    if (pg_pool_create(&w.pool, &w.loop, &ps, on_notify, &w))
        exit(1);
    /* wait for every connection before the clock starts */
    for (;;) {
        struct pg_pool_stats st;
        pg_pool_get_stats(w.pool, &st);
        if (st.idle == conns)
            break;
        uv_run(&w.loop, UV_RUN_ONCE);
    }
    double t = now_s();
    w.started = 1;
    submit_more(&w);
    while (w.next < w.n || w.in_flight > 0)
        uv_run(&w.loop, UV_RUN_ONCE);
    double secs = now_s() - t;
    pg_pool_close(w.pool, NULL, NULL);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    uv_loop_close(&w.loop);
    if (w.errors)
        exit(1);
    *written = w.written;
    return secs;
}

/* Sorted by underlying so each batch holds one underlying, like the ingester's. */
static int by_underlying(const void *a, const void *b)
{
    const struct snapshot_row *x = a, *y = b;
    int c = strcmp(x->contract.underlying, y->contract.underlying);
    return c ? c : strcmp(x->contract.ticker, y->contract.ticker);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_writer CONNINFO [rows] [db_connections] [batch_rows]\n");
        return 2;
    }
    const char *conninfo = argv[1];
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 200000;
    int conns = argc > 3 ? atoi(argv[3]) : 4;
    size_t batch_rows = argc > 4 ? strtoul(argv[4], NULL, 10) : 5000;
    int applied;
    if (migrate_apply(conninfo, &applied)) {
        fprintf(stderr, "bench_writer: migrate failed\n");
        return 1;
    }
    struct snapshot_row *rows = make_rows(n);
    qsort(rows, n, sizeof *rows, by_underlying);

    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", c);
    exec_ok(c, "TRUNCATE option_snapshots, options CASCADE");
    /* the (ticker, underlying) pairs, for the untimed options fill of (1b) */
    exec_ok(c, "DROP TABLE IF EXISTS bench_copy_source");
    exec_ok(c, "CREATE TABLE bench_copy_source (ticker text, underlying text)");
    {
        struct bytebuf tb = {0};
        for (size_t i = 0; i < n; i++) {
            bytebuf_append(&tb, rows[i].contract.ticker, strlen(rows[i].contract.ticker));
            bytebuf_append(&tb, "\t", 1);
            bytebuf_append(&tb, rows[i].contract.underlying, strlen(rows[i].contract.underlying));
            bytebuf_append(&tb, "\n", 1);
        }
        PGresult *r = PQexec(c, "COPY bench_copy_source FROM STDIN");
        if (PQresultStatus(r) != PGRES_COPY_IN || PQputCopyData(c, tb.data, (int)tb.len) != 1 ||
            PQputCopyEnd(c, NULL) != 1)
            die("copy source", c);
        PQclear(r);
        r = PQgetResult(c);
        PQclear(r);
        bytebuf_free(&tb);
    }
    double copy_s = bench_copy(conninfo, rows, n, false);
    double copy_real_s = bench_copy(conninfo, rows, n, true);
    exec_ok(c, "CHECKPOINT");
    long w1 = 0, w2 = 0;
    double writer_s = bench_writer(conninfo, rows, n, conns, batch_rows, &w1);
    exec_ok(c, "CHECKPOINT");
    double repoll_s = bench_writer(conninfo, rows, n, conns, batch_rows, &w2);
    /* (2c) what the per-row foreign-key check costs: the same first write
     * without the FK (DESIGN §3 asks for it; this measures its price) */
    exec_ok(c, "TRUNCATE option_snapshots, options CASCADE");
    exec_ok(c, "ALTER TABLE option_snapshots DROP CONSTRAINT option_snapshots_ticker_fkey");
    exec_ok(c, "CHECKPOINT");
    long w3 = 0;
    double nofk_s = bench_writer(conninfo, rows, n, conns, batch_rows, &w3);
    exec_ok(c, "TRUNCATE option_snapshots, options CASCADE");
    exec_ok(c, "ALTER TABLE option_snapshots ADD CONSTRAINT option_snapshots_ticker_fkey "
               "FOREIGN KEY (ticker) REFERENCES options (ticker)");
    PQfinish(c);

    double copy_real_rps = (double)n / copy_real_s;
    double copy_rps = (double)n / copy_s, writer_rps = (double)n / writer_s, repoll_rps = (double)n / repoll_s;
    printf("rows=%zu db_connections=%d batch_rows=%zu\n", n, conns, batch_rows);
    printf("(1) binary COPY ceiling      %10.0f rows/s  %7.3f s  ratio 1.00  (empty table, same columns + PK)\n", copy_rps, copy_s);
    printf("(1b) binary COPY into option_snapshots %8.0f rows/s  %7.3f s  ratio %.2f  (partitioned, PK + FK to options)\n",
           copy_real_rps, copy_real_s, copy_real_rps / copy_rps);
    printf("(2) writer, first write       %10.0f rows/s  %7.3f s  ratio %.2f of (1), %.2f of (1b)  (rows written %ld)\n",
           writer_rps, writer_s, writer_rps / copy_rps, writer_rps / copy_real_rps, w1);
    printf("(2b) writer, unchanged re-poll %9.0f rows/s  %7.3f s  ratio %.2f of COPY  (rows written %ld)  %.2fx the first write\n",
           repoll_rps, repoll_s, repoll_rps / copy_rps, w2, writer_s / repoll_s);
    double nofk_rps = (double)n / nofk_s;
    printf("(2c) writer without the FK     %9.0f rows/s  %7.3f s  ratio %.2f of (1)  (%.2fx the writer with it)\n",
           nofk_rps, nofk_s, nofk_rps / copy_rps, writer_s / nofk_s);
    free(rows);
    return w1 == (long)n && w2 == 0 && w3 == (long)n ? 0 : 1;
}
