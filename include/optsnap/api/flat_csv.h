/* flat_csv.h - the minute-aggregates flat file (us_options_opra/minute_aggs_v1,
 * one CSV per day: header `ticker,volume,open,close,high,low,window_start,
 * transactions`, window_start in unix ns) parsed as it streams: bytes go in
 * in chunks of any size, a line split across chunks is joined, memory is one
 * line (FLAT_CSV_LINE_MAX) whatever the file size. A line that is not a good
 * bar (quoted field, wrong column count, bad number, over-long) is handed to
 * the reject callback with its text (capped), never dropped silently. Pure. */
#ifndef OPTSNAP_FLAT_CSV_H
#define OPTSNAP_FLAT_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "optsnap/api/aggs_parse.h"

#define FLAT_CSV_LINE_MAX 512 /* a real line is < 100 bytes; longer ones are rejected */

/* A good line: its ticker and bar (vwap NAN: the file has no vwap column).
 * A non-zero return stops the parse (flat_csv_feed returns it). */
typedef int (*flat_csv_bar_fn)(void *user, const char *ticker, const struct agg_bar *bar);
/* A bad line: 1-based line number, reason, the line's first bytes. */
typedef int (*flat_csv_reject_fn)(void *user, long line_no, const char *reason, const char *text, size_t len);

/* Optional: whether lines whose first field (the ticker, len bytes, not
 * NUL-terminated) is this are wanted at all; an unwanted line is skipped
 * before its numbers are parsed (a unit reads only its underlying's). Called
 * once per run of equal first fields. Must say yes to what it cannot place
 * (a quoted or broken ticker), so a bad line still reaches on_reject. */
typedef bool (*flat_csv_want_fn)(void *user, const char *first, size_t len);

struct flat_csv {
    flat_csv_want_fn want; /* NULL: every line */
    flat_csv_bar_fn on_bar;
    flat_csv_reject_fn on_reject;
    void *user;
    /* the parser's */
    char line[FLAT_CSV_LINE_MAX + 1];
    size_t len;
    bool overlong;     /* the current line passed FLAT_CSV_LINE_MAX: the rest is skipped */
    bool header_done;
    int col[8];        /* column index of ticker, volume, open, close, high, low, window_start, transactions */
    int ncols;
    long line_no, bars, rejects, skipped;
    char last_first[48]; /* the last first field asked about, and the answer */
    size_t last_first_len;
    bool last_wanted;
    char error[128];   /* set when the parse failed as a whole (no or bad header) */
};

void flat_csv_init(struct flat_csv *p, flat_csv_bar_fn on_bar, flat_csv_reject_fn on_reject, void *user);
/* Feeds n bytes. Returns 0, -1 when the file is unusable (p->error says
 * why: a header without the columns), or a callback's non-zero result. */
int flat_csv_feed(struct flat_csv *p, const char *data, size_t n) __attribute__((warn_unused_result));
/* The end of the file: a last line without a newline is parsed. Returns as
 * flat_csv_feed; -1 also for a file with no header at all. */
int flat_csv_finish(struct flat_csv *p) __attribute__((warn_unused_result));

#endif
