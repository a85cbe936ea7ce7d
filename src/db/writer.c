/* writer.c - batch -> one transaction of constant SQL with binary unnest() arrays. */
#include "optsnap/db/writer.h"

#include <stdio.h>
#include <string.h>

#include "optsnap/util/timeutil.h"

const char writer_sql_options[] =
    "INSERT INTO options (ticker, underlying, contract_type, exercise_style, expiration_date, "
    "strike_price, shares_per_contract, first_seen, last_seen) "
    "SELECT u.t, $2::text, u.ct, u.es, u.exp, u.k, u.spc, u.seen, u.seen "
    "FROM unnest($1::text[], $3::text[], $4::text[], $5::date[], $6::float8[], $7::int4[], "
    "$8::timestamptz[]) AS u(t, ct, es, exp, k, spc, seen) "
    "ON CONFLICT (ticker) DO NOTHING";

/* A separate UPDATE, not DO UPDATE: ON CONFLICT DO UPDATE locks every
 * conflicting row even when its WHERE is false, and most polls change nothing. */
const char writer_sql_last_seen[] =
    "UPDATE options AS o SET last_seen = u.seen "
    "FROM unnest($1::text[], $2::timestamptz[]) AS u(t, seen) "
    "WHERE o.ticker = u.t AND o.last_seen < u.seen - interval '30 minutes'";

