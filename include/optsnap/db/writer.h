/* writer.h - turns a batch into one transaction of constant, parameterised
 * statements with binary array parameters (unnest), for the pg_pool:
 *   1. insert new contracts into options (direct key, no sub-select, DO NOTHING)
 *   2. touch options.last_seen where it moved by 30 minutes or more
 *   3. upsert snapshots ON CONFLICT (ticker, last_updated) DO UPDATE ...
 *      WHERE ... IS DISTINCT FROM ..., a backfill row never overwriting a live one
 *   4. insert rejects into ingest_rejects (kind reject/partial/refused, key_time)
 *   5. mark the window covered in ingest_coverage (the sweep's last batch only)
 * Statements with nothing to do are left out. Wraps nothing: builds parameters. */
#ifndef OPTSNAP_WRITER_H
#define OPTSNAP_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "optsnap/api/reference_parse.h"
#include "optsnap/db/batch.h"
#include "optsnap/db/pg_txn.h"
#include "optsnap/db/pgbinary.h"

#define WRITER_MAX_PARAMS 48

struct coverage_mark {
    int64_t window_start_us;
    int64_t window_end_us;
    long rows; /* rows fetched in the window's sweep */
    /* Live (one window): refused unless window_start <= the database's now()
     * + max_ahead_us (the clock-skew bound). */
    int64_t max_ahead_us;
    /* The lease the mark is fenced by (live: kind 'live', backfill: kind
     * 'history'): refused unless that lease is live, ours and of this epoch.
     * NULL holder = not fenced. The string must outlive the job. */
    const char *lease_holder;
    int64_t lease_epoch;
    /* Backfill: when calendar is set, every expected window of that calendar
     * and cadence inside [window_start_us, window_end_us) is marked (source
     * backfill never replaces a live mark), instead of the one window. */
    const char *calendar;
    int64_t cadence_us;
};

enum writer_stmt_kind { WSTMT_OPTIONS, WSTMT_LAST_SEEN, WSTMT_SNAPSHOTS, WSTMT_REJECTS, WSTMT_COVERAGE, WSTMT_COVERAGE_RANGE,
                        WSTMT_CONTRACT_REFERENCE };

struct writer_stmt_params {
    unsigned int types[WRITER_MAX_PARAMS];
    const char *values[WRITER_MAX_PARAMS];
    int lengths[WRITER_MAX_PARAMS];
    int formats[WRITER_MAX_PARAMS];
    size_t offsets[WRITER_MAX_PARAMS]; /* into buf, resolved to values once built */
    char text[10][128];                /* scalar text parameters */
};

/* One batch's transaction. Embeds the pg_txn; owns its parameter memory. The
 * batch must outlive the job (the job points at nothing in it after build,
 * but the caller keeps it for retries and bisection). */
struct writer_job {
    struct pg_txn txn;
    struct bytebuf buf;
    struct writer_stmt_params params[PG_TXN_MAX_STMTS];
    enum writer_stmt_kind kinds[PG_TXN_MAX_STMTS];
    long nrows, nrejects;
    bool has_coverage;
};

/* Builds the job for batch b (sorted and deduplicated by the caller).
 * `cov` may be NULL. Returns 0, or -1 when out of memory. On success txn.done
 * and txn.user are left for the caller to set. */
int writer_job_build(struct writer_job *j, const struct batch *b, const char *underlying,
                     enum row_source source, const struct coverage_mark *cov)
    __attribute__((warn_unused_result));

/* The same, where known[i] (one per row; NULL = none known) true on the first
 * row of a contract's group in b says the contract is known to be in
 * `options` with a last_seen that needs no touch (the skip cache's word,
 * fingerprint.h): its rows skip the options statements, which are left out
 * when every contract is known. */
int writer_job_build_known(struct writer_job *j, const struct batch *b, const char *underlying,
                           enum row_source source, const struct coverage_mark *cov, const bool *known)
    __attribute__((warn_unused_result));

/* Builds the job that writes a contracts page's reference data
 * (primary_exchange, cfi, additional_underlyings) onto `options` (one
 * UPDATE; contracts not yet in `options` are left for a later listing).
 * Returns 0 (j->txn.nstmts == 0 when the page has no such data: nothing to
 * submit), or -1 when out of memory. The page must outlive the job. */
int writer_contracts_job_build(struct writer_job *j, const struct contracts_page *page)
    __attribute__((warn_unused_result));

/* Rows written (inserted or changed) by the snapshot upsert, from a result; -1 if absent. */
long writer_job_rows_written(const struct writer_job *j, const struct pg_txn_result *r);

/* True when the transaction committed but its one-window mark was refused
 * (the window had not started by the database's clock, or is already live). */
bool writer_job_mark_refused(const struct writer_job *j, const struct pg_txn_result *r);

/* Name of the statement that failed, for logs ("upsert_snapshots"), or "set_statement_timeout". */
const char *writer_job_failed_name(const struct writer_job *j, const struct pg_txn_result *r);

void writer_job_free(struct writer_job *j); /* frees parameter memory; not the struct */

/* The SQL texts, exposed for tests and the SQL lint. */
extern const char writer_sql_options[];
extern const char writer_sql_last_seen[];
extern const char writer_sql_snapshots[];
extern const char writer_sql_rejects[];
extern const char writer_sql_coverage[];
extern const char writer_sql_coverage_range[];
extern const char writer_sql_contract_reference[];

#endif
