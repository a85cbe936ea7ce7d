/* repair.c - the commands on the backfill driver: `optsnap backfill` (a
 * range) and `optsnap repair` (the gaps of a lookback: list, fill, list again). */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "optsnap/commands.h"
#include "optsnap/config/cli.h"
#include "optsnap/db/pg_connect.h"
#include "optsnap/history/backfill.h"
#include "optsnap/history/flatfiles.h"
#include "optsnap/history/gaps.h"
#include "optsnap/pipeline/schedule.h"
#include "optsnap/util/timeutil.h"

#define REPORT_LINES 50

/* ---- the commands ---- */

struct cmd_options {
    const char *from, *to, *underlying, *resolution, *lookback, *until;
    bool dry_run, no_prune, from_flatfiles;
};

static void common_settings_help(FILE *out)
{
    fprintf(out,
            "settings used (also OPTSNAP_<KEY> and `key = value` in the config file; see optsnap config --help):\n"
            "  --calendar C                    us-options or always: the sessions to fill (default us-options)\n"
            "  --cadence D                     window length of the coverage ledger (default 60s)\n"
            "  --universe LIST|@FILE           underlyings when --underlying is not given\n"
            "  --api-url URL                   the market-data API (next_url is followed on this origin only)\n"
            "  --api-key-file F                API key (or OPTSNAP_API_KEY, or $CREDENTIALS_DIRECTORY/api_key)\n"
            "  --database-url URL              libpq URL or conninfo (default libpq's PG* variables)\n"
            "  --backfill-http-concurrency N   requests in flight (default 8): smaller than run's budget\n"
            "  --backfill-db-connections N     pool size = database concurrency (default 2)\n"
            "  --batch-rows N                  rows per upsert transaction\n"
            "  --statement-timeout D           per transaction (SET LOCAL)\n"
            "  --http-rate R, --http-timeout D, --http-connect-timeout D, --http-max-attempts N,\n"
            "  --retry-max-backoff D, --ca-file F, --log-level L, --config FILE\n\n"
            "How: per underlying and trading session in the range (one unit), take the\n"
            "underlying's lease in PostgreSQL (another holder: the underlying is skipped and\n"
            "reported, never waited for), skip units that have no missing window, list the\n"
            "contracts (seen live in `options`, and /v3/reference/options/contracts with\n"
            "as_of and expired=true), fetch each contract's minute bars of the session and\n"
            "its previous close (latest earlier daily bar), and write one row per bar at the\n"
            "bar's end carrying the day-so-far block (open, running high/low, close,\n"
            "cumulative volume and vwap, previous_close, change, change_percent), source\n"
            "backfill, never overwriting a live row. The unit's windows are marked covered in\n"
            "the transaction that commits after all its rows. Killed half-way, a re-run does\n"
            "only the units still missing. Progress: a bar on a terminal, else a logfmt line\n"
            "every 5 s.\n\n"
            "exit codes: 0 all filled, 3 some units failed or were skipped (listed on stdout\n"
            "with the reason), 1 fatal error, 2 usage or configuration error\n");
}

static void backfill_usage(FILE *out)
{
    fprintf(out,
            "usage: optsnap backfill --from T --to T [--underlying A,B] [--resolution 1m] [--from-flatfiles]\n"
            "                        [--<setting> V ...]\n\n"
            "Fills [from, to) from the aggregates endpoint, or from the day's flat file.\n\n"
            "  --from T          start, inclusive: 2026-11-02, 2026-11-02T14:30:00Z, \"2026-11-02 14:30:00\" (UTC)\n"
            "  --to T            end, exclusive (same forms)\n"
            "  --underlying L    comma list of underlyings (default: the universe setting)\n"
            "  --resolution D    bar length, whole minutes (default 1m; the simulator's truth is 1m)\n"
            "  --from-flatfiles  bars from each day's minute-aggregates flat file (flatfiles_url,\n"
            "                    flatfiles_access_key, OPTSNAP_FLATFILES_SECRET_KEY), signed (SigV4) and\n"
            "                    streamed, per underlying and session; previous closes from the previous\n"
            "                    session's file (the API only for contracts that did not trade then); a\n"
            "                    covered day whose object has the ETag applied before is skipped (304), a\n"
            "                    republished one is applied again; day_vwap stays NULL (no vwap column)\n"
            "  --help            this text\n\n");
    common_settings_help(out);
}