const char writer_sql_snapshots[] =
    "INSERT INTO option_snapshots AS s (ticker, last_updated, "
    "day_open, day_high, day_low, day_close, day_volume, day_vwap, day_change, "
    "day_change_percent, day_previous_close, day_time, implied_volatility, open_interest, "
    "delta, gamma, theta, vega, bid, ask, bid_size, ask_size, midpoint, quote_time, "
    "trade_price, trade_size, trade_exchange, trade_time, underlying_price, underlying_time, "
    "change_to_break_even, break_even_price, fmv, quote_timeframe, bid_exchange, ask_exchange, "
    "trade_timeframe, trade_conditions, underlying_value, underlying_timeframe, fmv_time, "
    "last_updated_fallback, underlying, source) "
    "SELECT u.*, $43::text, $44::text FROM unnest("
    "$1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], "
    "$7::int8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::timestamptz[], "
    "$13::float8[], $14::int8[], $15::float8[], $16::float8[], $17::float8[], $18::float8[], "
    "$19::float8[], $20::float8[], $21::int8[], $22::int8[], $23::float8[], "
    "$24::timestamptz[], $25::float8[], $26::int8[], $27::int8[], $28::timestamptz[], "
    "$29::float8[], $30::timestamptz[], $31::float8[], $32::float8[], $33::float8[], "
    "$34::text[], $35::int8[], $36::int8[], $37::text[], $38::jsonb[], $39::float8[], "
    "$40::text[], $41::timestamptz[], $42::bool[]) AS u "
    "ON CONFLICT (ticker, last_updated) DO UPDATE SET "
    "day_open = EXCLUDED.day_open, day_high = EXCLUDED.day_high, day_low = EXCLUDED.day_low, "
    "day_close = EXCLUDED.day_close, day_volume = EXCLUDED.day_volume, "
    "day_vwap = EXCLUDED.day_vwap, day_change = EXCLUDED.day_change, "
    "day_change_percent = EXCLUDED.day_change_percent, "
    "day_previous_close = EXCLUDED.day_previous_close, day_time = EXCLUDED.day_time, "
    "implied_volatility = EXCLUDED.implied_volatility, open_interest = EXCLUDED.open_interest, "
    "delta = EXCLUDED.delta, gamma = EXCLUDED.gamma, theta = EXCLUDED.theta, "
    "vega = EXCLUDED.vega, bid = EXCLUDED.bid, ask = EXCLUDED.ask, "
    "bid_size = EXCLUDED.bid_size, ask_size = EXCLUDED.ask_size, midpoint = EXCLUDED.midpoint, "
    "quote_time = EXCLUDED.quote_time, trade_price = EXCLUDED.trade_price, "
    "trade_size = EXCLUDED.trade_size, trade_exchange = EXCLUDED.trade_exchange, "
    "trade_time = EXCLUDED.trade_time, underlying_price = EXCLUDED.underlying_price, "
    "underlying_time = EXCLUDED.underlying_time, "
    "change_to_break_even = EXCLUDED.change_to_break_even, "
    "break_even_price = EXCLUDED.break_even_price, fmv = EXCLUDED.fmv, "
    "quote_timeframe = EXCLUDED.quote_timeframe, bid_exchange = EXCLUDED.bid_exchange, "
    "ask_exchange = EXCLUDED.ask_exchange, trade_timeframe = EXCLUDED.trade_timeframe, "
    "trade_conditions = EXCLUDED.trade_conditions, "
    "underlying_value = EXCLUDED.underlying_value, "
    "underlying_timeframe = EXCLUDED.underlying_timeframe, fmv_time = EXCLUDED.fmv_time, "
    "last_updated_fallback = EXCLUDED.last_updated_fallback, source = EXCLUDED.source, "
    "ingested_at = now() "
    "WHERE (EXCLUDED.source = 'live' OR s.source = 'backfill') AND ("
    "s.day_open, s.day_high, s.day_low, s.day_close, s.day_volume, s.day_vwap, s.day_change, "
    "s.day_change_percent, s.day_previous_close, s.day_time, s.implied_volatility, "
    "s.open_interest, s.delta, s.gamma, s.theta, s.vega, s.bid, s.ask, s.bid_size, s.ask_size, "
    "s.midpoint, s.quote_time, s.trade_price, s.trade_size, s.trade_exchange, s.trade_time, "
    "s.underlying_price, s.underlying_time, s.change_to_break_even, s.break_even_price, s.fmv, "
    "s.quote_timeframe, s.bid_exchange, s.ask_exchange, s.trade_timeframe, s.trade_conditions, "
    "s.underlying_value, s.underlying_timeframe, s.fmv_time, s.last_updated_fallback, "
    "s.source) IS DISTINCT FROM ("
    "EXCLUDED.day_open, EXCLUDED.day_high, EXCLUDED.day_low, EXCLUDED.day_close, "
    "EXCLUDED.day_volume, EXCLUDED.day_vwap, EXCLUDED.day_change, EXCLUDED.day_change_percent, "
    "EXCLUDED.day_previous_close, EXCLUDED.day_time, EXCLUDED.implied_volatility, "
    "EXCLUDED.open_interest, EXCLUDED.delta, EXCLUDED.gamma, EXCLUDED.theta, EXCLUDED.vega, "
    "EXCLUDED.bid, EXCLUDED.ask, EXCLUDED.bid_size, EXCLUDED.ask_size, EXCLUDED.midpoint, "
    "EXCLUDED.quote_time, EXCLUDED.trade_price, EXCLUDED.trade_size, EXCLUDED.trade_exchange, "
    "EXCLUDED.trade_time, EXCLUDED.underlying_price, EXCLUDED.underlying_time, "
    "EXCLUDED.change_to_break_even, EXCLUDED.break_even_price, EXCLUDED.fmv, "
    "EXCLUDED.quote_timeframe, EXCLUDED.bid_exchange, EXCLUDED.ask_exchange, "
    "EXCLUDED.trade_timeframe, EXCLUDED.trade_conditions, EXCLUDED.underlying_value, "
    "EXCLUDED.underlying_timeframe, EXCLUDED.fmv_time, EXCLUDED.last_updated_fallback, "
    "EXCLUDED.source)";

/* $9: the batch's write token (NULL = none): a batch sent again after a
 * COMMIT whose outcome is unknown writes each of its rejects once. */
