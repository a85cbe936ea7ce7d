/* ingest.h - the live ingestion pipeline of `optsnap run`: scheduler ->
 * fetcher (http_client) -> parser -> batcher -> writer (pg_pool), on one
 * libuv loop, with a bounded queue between parser and writer. */
#ifndef OPTSNAP_INGEST_H
#define OPTSNAP_INGEST_H

#include <stdint.h>

#include "optsnap/config/settings.h"

struct ingest_counters {
    uint64_t pages, rows_fetched, rows_written, rows_unchanged, rows_rejected, rows_deduped;
    uint64_t batches_committed, batches_retried, batches_bisected, batches_dropped;
    uint64_t sweeps_started, sweeps_covered, sweeps_incomplete, sweeps_overrun;
    uint64_t parse_errors, db_errors;
};

/* Runs until signalled (or run_for / max_sweeps). argc/argv are the command
 * line the settings came from: SIGHUP re-reads them with the config file and
 * the environment. Returns an exit code: 0 drained and closed cleanly, 1
 * runtime failure or forced stop. */
int ingest_run(struct settings *s, int argc, char **argv);

#endif