static void repair_usage(FILE *out)
{
    fprintf(out,
            "usage: optsnap repair [--lookback 7d] [--until T] [--underlying A,B] [--dry-run] [--no-prune]\n"
            "                      [--<setting> V ...]\n\n"
            "For cron or a systemd timer: lists the gaps of [until - lookback, until) (as\n"
            "`optsnap gaps` does), backfills exactly those ranges, lists the gaps again and\n"
            "reports what is still missing and why. A second run right after does nothing.\n\n"
            "  --lookback D      how far back to look (default 7d)\n"
            "  --until T         end of the period (default: now on the `clock` setting's market clock)\n"
            "  --underlying L    comma list of underlyings (default: the universe setting)\n"
            "  --dry-run         print the plan (windows, contracts asked and skipped, requests\n"
            "                    estimated) and exit 0 without a request or a write\n"
            "  --no-prune        ask every contract (by default a contract whose live rows before\n"
            "                    and after a gap show the same day volume and last trade time\n"
            "                    did not trade in it and is skipped)\n"
            "Whole sessions whose day ended more than flatfiles_delay ago are filled from\n"
            "the day's flat file when flatfiles_url, flatfiles_access_key and the secret key\n"
            "are set (see optsnap backfill --help, --from-flatfiles).\n"
            "  --help            this text\n\n");
    common_settings_help(out);
}

/* What backfill and repair do once their options are read: --underlying
 * becomes the universe setting, and the API key is loaded. 0, or -1 after
 * printing why (a usage error). */
static int command_prepare(const char *cmd, struct settings *s, const struct cmd_options *o)
{
    char err[512];
    if (cli_underlying_option(cmd, s, o->underlying) != 0)
        return -1;
    if (settings_load_api_key(s, err, sizeof err)) {
        fprintf(stderr, "optsnap %s: cannot load the API key: %s\n", cmd, err);
        return -1;
    }
    if (o->from_flatfiles && !flatfiles_configured(s)) {
        fprintf(stderr, "optsnap %s: --from-flatfiles needs flatfiles_url, flatfiles_access_key and the secret key "
                        "(OPTSNAP_FLATFILES_SECRET_KEY or flatfiles_secret_key_file)\n", cmd);
        return -1;
    }
    return 0;
}

static int exit_for(const struct backfill_result *r)
{
    if (r->interrupted) /* drained: what it committed is whole, the rest stays uncovered */
        return EXIT_PARTIAL;
    return r->units_failed > 0 || r->units_skipped > 0 ? EXIT_PARTIAL : EXIT_OK;
}

static void print_summary(const char *cmd, const struct backfill_result *r)
{
    if (r->flat_applied || r->flat_unchanged || r->flat_rejects)
        printf("%s: flat files: %ld unit%s applied, %ld unchanged (same ETag: skipped), %ld bad line%s stored as "
               "rejects\n", cmd, r->flat_applied, r->flat_applied == 1 ? "" : "s", r->flat_unchanged, r->flat_rejects,
               r->flat_rejects == 1 ? "" : "s");
    printf("%s: contracts asked %ld, skipped %ld (no trade in the range), previous closes from live rows %ld\n",
           cmd, r->contracts_asked, r->contracts_skipped, r->closes_known);
    printf("%s: %d unit%s: %d filled, %d already covered, %d failed, %d skipped (lease held elsewhere); "
           "%ld rows written (%ld built) in %.1fs, %.0f rows/s\n",
           cmd, r->units_total, r->units_total == 1 ? "" : "s", r->units_done, r->units_covered, r->units_failed,
           r->units_skipped, r->rows_written, r->rows_built, r->seconds,
           r->seconds > 0 ? (double)r->rows_written / r->seconds : 0.0);
}