const char writer_sql_rejects[] =
    "INSERT INTO ingest_rejects (underlying, ticker, reason, raw, request_id, source, kind, key_time, "
    "write_token, write_ordinal) "
    "SELECT $1::text, u.t, u.r, u.raw, u.id, $6::text, u.k, u.kt, $9::text, u.n::int4 "
    "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $7::text[], $8::timestamptz[]) WITH ORDINALITY "
    "AS u(t, r, raw, id, k, kt, n) "
    "ON CONFLICT (write_token, write_ordinal) WHERE write_token IS NOT NULL DO NOTHING";

/* Reference data of contracts (/v3/reference/options/contracts) onto the
 * contracts already in `options`; a contract not there yet gets it from the
 * next listing after its first snapshot. Rows that would not change are
 * not touched. */
const char writer_sql_contract_reference[] =
    "UPDATE options AS o SET primary_exchange = u.pe, cfi = u.cfi, additional_underlyings = u.au, "
    "reference_updated_at = now() "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) AS u(t, pe, cfi, au) "
    "WHERE o.ticker = u.t AND (o.primary_exchange, o.cfi, o.additional_underlyings) "
    "IS DISTINCT FROM (u.pe, u.cfi, u.au)";

/* A live mark replaces a backfill one, never another live one (a window is
 * swept live once: windows only move forward), and never marks a window that
 * has not started by the database's clock (plus the skew bound, $6): a
 * daemon whose clock runs ahead marks nothing. With a lease ($7 holder, $8
 * epoch; NULL = not fenced) it marks only while that lease is live and of
 * that epoch, and holds the lease row FOR SHARE so a claim waits for it. No
 * row inserted = refused. */
const char writer_sql_coverage[] =
    "INSERT INTO ingest_coverage (underlying, window_start, window_end, source, rows, holder, epoch) "
    "SELECT $1::text, $2::timestamptz, $3::timestamptz, $4::text, $5::int4, $7::text, $8::int8 "
    "WHERE $2::timestamptz <= now() + $6::int8 * interval '1 microsecond' "
    "AND ($7::text IS NULL OR EXISTS (SELECT 1 FROM ingest_leases l WHERE l.kind = 'live' AND l.underlying = $1::text "
    "AND l.holder = $7::text AND l.epoch = $8::int8 AND l.expires_at > clock_timestamp() FOR SHARE)) "
    "ON CONFLICT (underlying, window_start) DO UPDATE SET window_end = EXCLUDED.window_end, "
    "rows = EXCLUDED.rows, completed_at = now(), source = EXCLUDED.source, holder = EXCLUDED.holder, "
    "epoch = EXCLUDED.epoch "
    "WHERE ingest_coverage.source <> 'live'";

/* Backfill: every expected window of [$2, $3) that has ended by the
 * database's clock, under the history lease ($8 holder, $9 epoch; NULL =
 * not fenced); never replacing a mark. */
const char writer_sql_coverage_range[] =
    "INSERT INTO ingest_coverage (underlying, window_start, window_end, source, rows, holder, epoch) "
    "SELECT $1::text, w.window_start, w.window_end, $4::text, $5::int4, $8::text, $9::int8 "
    "FROM optsnap_expected_windows($6::text, ($7::text || ' microseconds')::interval, "
    "$2::timestamptz, $3::timestamptz) AS w "
    "WHERE w.window_end <= now() "
    "AND ($8::text IS NULL OR EXISTS (SELECT 1 FROM ingest_leases l WHERE l.kind = 'history' "
    "AND l.underlying = $1::text AND l.holder = $8::text AND l.epoch = $9::int8 "
    "AND l.expires_at > clock_timestamp() FOR SHARE)) "
    "ON CONFLICT (underlying, window_start) DO NOTHING";

