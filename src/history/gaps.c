/* gaps.c - `optsnap gaps`: missing cadence windows per underlying from sql/003_gaps.sql, and the per-underlying lease calls. */
#include "optsnap/history/gaps.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "optsnap/commands.h"
#include "optsnap/config/cli.h"
#include "optsnap/db/pg_connect.h"
#include "optsnap/util/json_line.h"
#include "optsnap/util/log.h"
#include "optsnap/util/names.h"
#include "optsnap/util/scrub.h"
#include "optsnap/util/timeutil.h"


/* --- queries ---------------------------------------------------------------- */

static int exec_simple(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        pg_log_error("gaps: statement failed", conn, res);
    PQclear(res);
    return ok ? 0 : GAPS_ERR_DB;
}

static const char *universe_name(const void *items, size_t i)
{
    return ((const struct universe_entry *)items)[i].underlying;
}

/* The query is one statement so the planner inlines optsnap_gaps with the
 * actual values (an unnamed statement is planned with its parameters). */
static const char gaps_sql[] =
    "SELECT underlying,"
    "       (extract(epoch FROM gap_start) * 1000000)::bigint,"
    "       (extract(epoch FROM gap_end) * 1000000)::bigint,"
    "       windows"
    "  FROM optsnap_gaps($1::text, $2::bigint * interval '1 microsecond', $3::timestamptz,"
    "                    $4::timestamptz, $5::text[], coalesce($6::timestamptz, now()))"
    " LIMIT $7::bigint";

struct gap_request gap_request_of(const struct settings *s, int64_t from_us, int64_t to_us,
                                  const struct universe_entry *u, size_t n)
{
    return (struct gap_request){.calendar = s->calendar, .cadence_us = s->cadence_us, .from_us = from_us,
                                .to_us = to_us, .horizon_us = 0, .underlyings = u, .underlying_count = n,
                                .statement_timeout_us = s->statement_timeout_us};
}

static int gaps_fetch(PGconn *conn, const struct gap_request *req, struct gap_list *out, char *err,
                      size_t err_size)
{
    /* Transaction-local, so it holds through a transaction pooler. JIT off:
     * the planner's cost for the per-session subplans crosses the JIT
     * thresholds, and compiling then costs several times the ~100 ms the
     * query itself takes. */
    char timeout[32] = "0";
    if (req->statement_timeout_us > 0)
        snprintf(timeout, sizeof timeout, "%" PRId64 "ms",
                 req->statement_timeout_us / 1000 > 0 ? req->statement_timeout_us / 1000 : 1);
    const char *settings_params[1] = {timeout};
    PGresult *set = PQexecParams(conn,
                                 "SELECT set_config('statement_timeout', $1, true),"
                                 "       set_config('jit', 'off', true)",
                                 1, NULL, settings_params, NULL, NULL, 0);
    int set_ok = PQresultStatus(set) == PGRES_TUPLES_OK;
    if (!set_ok)
        pg_log_error("gaps: cannot set statement_timeout", conn, set);
    PQclear(set);
    if (!set_ok)
        return GAPS_ERR_DB;

    char cadence[32], from[40], to[40], horizon[40], limit[32];
    snprintf(cadence, sizeof cadence, "%" PRId64, req->cadence_us);
    timestamp_format(from, sizeof from, req->from_us);
    timestamp_format(to, sizeof to, req->to_us);
    if (req->horizon_us != 0)
        timestamp_format(horizon, sizeof horizon, req->horizon_us);
    snprintf(limit, sizeof limit, "%d", GAPS_MAX_RANGES + 1);
    char *names = names_join(req->underlyings, req->underlying_count, universe_name, true);
    if (names == NULL) {
        snprintf(err, err_size, "out of memory");
        return GAPS_ERR_DB;
    }
    const char *params[7] = {req->calendar, cadence, from, to, names,
                             req->horizon_us != 0 ? horizon : NULL, limit};
    PGresult *res = PQexecParams(conn, gaps_sql, 7, NULL, params, NULL, NULL, 0);
    free(names);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        int rc = GAPS_ERR_DB;
        if (state != NULL && strcmp(state, "22023") == 0) {
            /* The calendar does not cover the range, or a bad cadence: the
             * request is wrong, not the database. */
            const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            snprintf(err, err_size, "%s", primary ? primary : "invalid request");
            rc = GAPS_ERR_REQUEST;
        } else {
            pg_log_error("gaps: query failed", conn, res);
            snprintf(err, err_size, "query failed (sqlstate %s)", state ? state : "none");
        }
        PQclear(res);
        return rc;
    }
    int n = PQntuples(res);
    if (n > GAPS_MAX_RANGES) {
        snprintf(err, err_size, "more than %d gap ranges; narrow --since/--until or --underlying",
                 GAPS_MAX_RANGES);
        PQclear(res);
        return GAPS_ERR_TOO_MANY;
    }
    if (n > 0) {
        out->ranges = calloc((size_t)n, sizeof *out->ranges);
        if (out->ranges == NULL) {
            snprintf(err, err_size, "out of memory");
            PQclear(res);
            return GAPS_ERR_DB;
        }
    }
    for (int i = 0; i < n; i++) {
        struct gap_range *g = &out->ranges[i];
        snprintf(g->underlying, sizeof g->underlying, "%s", PQgetvalue(res, i, 0));
        g->start_us = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        g->end_us = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        g->windows = atoi(PQgetvalue(res, i, 3));
        out->total_windows += g->windows;
    }
    out->count = (size_t)n;
    PQclear(res);
    return 0;
}