static int backfill_command(struct settings *s, void *options)
{
    const struct cmd_options *o = options;
    if (command_prepare("backfill", s, o) != 0)
        return EXIT_USAGE;
    int64_t from, to, res = USEC_PER_MIN;
    if (o->from == NULL || o->to == NULL || timestamp_parse(o->from, &from) != 0 ||
        timestamp_parse(o->to, &to) != 0 || to <= from) {
        fprintf(stderr, "optsnap backfill: --from and --to are required times with from < to\n");
        return EXIT_USAGE;
    }
    if (o->resolution != NULL &&
        (duration_parse(o->resolution, &res) != 0 || res < USEC_PER_MIN || res % USEC_PER_MIN != 0)) {
        fprintf(stderr, "optsnap backfill: --resolution must be a whole number of minutes\n");
        return EXIT_USAGE;
    }
    char err[512];
    struct universe_entry *u = NULL;
    int nu = settings_load_universe(s, &u, err, sizeof err);
    if (nu <= 0) {
        fprintf(stderr, "optsnap backfill: %s\n", nu < 0 ? err : "no underlying");
        free(u);
        return EXIT_USAGE;
    }
    struct backfill_request *reqs = calloc((size_t)nu, sizeof *reqs);
    if (reqs == NULL) {
        free(u);
        return EXIT_RUNTIME;
    }
    for (int i = 0; i < nu; i++) {
        snprintf(reqs[i].underlying, sizeof reqs[i].underlying, "%s", u[i].underlying);
        reqs[i].from_us = from;
        reqs[i].to_us = to;
        reqs[i].flat = o->from_flatfiles ? FLAT_ALWAYS : FLAT_NEVER;
    }
    free(u);
    struct backfill_result r;
    int rc = backfill_execute(s, reqs, (size_t)nu, res, &r);
    free(reqs);
    if (rc != 0)
        return EXIT_RUNTIME;
    print_summary("backfill", &r);
    return exit_for(&r);
}

int cmd_backfill(int argc, char **argv)
{
    struct cmd_options o = {0};
    const struct cli_option opts[] = {{"--from", &o.from, NULL}, {"--to", &o.to, NULL},
                                      {"--underlying", &o.underlying, NULL}, {"--resolution", &o.resolution, NULL},
                                      {"--from-flatfiles", NULL, &o.from_flatfiles}};
    const struct cli_command c = {"backfill", backfill_usage, opts, sizeof opts / sizeof opts[0], false};
    return cli_command_run(&c, argc, argv, backfill_command, &o);
}

/* The plan of a repair, from the database alone (blocking: no loop runs):
 * per gap range, the contracts seen live and not expired, those the pruning
 * rule skips, and the requests that leaves. Contracts only the listing knows
 * are asked too and are not counted here. Returns 0, or -1 after printing
 * the error. */