static const char *const stmt_names[] = {
    [WSTMT_OPTIONS] = "insert_options",     [WSTMT_LAST_SEEN] = "touch_options",
    [WSTMT_SNAPSHOTS] = "upsert_snapshots", [WSTMT_REJECTS] = "insert_rejects",
    [WSTMT_COVERAGE] = "mark_coverage",       [WSTMT_COVERAGE_RANGE] = "mark_coverage_range",
    [WSTMT_CONTRACT_REFERENCE] = "update_contract_reference",
};

static const unsigned int col_array_oid[] = {
    [SNAP_F64] = PG_OID_FLOAT8_ARRAY, [SNAP_I64] = PG_OID_INT8_ARRAY,
    [SNAP_TS] = PG_OID_TIMESTAMPTZ_ARRAY, [SNAP_TIMEFRAME] = PG_OID_TEXT_ARRAY,
    [SNAP_CONDITIONS] = PG_OID_JSONB_ARRAY};
static const unsigned int col_elem_oid[] = {
    [SNAP_F64] = PG_OID_FLOAT8, [SNAP_I64] = PG_OID_INT8, [SNAP_TS] = PG_OID_TIMESTAMPTZ,
    [SNAP_TIMEFRAME] = PG_OID_TEXT, [SNAP_CONDITIONS] = PG_OID_JSONB};

/* Array parameters are appended to j->buf; their offsets are resolved into
 * pointers once the buffer stops growing. */
static void param_array_begin(struct writer_job *j, struct pgarray *a, int stmt, int param,
                              unsigned int array_oid, unsigned int elem_oid)
{
    struct writer_stmt_params *p = &j->params[stmt];
    p->types[param] = array_oid;
    p->formats[param] = 1;
    pgarray_begin(a, &j->buf, elem_oid);
    p->offsets[param] = a->start;
}

static void param_array_end(struct writer_job *j, struct pgarray *a, int stmt, int param)
{
    struct writer_stmt_params *p = &j->params[stmt];
    size_t at = pgarray_end(a);
    p->lengths[param] = (int)(j->buf.len - at);
}

static void param_text(struct writer_job *j, int stmt, int param, int slot, const char *v)
{
    struct writer_stmt_params *p = &j->params[stmt];
    p->types[param] = PG_OID_TEXT;
    p->formats[param] = 0;
    p->lengths[param] = 0;
    p->offsets[param] = SIZE_MAX;
    if (v == NULL) {
        p->values[param] = NULL;
        return;
    }
    snprintf(p->text[slot], sizeof p->text[slot], "%s", v);
    p->values[param] = p->text[slot];
}

static int add_stmt(struct writer_job *j, enum writer_stmt_kind kind, const char *sql, int nparams)
{
    int i = j->txn.nstmts++;
    j->kinds[i] = kind;
    struct pg_stmt *st = &j->txn.stmts[i];
    st->name = stmt_names[kind];
    st->sql = sql;
    st->nparams = nparams;
    st->types = j->params[i].types;
    st->values = j->params[i].values;
    st->lengths = j->params[i].lengths;
    st->formats = j->params[i].formats;
    return i;
}

/* Each contract of a sorted batch: i its first row, e past its last; skipping known ones. */
#define FOR_EACH_NEW_CONTRACT(i, e, b, known) \
    for (size_t i = 0, e = batch_contract_end(b, 0); i < (b)->nrows; i = e, e = i < (b)->nrows ? batch_contract_end(b, i) : i) \
        if (!(known) || !(known)[i])