int gaps_query(PGconn *conn, const struct gap_request *req, struct gap_list *out, char *err,
               size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (err_size > 0)
        err[0] = '\0';
    if (req->calendar == NULL || req->cadence_us <= 0 || req->to_us <= req->from_us ||
        (req->underlying_count > 0 && req->underlyings == NULL)) {
        snprintf(err, err_size, "bad gap request (calendar, cadence or range)");
        return GAPS_ERR_REQUEST;
    }
    if (exec_simple(conn, "BEGIN READ ONLY") != 0) {
        snprintf(err, err_size, "cannot begin a transaction");
        return GAPS_ERR_DB;
    }
    int rc = gaps_fetch(conn, req, out, err, err_size);
    if (rc == 0 && exec_simple(conn, "COMMIT") != 0) {
        snprintf(err, err_size, "commit failed");
        rc = GAPS_ERR_DB;
    }
    if (rc != 0) {
        PGresult *res = PQexec(conn, "ROLLBACK");
        PQclear(res);
        gap_list_free(out);
    }
    return rc;
}

void gap_list_free(struct gap_list *list)
{
    if (list == NULL)
        return;
    free(list->ranges);
    memset(list, 0, sizeof *list);
}


/* --- the command ------------------------------------------------------------ */

static void gaps_usage(FILE *out)
{
    fprintf(out,
            "usage: optsnap gaps [--since T] [--until T] [--underlying A,B,...]\n"
            "                    [--format table|json] [--cadence 60s] [--calendar us-options|always]\n"
            "                    [--universe LIST|@FILE] [--database-url URL] [--config FILE]\n\n"
            "Lists the cadence windows of trading sessions in [since, until) that no live\n"
            "sweep and no backfill covered (ingest_coverage), merged into ranges per\n"
            "underlying, with per-underlying and grand totals. Only whole windows inside a\n"
            "session are expected: nights, weekends and holidays are never gaps, and a\n"
            "range never spans them. Windows that have not ended yet (end after the\n"
            "database's now()) are not gaps.\n\n"
            "  --since T          start, inclusive (default: 7d, i.e. now minus 7 days)\n"
            "  --until T          end, exclusive (default: now)\n"
            "                     T is 2026-11-02, 2026-11-02T14:30:00Z, \"2026-11-02 14:30:00\"\n"
            "                     (UTC), now, or a duration back from now: 90m, 36h, 7d\n"
            "  --underlying LIST  comma list of underlyings (default: the universe setting)\n"
            "  --format table     one line per range (underlying, start, end, windows), then\n"
            "                     per-underlying totals and a total line (default)\n"
            "  --format json      {\"gaps\":[{\"underlying\",\"start\",\"end\",\"windows\"}],\n"
            "                      \"totals\":{UNDERLYING:{\"ranges\",\"windows\"}}, \"total_ranges\",\n"
            "                      \"total_windows\", \"since\", \"until\", \"calendar\",\n"
            "                      \"cadence_seconds\"}; totals lists every underlying asked\n"
            "  --cadence D        window length the ingester ran with (setting; default 60s)\n"
            "  --calendar C       us-options or always (setting; default us-options)\n"
            "  --universe L       underlyings when --underlying is not given (setting)\n"
            "  --database-url U   libpq URL or conninfo (setting; default $DATABASE_URL, then\n"
            "                     libpq's PG* variables and ~/.pgpass)\n"
            "  --help             this text\n\n"
            "Every setting (`optsnap config --help`) may also come from the config file or\n"
            "OPTSNAP_<KEY>. Times are printed in UTC.\n\n"
            "exit codes: 0 no gaps, 3 gaps found, 1 database error, 2 usage or\n"
            "configuration error (also: the calendar does not cover the range)\n");
}