static int print_plan(PGconn *c, const struct gap_list *g, bool prune)
{
    static const char sql_known[] =
        "SELECT count(*) FROM options WHERE underlying = $1"
        "   AND expiration_date >= (($2::timestamptz) AT TIME ZONE 'America/New_York')::date";
    /* the pruning rule's own test (BACKFILL_SQL_QUIET_CONTRACTS): a live
     * sweep marked after the gap, by ingest_coverage's primary key */
    static const char sql_after[] =
        "SELECT EXISTS (SELECT 1 FROM ingest_coverage WHERE underlying = $1 AND source = 'live'"
        " AND window_start >= $2::timestamptz)";
    static const char sql_skipped[] = "SELECT count(*) FROM (" BACKFILL_SQL_QUIET_CONTRACTS ") q";
    long known_total = 0, skipped_total = 0;
    int64_t windows = 0;
    char a[40], b[40], from[40], to[40];
    printf("repair plan%s:\n", prune ? "" : " (--no-prune)");
    for (size_t i = 0; i < g->count; i++) {
        const struct gap_range *r = &g->ranges[i];
        timestamp_format(from, sizeof from, r->start_us - USEC_PER_MIN); /* the 1m bar ending at the start */
        timestamp_format(to, sizeof to, r->end_us);
        const char *v[3] = {r->underlying, from, to};
        const char *va[2] = {r->underlying, to};
        PGresult *k = PQexecParams(c, sql_known, 2, NULL, v, NULL, NULL, 0);
        /* sql-lint: ok sql_skipped is string literals and a macro of literals (backfill.h) */
        PGresult *sk = prune ? PQexecParams(c, sql_skipped, 3, NULL, v, NULL, NULL, 0) : NULL;
        PGresult *af = PQexecParams(c, sql_after, 2, NULL, va, NULL, NULL, 0);
        bool ok = PQresultStatus(k) == PGRES_TUPLES_OK && PQresultStatus(af) == PGRES_TUPLES_OK &&
                  (!prune || PQresultStatus(sk) == PGRES_TUPLES_OK);
        if (!ok) {
            const char *st = PQresultErrorField(PQresultStatus(k) != PGRES_TUPLES_OK ? k : af, PG_DIAG_SQLSTATE);
            fprintf(stderr, "optsnap repair: cannot plan (sqlstate %s)\n", st ? st : "?");
            PQclear(k);
            PQclear(sk);
            PQclear(af);
            return -1;
        }
        long known = atol(PQgetvalue(k, 0, 0)), skipped = prune ? atol(PQgetvalue(sk, 0, 0)) : 0;
        bool after = strcmp(PQgetvalue(af, 0, 0), "t") == 0;
        PQclear(k);
        PQclear(sk);
        PQclear(af);
        if (i < REPORT_LINES)
            printf("  %-8s %s .. %s  %d window%s  contracts asked %ld, skipped %ld%s\n", r->underlying,
                   timestamp_format_brief(a, sizeof a, r->start_us), timestamp_format_brief(b, sizeof b, r->end_us),
                   r->windows, r->windows == 1 ? "" : "s", known - skipped, skipped,
                   after ? "" : "  (no live sweep after the gap yet: every listed contract is asked)");
        known_total += known;
        skipped_total += skipped;
        windows += r->windows;
    }
    if (g->count > REPORT_LINES)
        printf("  ... and %zu more ranges\n", g->count - REPORT_LINES);
    /* one bars request per contract asked, plus the listing (two pages or more per range) */
    long est = known_total - skipped_total + 2 * (long)g->count, naive = known_total + 2 * (long)g->count;
    printf("plan: windows %" PRId64 ", ranges %zu, contracts asked %ld, contracts skipped %ld, "
           "requests estimated %ld (naive %ld)\n",
           windows, g->count, known_total - skipped_total, skipped_total, est, naive);
    printf("plan: contracts only the listing knows are asked as well, and each contract with bars costs one\n"
           "      more request (its previous close); nothing was fetched or written (--dry-run)\n");
    return 0;
}

static void print_gaps(const struct gap_list *g)
{
    char a[40], b[40];
    for (size_t i = 0; i < g->count && i < REPORT_LINES; i++)
        printf("  still missing: %-8s %s .. %s  %d window%s\n", g->ranges[i].underlying,
               timestamp_format_brief(a, sizeof a, g->ranges[i].start_us), timestamp_format_brief(b, sizeof b, g->ranges[i].end_us),
               g->ranges[i].windows, g->ranges[i].windows == 1 ? "" : "s");
    if (g->count > REPORT_LINES)
        printf("  ... and %zu more ranges\n", g->count - REPORT_LINES);
}