static void build_options(struct writer_job *j, const struct batch *b, const char *underlying, const bool *known)
{
    bool any = false;
    FOR_EACH_NEW_CONTRACT(i, e, b, known) {
        (void)e;
        any = true;
        break;
    }
    if (!any)
        return; /* every contract known to be in options with a fresh last_seen */
    int s = add_stmt(j, WSTMT_OPTIONS, writer_sql_options, 8);
    struct pgarray t, ct, es, exp, k, spc, seen;
    param_array_begin(j, &t, s, 0, PG_OID_TEXT_ARRAY, PG_OID_TEXT);
    FOR_EACH_NEW_CONTRACT(i, e, b, known)
        pgarray_add_text(&t, b->rows[i].contract.ticker, strlen(b->rows[i].contract.ticker));
    param_array_end(j, &t, s, 0);
    param_text(j, s, 1, 0, underlying);
    param_array_begin(j, &ct, s, 2, PG_OID_TEXT_ARRAY, PG_OID_TEXT);
    FOR_EACH_NEW_CONTRACT(i, e, b, known) {
        const char *n = option_contract_type_name(b->rows[i].contract.contract_type);
        pgarray_add_text(&ct, n, strlen(n));
    }
    param_array_end(j, &ct, s, 2);
    param_array_begin(j, &es, s, 3, PG_OID_TEXT_ARRAY, PG_OID_TEXT);
    FOR_EACH_NEW_CONTRACT(i, e, b, known) {
        const char *n = option_exercise_style_name(b->rows[i].contract.exercise_style);
        if (n)
            pgarray_add_text(&es, n, strlen(n));
        else
            pgarray_add_null(&es);
    }
    param_array_end(j, &es, s, 3);
    param_array_begin(j, &exp, s, 4, PG_OID_DATE_ARRAY, PG_OID_DATE);
    FOR_EACH_NEW_CONTRACT(i, e, b, known)
        pgarray_add_date(&exp, b->rows[i].contract.expiration_days);
    param_array_end(j, &exp, s, 4);
    param_array_begin(j, &k, s, 5, PG_OID_FLOAT8_ARRAY, PG_OID_FLOAT8);
    FOR_EACH_NEW_CONTRACT(i, e, b, known)
        pgarray_add_float8(&k, b->rows[i].contract.strike_price);
    param_array_end(j, &k, s, 5);
    param_array_begin(j, &spc, s, 6, PG_OID_INT4_ARRAY, PG_OID_INT4);
    FOR_EACH_NEW_CONTRACT(i, e, b, known) {
        if (b->rows[i].contract.shares_per_contract > 0)
            pgarray_add_int4(&spc, b->rows[i].contract.shares_per_contract);
        else
            pgarray_add_null(&spc);
    }
    param_array_end(j, &spc, s, 6);
    /* first/last seen: the newest event of the contract in this batch (rows are
     * sorted by ticker, then time, so it is the group's last row) */
    param_array_begin(j, &seen, s, 7, PG_OID_TIMESTAMPTZ_ARRAY, PG_OID_TIMESTAMPTZ);
    FOR_EACH_NEW_CONTRACT(i, e, b, known)
        pgarray_add_timestamptz(&seen, b->rows[e - 1].last_updated_us);
    param_array_end(j, &seen, s, 7);

    int u = add_stmt(j, WSTMT_LAST_SEEN, writer_sql_last_seen, 2);
    /* same arrays as the insert: share the bytes */
    j->params[u].types[0] = PG_OID_TEXT_ARRAY;
    j->params[u].formats[0] = 1;
    j->params[u].offsets[0] = j->params[s].offsets[0];
    j->params[u].lengths[0] = j->params[s].lengths[0];
    j->params[u].types[1] = PG_OID_TIMESTAMPTZ_ARRAY;
    j->params[u].formats[1] = 1;
    j->params[u].offsets[1] = j->params[s].offsets[7];
    j->params[u].lengths[1] = j->params[s].lengths[7];
}