/* Accepts what timestamp_parse does, or a duration meaning that long before now. */
/* "2026-11-02T14:30:00Z", with the fraction only when there is one. */
static const char *format_time(char *buf, size_t size, int64_t us)
{
    timestamp_format(buf, size, us);
    char *frac = strstr(buf, ".000000Z");
    if (frac != NULL)
        memcpy(frac, "Z", 2);
    return buf;
}

static const char *format_duration(char *buf, size_t size, int64_t us)
{
    if (us % USEC_PER_SEC == 0)
        snprintf(buf, size, "%" PRId64 "s", us / USEC_PER_SEC);
    else
        snprintf(buf, size, "%" PRId64 "us", us);
    return buf;
}

struct underlying_total {
    char underlying[16];
    int ranges;
    int64_t windows;
};

static int total_cmp(const void *a, const void *b)
{
    return strcmp(((const struct underlying_total *)a)->underlying,
                  ((const struct underlying_total *)b)->underlying);
}

/* One entry per distinct underlying asked, sorted by name, with its ranges
 * and windows. Returns the count, or -1 out of memory. *out is malloc'd. */
static int totals_build(const struct universe_entry *u, size_t n, const struct gap_list *gaps,
                        struct underlying_total **out)
{
    struct underlying_total *t = calloc(n > 0 ? n : 1, sizeof *t);
    if (t == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        snprintf(t[i].underlying, sizeof t[i].underlying, "%s", u[i].underlying);
    qsort(t, n, sizeof *t, total_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && strcmp(t[m - 1].underlying, t[i].underlying) == 0)
            continue;
        t[m++] = t[i];
    }
    for (size_t i = 0; i < gaps->count; i++) {
        struct underlying_total key;
        snprintf(key.underlying, sizeof key.underlying, "%s", gaps->ranges[i].underlying);
        struct underlying_total *hit = bsearch(&key, t, m, sizeof *t, total_cmp);
        if (hit != NULL) {
            hit->ranges++;
            hit->windows += gaps->ranges[i].windows;
        }
    }
    *out = t;
    return (int)m;
}

struct gaps_report {
    const char *calendar;
    int64_t cadence_us;
    int64_t since_us;
    int64_t until_us;
    const struct gap_list *gaps;
    const struct underlying_total *totals;
    int ntotals;
};