/* The period of a repair: [until - lookback, until), until = now on the
 * market clock unless given. 0, or -1 with the message printed. */
static int repair_period(const struct settings *s, const struct cmd_options *o, int64_t *from, int64_t *until)
{
    int64_t lookback = 7 * USEC_PER_DAY;
    struct market_clock clock;
    if (market_clock_parse(&clock, s->clock, s->clock_speed, time_now_us()) != 0) {
        fprintf(stderr, "optsnap repair: bad clock '%s'\n", s->clock);
        return -1;
    }
    *until = market_clock_now(&clock, time_now_us());
    if (o->lookback != NULL && (duration_parse(o->lookback, &lookback) != 0 || lookback <= 0)) {
        fprintf(stderr, "optsnap repair: --lookback must be a positive duration (7d, 36h, 90m)\n");
        return -1;
    }
    if (o->until != NULL && timestamp_parse(o->until, until) != 0) {
        fprintf(stderr, "optsnap repair: --until '%s' is not a time\n", o->until);
        return -1;
    }
    *from = *until - lookback;
    return 0;
}

/* Backfills exactly the ranges of `before` (freed here), then lists the gaps
 * again and reports what is still missing. The exit code. */
static int repair_fill(struct settings *s, const struct cmd_options *o, PGconn *conn, const struct gap_request *req,
                       struct gap_list *before)
{
    char err[512];
    struct backfill_request *reqs = calloc(before->count, sizeof *reqs);
    if (reqs == NULL) {
        gap_list_free(before);
        return EXIT_RUNTIME;
    }
    for (size_t i = 0; i < before->count; i++) {
        snprintf(reqs[i].underlying, sizeof reqs[i].underlying, "%s", before->ranges[i].underlying);
        reqs[i].from_us = before->ranges[i].start_us;
        reqs[i].to_us = before->ranges[i].end_us;
        reqs[i].no_prune = o->no_prune;
        reqs[i].flat = FLAT_AUTO;
    }
    size_t nreqs = before->count;
    gap_list_free(before);
    struct backfill_result r;
    int rc = backfill_execute(s, reqs, nreqs, USEC_PER_MIN, &r);
    free(reqs);
    if (rc != 0)
        return EXIT_RUNTIME;
    print_summary("repair", &r);
    struct gap_list after;
    if (gaps_query(conn, req, &after, err, sizeof err) != 0) {
        fprintf(stderr, "optsnap repair: cannot list the gaps again: %s\n", err);
        return EXIT_RUNTIME;
    }
    int code;
    if (after.count == 0) {
        printf("repair: everything in the lookback is covered now\n");
        code = r.interrupted ? EXIT_PARTIAL : EXIT_OK;
    } else {
        printf("repair: %" PRId64 " window%s still missing (reasons above: failed or skipped units)\n",
               after.total_windows, after.total_windows == 1 ? "" : "s");
        print_gaps(&after);
        code = EXIT_PARTIAL;
    }
    gap_list_free(&after);
    return code;
}

/* A heal child of `optsnap run` (OPTSNAP_HEAL_PARENT, run_heal.c) ends with
 * its daemon: SIGTERM when the parent dies, so it drains (what it committed
 * is whole) and hands its history leases back, instead of outliving a daemon
 * killed with -9 and holding the leases its successor's pass needs. */
static int repair_heal_guard(void)
{
    const char *v = getenv("OPTSNAP_HEAL_PARENT");
    if (v == NULL || *v == '\0')
        return 0;
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
        fprintf(stderr, "optsnap repair: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
        return -1;
    }
    char *end;
    long want = strtol(v, &end, 10);
    if (*end != '\0' || (long)getppid() != want) {
        fprintf(stderr, "optsnap repair: the daemon that started this heal pass (pid %s) has gone\n", v);
        return -1;
    }
    return 0;
}

/* Repair's first step, tried again when the database is lost during it: a
 * connection and the gaps of the period (rs->grc; the connection is kept
 * for the rest of the run). */