static void build_snapshots(struct writer_job *j, const struct batch *b, const char *underlying,
                            enum row_source source)
{
    int s = add_stmt(j, WSTMT_SNAPSHOTS, writer_sql_snapshots, 2 + SNAP_NCOLS + 3);
    struct pgarray a;
    param_array_begin(j, &a, s, 0, PG_OID_TEXT_ARRAY, PG_OID_TEXT);
    for (size_t i = 0; i < b->nrows; i++)
        pgarray_add_text(&a, b->rows[i].contract.ticker, strlen(b->rows[i].contract.ticker));
    param_array_end(j, &a, s, 0);
    param_array_begin(j, &a, s, 1, PG_OID_TIMESTAMPTZ_ARRAY, PG_OID_TIMESTAMPTZ);
    for (size_t i = 0; i < b->nrows; i++)
        pgarray_add_timestamptz(&a, b->rows[i].last_updated_us);
    param_array_end(j, &a, s, 1);
    for (int c = 0; c < SNAP_NCOLS; c++) {
        enum snap_col_type t = snap_cols[c].type;
        param_array_begin(j, &a, s, 2 + c, col_array_oid[t], col_elem_oid[t]);
        for (size_t i = 0; i < b->nrows; i++) {
            const struct snapshot_row *r = &b->rows[i];
            const char *tf;
            if (!snapshot_row_has(r, (enum snap_col)c)) {
                pgarray_add_null(&a);
            } else if (t == SNAP_F64) {
                pgarray_add_float8(&a, r->v[c].f);
            } else if (t == SNAP_I64) {
                pgarray_add_int8(&a, r->v[c].i);
            } else if (t == SNAP_TS) {
                pgarray_add_timestamptz(&a, r->v[c].i);
            } else if (t == SNAP_TIMEFRAME && (tf = snap_timeframe_name(r->v[c].i)) != NULL) {
                pgarray_add_text(&a, tf, strlen(tf));
            } else if (t == SNAP_CONDITIONS) {
                char json[SNAP_CONDITIONS_MAX * 12 + 3];
                size_t n = 0;
                json[n++] = '[';
                for (unsigned k = 0; k < r->nconditions && k < SNAP_CONDITIONS_MAX; k++)
                    n += (size_t)snprintf(json + n, sizeof json - n, "%s%d", k ? "," : "", (int)r->conditions[k]);
                json[n++] = ']';
                pgarray_add_jsonb(&a, json, n);
            } else {
                pgarray_add_null(&a);
            }
        }
        param_array_end(j, &a, s, 2 + c);
    }
    param_array_begin(j, &a, s, 2 + SNAP_NCOLS, PG_OID_BOOL_ARRAY, PG_OID_BOOL);
    for (size_t i = 0; i < b->nrows; i++)
        pgarray_add_bool(&a, b->rows[i].last_updated_fallback);
    param_array_end(j, &a, s, 2 + SNAP_NCOLS);
    param_text(j, s, 3 + SNAP_NCOLS, 0, underlying);
    param_text(j, s, 4 + SNAP_NCOLS, 1, row_source_name(source));
}

