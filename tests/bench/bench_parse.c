/* bench_parse - CPU per row of cJSON alone against optsnap's page parser, on
 * the very chain pages a sweep fetched (scripts/bench.sh saves them from the
 * simulator). Not a test: it prints figures, it asserts nothing.
 *
 *   bench_parse REPS FILE...
 *
 * REPS passes over every file of: (a) cJSON_ParseWithLength + cJSON_Delete
 * as cJSON comes (malloc per node), the floor any cJSON-based reader pays;
 * (b) optsnap's snapshot_page_parse_opts (envelope, rows, validation, the
 * exact nanosecond pre-scan) into one reused page, with malloc and then with
 * the arena the binary installs (util/json_arena.h); (c) cJSON with the
 * arena. CPU time of the process (CLOCK_PROCESS_CPUTIME_ID), microseconds
 * per row; rows are the parser's. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "optsnap/api/snapshot_parse.h"
#include "optsnap/util/buf.h"
#include "optsnap/util/json_arena.h"

struct body {
    char *data;
    size_t len;
};

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The whole file through util/buf's growable buffer (no size cap beyond its default). */
static int read_file(const char *path, struct body *b)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    struct bytebuf buf = {0};
    char chunk[1 << 16];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
        bytebuf_append(&buf, chunk, r);
    int bad = ferror(f);
    fclose(f);
    b->data = bad ? NULL : bytebuf_take(&buf, &b->len);
    bytebuf_free(&buf);
    return b->data != NULL ? 0 : -1;
}

/* CPU seconds of REPS passes of cJSON parse + delete over every body; -1 on a failure. */
static double time_cjson(const struct body *bodies, int nfiles, int reps, char **names)
{
    double t0 = cpu_s();
    for (int k = 0; k < reps; k++) {
        for (int i = 0; i < nfiles; i++) {
            cJSON *root = cJSON_ParseWithLength(bodies[i].data, bodies[i].len);
            if (root == NULL) {
                fprintf(stderr, "bench_parse: cJSON could not parse %s\n", names[i]);
                return -1;
            }
            cJSON_Delete(root);
        }
    }
    return cpu_s() - t0;
}

/* The same with optsnap's page parser into one reused page; *rows counts. */
static double time_optsnap(struct snapshot_page *page, const struct body *bodies, int nfiles, int reps,
                           char **names, size_t *rows)
{
    char err[256];
    *rows = 0;
    double t0 = cpu_s();
    for (int k = 0; k < reps; k++) {
        for (int i = 0; i < nfiles; i++) {
            snapshot_page_reset(page);
            struct snapshot_parse_opts opts = {.underlying = NULL, .fallback_us = 0};
            if (snapshot_page_parse_opts(page, bodies[i].data, bodies[i].len, &opts, err, sizeof err) != 0) {
                fprintf(stderr, "bench_parse: %s: %s\n", names[i], err);
                return -1;
            }
            *rows += page->nrows;
        }
    }
    return cpu_s() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_parse REPS FILE...\n");
        return 2;
    }
    int reps = atoi(argv[1]);
    int nfiles = argc - 2;
    struct body *bodies = calloc((size_t)nfiles, sizeof *bodies);
    if (reps < 1 || bodies == NULL)
        return 2;
    size_t bytes = 0;
    for (int i = 0; i < nfiles; i++) {
        if (read_file(argv[i + 2], &bodies[i]) != 0) {
            fprintf(stderr, "bench_parse: cannot read %s\n", argv[i + 2]);
            return 1;
        }
        bytes += bodies[i].len;
    }
    struct snapshot_page page;
    memset(&page, 0, sizeof page);
    size_t rows = 0;
    /* as cJSON comes (malloc per node), then with the arena optsnap installs */
    double cj = time_cjson(bodies, nfiles, reps, argv + 2);
    double own = time_optsnap(&page, bodies, nfiles, reps, argv + 2, &rows);
    if (cj < 0 || own < 0 || rows == 0 || json_arena_install((size_t)4 << 20) != 0)
        return 1;
    double cj_arena = time_cjson(bodies, nfiles, reps, argv + 2);
    double own_arena = time_optsnap(&page, bodies, nfiles, reps, argv + 2, &rows);
    if (cj_arena < 0 || own_arena < 0)
        return 1;
    double per = (double)rows;
    printf("pages=%d rows=%zu bytes_per_row=%.0f cjson_us_per_row=%.3f optsnap_parser_us_per_row=%.3f "
           "optsnap_parser_malloc_us_per_row=%.3f cjson_arena_us_per_row=%.3f\n",
           nfiles, rows / (size_t)reps, (double)bytes / (per / reps), cj * 1e6 / per, own_arena * 1e6 / per,
           own * 1e6 / per, cj_arena * 1e6 / per);
    snapshot_page_free(&page);
    for (int i = 0; i < nfiles; i++)
        free(bodies[i].data);
    free(bodies);
    return 0;
}