struct repair_start {
    const struct settings *s;
    const struct gap_request *req;
    struct gap_list *before;
    PGconn *conn;
    int grc;
    char err[512];
};

static int repair_start_once(void *user, bool *connected, bool *lost)
{
    struct repair_start *rs = user;
    *connected = *lost = false;
    if (rs->conn != NULL)
        PQfinish(rs->conn);
    if ((rs->conn = pg_connect_blocking(rs->s->database_url, "optsnap-repair")) == NULL)
        return -1;
    *connected = true;
    rs->err[0] = '\0';
    rs->grc = gaps_query(rs->conn, rs->req, rs->before, rs->err, sizeof rs->err);
    if (rs->grc == 0)
        return 0;
    *lost = PQstatus(rs->conn) != CONNECTION_OK;
    return -1;
}

static int repair_command(struct settings *s, void *options)
{
    const struct cmd_options *o = options;
    if (repair_heal_guard() != 0)
        return EXIT_RUNTIME;
    if (command_prepare("repair", s, o) != 0)
        return EXIT_USAGE;
    int code = EXIT_USAGE;
    int64_t from, until;
    char err[512], a[40], b[40];
    struct universe_entry *u = NULL;
    PGconn *conn = NULL;
    if (repair_period(s, o, &from, &until) != 0)
        goto out;
    int nu = settings_load_universe(s, &u, err, sizeof err);
    if (nu <= 0) {
        fprintf(stderr, "optsnap repair: %s\n", nu < 0 ? err : "no underlying");
        goto out;
    }
    code = EXIT_RUNTIME;
    struct gap_request req = gap_request_of(s, from, until, u, (size_t)nu);
    struct gap_list before;
    struct repair_start rs = {.s = s, .req = &req, .before = &before, .grc = GAPS_ERR_DB};
    pg_startup_retry("repair gaps", repair_start_once, &rs, s->retry_max_backoff_us);
    conn = rs.conn;
    int grc = rs.grc;
    memcpy(err, rs.err, sizeof err);
    if (conn == NULL)
        goto out;
    if (grc != 0) {
        fprintf(stderr, "optsnap repair: %s\n", err);
        code = grc == GAPS_ERR_REQUEST ? EXIT_USAGE : EXIT_RUNTIME;
        goto out;
    }
    if (before.count == 0) {
        printf("repair: no gaps: %d underlying%s, %s .. %s\n", nu, nu == 1 ? "" : "s",
               timestamp_format_brief(a, sizeof a, req.from_us), timestamp_format_brief(b, sizeof b, req.to_us));
        gap_list_free(&before);
        code = EXIT_OK;
        goto out;
    }
    printf("repair: %" PRId64 " missing window%s in %zu range%s, %s .. %s\n", before.total_windows,
           before.total_windows == 1 ? "" : "s", before.count, before.count == 1 ? "" : "s",
           timestamp_format_brief(a, sizeof a, req.from_us), timestamp_format_brief(b, sizeof b, req.to_us));
    if (o->dry_run) {
        code = print_plan(conn, &before, !o->no_prune) == 0 ? EXIT_OK : EXIT_RUNTIME;
        gap_list_free(&before);
        goto out;
    }
    code = repair_fill(s, o, conn, &req, &before);
out:
    if (conn != NULL)
        PQfinish(conn);
    free(u);
    return code;
}

int cmd_repair(int argc, char **argv)
{
    struct cmd_options o = {0};
    const struct cli_option opts[] = {{"--lookback", &o.lookback, NULL}, {"--until", &o.until, NULL},
                                      {"--underlying", &o.underlying, NULL}, {"--dry-run", NULL, &o.dry_run},
                                      {"--no-prune", NULL, &o.no_prune}};
    const struct cli_command c = {"repair", repair_usage, opts, sizeof opts / sizeof opts[0], false};
    return cli_command_run(&c, argc, argv, repair_command, &o);
}