static void build_rejects(struct writer_job *j, const struct batch *b, const char *underlying,
                          enum row_source source)
{
    int s = add_stmt(j, WSTMT_REJECTS, writer_sql_rejects, 9);
    struct pgarray a;
    param_text(j, s, 0, 0, underlying);
    param_array_begin(j, &a, s, 1, PG_OID_TEXT_ARRAY, PG_OID_TEXT);
    for (size_t i = 0; i < b->nrejects; i++) {
        if (b->rejects[i].ticker[0])
            pgarray_add_text(&a, b->rejects[i].ticker, strlen(b->rejects[i].ticker));
        else
            pgarray_add_null(&a);
    }
    param_array_end(j, &a, s, 1);
    param_array_begin(j, &a, s, 2, PG_OID_TEXT_ARRAY, PG_OID_TEXT);
    for (size_t i = 0; i < b->nrejects; i++)
        pgarray_add_text(&a, b->rejects[i].reason, strlen(b->rejects[i].reason));
    param_array_end(j, &a, s, 2);
    param_array_begin(j, &a, s, 3, PG_OID_TEXT_ARRAY, PG_OID_TEXT);
    for (size_t i = 0; i < b->nrejects; i++)
        pgarray_add_text(&a, b->rejects[i].raw ? b->rejects[i].raw : "",
                         b->rejects[i].raw ? b->rejects[i].raw_len : 0);
    param_array_end(j, &a, s, 3);
    param_array_begin(j, &a, s, 4, PG_OID_TEXT_ARRAY, PG_OID_TEXT);
    for (size_t i = 0; i < b->nrejects; i++) { /* each its own page's: a batch may hold several pages' */
        if (b->rejects[i].request_id[0])
            pgarray_add_text(&a, b->rejects[i].request_id, strlen(b->rejects[i].request_id));
        else
            pgarray_add_null(&a);
    }
    param_array_end(j, &a, s, 4);
    param_text(j, s, 5, 2, row_source_name(source));
    param_array_begin(j, &a, s, 6, PG_OID_TEXT_ARRAY, PG_OID_TEXT);
    for (size_t i = 0; i < b->nrejects; i++) {
        const char *k = reject_kind_name(b->rejects[i].kind);
        pgarray_add_text(&a, k, strlen(k));
    }
    param_array_end(j, &a, s, 6);
    param_array_begin(j, &a, s, 7, PG_OID_TIMESTAMPTZ_ARRAY, PG_OID_TIMESTAMPTZ);
    for (size_t i = 0; i < b->nrejects; i++) {
        if (b->rejects[i].key_us != 0)
            pgarray_add_timestamptz(&a, b->rejects[i].key_us);
        else
            pgarray_add_null(&a);
    }
    param_array_end(j, &a, s, 7);
    param_text(j, s, 8, 3, b->write_token[0] ? b->write_token : NULL);
}

static void build_coverage(struct writer_job *j, const char *underlying, enum row_source source,
                           const struct coverage_mark *cov)
{
    int s = cov->calendar ? add_stmt(j, WSTMT_COVERAGE_RANGE, writer_sql_coverage_range, 9)
                          : add_stmt(j, WSTMT_COVERAGE, writer_sql_coverage, 8);
    char epoch[24];
    snprintf(epoch, sizeof epoch, "%lld", (long long)cov->lease_epoch);
    int lease_at = cov->calendar ? 7 : 6;
    param_text(j, s, lease_at, 7, cov->lease_holder);
    param_text(j, s, lease_at + 1, cov->calendar ? 8 : 5, cov->lease_holder ? epoch : NULL);
    if (!cov->calendar) {
        char ahead[24];
        snprintf(ahead, sizeof ahead, "%lld", (long long)cov->max_ahead_us);
        param_text(j, s, 5, 6, ahead);
    } else {
        char cad[24];
        snprintf(cad, sizeof cad, "%lld", (long long)cov->cadence_us);
        param_text(j, s, 5, 5, cov->calendar);
        param_text(j, s, 6, 6, cad);
    }
    char ts[40], n[24];
    param_text(j, s, 0, 0, underlying);
    param_text(j, s, 1, 1, timestamp_format(ts, sizeof ts, cov->window_start_us));
    param_text(j, s, 2, 2, timestamp_format(ts, sizeof ts, cov->window_end_us));
    param_text(j, s, 3, 3, row_source_name(source));
    snprintf(n, sizeof n, "%ld", cov->rows > 2147483647L ? 2147483647L : cov->rows);
    param_text(j, s, 4, 4, n);
}

/* Points the binary parameters at their bytes once the buffer stopped growing. */
static int resolve_params(struct writer_job *j)
{
    if (j->buf.failed) {
        bytebuf_free(&j->buf);
        return -1;
    }
    for (int s = 0; s < j->txn.nstmts; s++) {
        struct writer_stmt_params *p = &j->params[s];
        for (int k = 0; k < j->txn.stmts[s].nparams; k++)
            if (p->formats[k] == 1)
                p->values[k] = j->buf.data + p->offsets[k];
    }
    return 0;
}