static void print_table(const struct gaps_report *r)
{
    char a[40], b[40], c[32];
    if (r->gaps->count == 0) {
        printf("no gaps: %d underlying%s, %s .. %s, calendar %s, cadence %s\n", r->ntotals,
               r->ntotals == 1 ? "" : "s", format_time(a, sizeof a, r->since_us),
               format_time(b, sizeof b, r->until_us), r->calendar,
               format_duration(c, sizeof c, r->cadence_us));
        return;
    }
    printf("%-12s %-21s %-21s %8s\n", "UNDERLYING", "START", "END", "WINDOWS");
    for (size_t i = 0; i < r->gaps->count; i++) {
        const struct gap_range *g = &r->gaps->ranges[i];
        printf("%-12s %-21s %-21s %8d\n", g->underlying, format_time(a, sizeof a, g->start_us),
               format_time(b, sizeof b, g->end_us), g->windows);
    }
    printf("\n%-12s %8s %8s\n", "UNDERLYING", "RANGES", "WINDOWS");
    int with_gaps = 0;
    for (int i = 0; i < r->ntotals; i++) {
        if (r->totals[i].ranges == 0)
            continue;
        with_gaps++;
        printf("%-12s %8d %8" PRId64 "\n", r->totals[i].underlying, r->totals[i].ranges,
               r->totals[i].windows);
    }
    printf("\ntotal: %" PRId64 " missing window%s in %zu range%s, %d of %d underlying%s, %s .. %s, "
           "calendar %s, cadence %s\n",
           r->gaps->total_windows, r->gaps->total_windows == 1 ? "" : "s", r->gaps->count,
           r->gaps->count == 1 ? "" : "s", with_gaps, r->ntotals, r->ntotals == 1 ? "" : "s",
           format_time(a, sizeof a, r->since_us), format_time(b, sizeof b, r->until_us), r->calendar,
           format_duration(c, sizeof c, r->cadence_us));
}

static int print_json(const struct gaps_report *r)
{
    char a[40];
    cJSON *root = cJSON_CreateObject();
    if (root == NULL)
        return -1;
    cJSON_AddStringToObject(root, "since", format_time(a, sizeof a, r->since_us));
    cJSON_AddStringToObject(root, "until", format_time(a, sizeof a, r->until_us));
    cJSON_AddStringToObject(root, "calendar", r->calendar);
    cJSON_AddNumberToObject(root, "cadence_seconds", (double)r->cadence_us / 1e6);
    cJSON *list = cJSON_AddArrayToObject(root, "gaps");
    for (size_t i = 0; list != NULL && i < r->gaps->count; i++) {
        const struct gap_range *g = &r->gaps->ranges[i];
        cJSON *o = cJSON_CreateObject();
        if (o == NULL)
            break;
        cJSON_AddStringToObject(o, "underlying", g->underlying);
        cJSON_AddStringToObject(o, "start", format_time(a, sizeof a, g->start_us));
        cJSON_AddStringToObject(o, "end", format_time(a, sizeof a, g->end_us));
        cJSON_AddNumberToObject(o, "windows", g->windows);
        cJSON_AddItemToArray(list, o);
    }
    cJSON *totals = cJSON_AddObjectToObject(root, "totals");
    for (int i = 0; totals != NULL && i < r->ntotals; i++) {
        cJSON *o = cJSON_AddObjectToObject(totals, r->totals[i].underlying);
        if (o == NULL)
            break;
        cJSON_AddNumberToObject(o, "ranges", r->totals[i].ranges);
        cJSON_AddNumberToObject(o, "windows", (double)r->totals[i].windows);
    }
    cJSON_AddNumberToObject(root, "total_ranges", (double)r->gaps->count);
    cJSON_AddNumberToObject(root, "total_windows", (double)r->gaps->total_windows);
    return json_line_print(root);
}

/* Reads the command's own options (those settings_load_all left in rest[]). */
struct gaps_options {
    const char *since;
    const char *until;
    const char *underlying;
    const char *format;
};

/* --since, --until (times or "7d ago" durations; default the last 7 days)
 * and --format. 0, or -1 with the message printed. */