int writer_job_build(struct writer_job *j, const struct batch *b, const char *underlying,
                     enum row_source source, const struct coverage_mark *cov)
{
    return writer_job_build_known(j, b, underlying, source, cov, NULL);
}

int writer_job_build_known(struct writer_job *j, const struct batch *b, const char *underlying,
                           enum row_source source, const struct coverage_mark *cov, const bool *known)
{
    memset(j, 0, sizeof *j);
    if (b->nrows > 0) {
        build_options(j, b, underlying, known);
        build_snapshots(j, b, underlying, source);
    }
    if (b->nrejects > 0)
        build_rejects(j, b, underlying, source);
    if (cov) {
        build_coverage(j, underlying, source, cov);
        j->has_coverage = true;
    }
    if (resolve_params(j))
        return -1;
    j->nrows = (long)b->nrows;
    j->nrejects = (long)b->nrejects;
    return 0;
}

bool writer_job_mark_refused(const struct writer_job *j, const struct pg_txn_result *r)
{
    for (int s = 0; s < j->txn.nstmts; s++)
        if (j->kinds[s] == WSTMT_COVERAGE)
            return r->status == PG_TXN_OK && r->affected[s] == 0;
    return false;
}

/* Parameter col of the reference statement for contract i: ticker,
 * primary_exchange, cfi (text) and additional_underlyings (jsonb); NULL is
 * SQL NULL (a field the API did not send). */
static const char *reference_value(const struct contracts_page *page, size_t i, int col)
{
    const struct contract_reference *r = &page->refs[i];
    switch (col) {
    case 0: return page->contracts[i].ticker;
    case 1: return r->primary_exchange[0] ? r->primary_exchange : NULL;
    case 2: return r->cfi[0] ? r->cfi : NULL;
    default: return r->additional_underlyings;
    }
}

int writer_contracts_job_build(struct writer_job *j, const struct contracts_page *page)
{
    memset(j, 0, sizeof *j);
    size_t n = 0;
    for (size_t i = 0; i < page->ncontracts; i++)
        n += page->refs[i].has_reference;
    if (n == 0)
        return 0;
    int s = add_stmt(j, WSTMT_CONTRACT_REFERENCE, writer_sql_contract_reference, 4);
    struct pgarray a;
    for (int col = 0; col < 4; col++) {
        bool jsonb = col == 3;
        param_array_begin(j, &a, s, col, jsonb ? PG_OID_JSONB_ARRAY : PG_OID_TEXT_ARRAY,
                          jsonb ? PG_OID_JSONB : PG_OID_TEXT);
        for (size_t i = 0; i < page->ncontracts; i++) {
            if (!page->refs[i].has_reference)
                continue;
            const char *v = reference_value(page, i, col);
            if (v == NULL)
                pgarray_add_null(&a);
            else if (jsonb)
                pgarray_add_jsonb(&a, v, strlen(v));
            else
                pgarray_add_text(&a, v, strlen(v));
        }
        param_array_end(j, &a, s, col);
    }
    if (resolve_params(j))
        return -1;
    j->nrows = (long)n;
    return 0;
}

long writer_job_rows_written(const struct writer_job *j, const struct pg_txn_result *r)
{
    for (int s = 0; s < j->txn.nstmts; s++)
        if (j->kinds[s] == WSTMT_SNAPSHOTS)
            return r->affected[s];
    return 0;
}

const char *writer_job_failed_name(const struct writer_job *j, const struct pg_txn_result *r)
{
    if (r->failed_stmt < 0 || r->failed_stmt >= j->txn.nstmts)
        return r->failed_stmt < 0 && r->status == PG_TXN_SQL_ERROR ? "set_statement_timeout"
                                                                    : "transaction";
    return stmt_names[j->kinds[r->failed_stmt]];
}

void writer_job_free(struct writer_job *j) { bytebuf_free(&j->buf); }