static int gaps_parse_options(const struct gaps_options *o, int64_t *since_us, int64_t *until_us, bool *json)
{
    int64_t now_us = time_now_us();
    *since_us = now_us - 7 * USEC_PER_DAY;
    *until_us = now_us;
    *json = false;
    if (o->since != NULL && time_or_ago_parse(o->since, now_us, since_us) != 0) {
        fprintf(stderr, "optsnap gaps: --since '%s' is not a time or a duration\n", o->since);
        return -1;
    }
    if (o->until != NULL && time_or_ago_parse(o->until, now_us, until_us) != 0) {
        fprintf(stderr, "optsnap gaps: --until '%s' is not a time or a duration\n", o->until);
        return -1;
    }
    if (*until_us <= *since_us) {
        fprintf(stderr, "optsnap gaps: --until must be after --since\n");
        return -1;
    }
    if (o->format != NULL) {
        if (strcmp(o->format, "json") == 0)
            *json = true;
        else if (strcmp(o->format, "table") != 0) {
            fprintf(stderr, "optsnap gaps: --format must be table or json\n");
            return -1;
        }
    }
    return 0;
}

static int gaps_run(struct settings *s, void *options)
{
    const struct gaps_options *o = options;
    int64_t since_us, until_us;
    bool json;
    if (gaps_parse_options(o, &since_us, &until_us, &json) != 0)
        return EXIT_USAGE;
    char err[512];
    if (cli_underlying_option("gaps", s, o->underlying) != 0)
        return EXIT_USAGE;
    struct universe_entry *u = NULL;
    int nu = settings_load_universe(s, &u, err, sizeof err);
    if (nu < 0) {
        fprintf(stderr, "optsnap gaps: %s\n", err);
        return EXIT_USAGE;
    }

    PGconn *conn = pg_connect_blocking(s->database_url, "optsnap-gaps");
    if (conn == NULL) {
        free(u);
        return EXIT_RUNTIME;
    }

    struct gap_request req = gap_request_of(s, since_us, until_us, u, (size_t)nu);
    struct gap_list gaps;
    int rc = gaps_query(conn, &req, &gaps, err, sizeof err);
    PQfinish(conn);
    if (rc != 0) {
        fprintf(stderr, "optsnap gaps: %s\n", err);
        free(u);
        return rc == GAPS_ERR_REQUEST ? EXIT_USAGE : EXIT_RUNTIME;
    }

    struct underlying_total *totals = NULL;
    int ntotals = totals_build(u, (size_t)nu, &gaps, &totals);
    free(u);
    if (ntotals < 0) {
        fprintf(stderr, "optsnap gaps: out of memory\n");
        gap_list_free(&gaps);
        return EXIT_RUNTIME;
    }
    struct gaps_report report = {
        .calendar = s->calendar,
        .cadence_us = s->cadence_us,
        .since_us = since_us,
        .until_us = until_us,
        .gaps = &gaps,
        .totals = totals,
        .ntotals = ntotals,
    };
    int out_rc = 0;
    if (json)
        out_rc = print_json(&report);
    else
        print_table(&report);
    if (fflush(stdout) != 0)
        out_rc = -1;
    int exit_code = gaps.count > 0 ? EXIT_PARTIAL : EXIT_OK;
    log_debug("gaps: done", "ranges=%zu windows=%" PRId64 " underlyings=%d", gaps.count,
              gaps.total_windows, ntotals);
    free(totals);
    gap_list_free(&gaps);
    if (out_rc != 0) {
        fprintf(stderr, "optsnap gaps: cannot write the report\n");
        return EXIT_RUNTIME;
    }
    return exit_code;
}

int cmd_gaps(int argc, char **argv)
{
    struct gaps_options o = {0};
    const struct cli_option opts[] = {{"--since", &o.since, NULL}, {"--until", &o.until, NULL},
                                      {"--underlying", &o.underlying, NULL}, {"--format", &o.format, NULL}};
    const struct cli_command c = {"gaps", gaps_usage, opts, sizeof opts / sizeof opts[0], true};
    return cli_command_run(&c, argc, argv, gaps_run, &o);
}
