/* rejects.c - `optsnap rejects`: list the dead letter, and replay it through today's parser, each reject exactly once. */
#include "optsnap/history/rejects.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "optsnap/api/snapshot_parse.h"
#include "optsnap/commands.h"
#include "optsnap/config/settings.h"
#include "optsnap/db/batch.h"
#include "optsnap/db/writer.h"
#include "optsnap/config/cli.h"
#include "optsnap/db/pg_connect.h"
#include "optsnap/util/json_line.h"
#include "optsnap/util/scrub.h"
#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"

/* libpq's error text, scrubbed (it can repeat the connection string); one
 * buffer per call site is not needed: each is copied before the next call. */
static const char *pq_clean(const char *text)
{
    static char buf[512];
    return scrub_secrets(buf, sizeof buf, text ? text : "");
}


/* Both statements filter alike: $1 since, $2 until (timestamptz or NULL),
 * $3 reason substring, $4 kind, $5 underlying (NULL = any). */
static const char list_sql[] =
    "SELECT id, (extract(epoch FROM received_at) * 1000000)::int8, coalesce(underlying, ''), "
    "coalesce(ticker, ''), kind, reason, coalesce(request_id, ''), source, "
    "coalesce((extract(epoch FROM key_time) * 1000000)::int8, 0), "
    "coalesce((extract(epoch FROM replayed_at) * 1000000)::int8, 0), coalesce(replay_result, ''), raw "
    "FROM ingest_rejects WHERE "
    "($1::timestamptz IS NULL OR received_at >= $1::timestamptz) "
    "AND ($2::timestamptz IS NULL OR received_at < $2::timestamptz) "
    "AND ($3::text IS NULL OR strpos(lower(reason), lower($3::text)) > 0) "
    "AND ($4::text IS NULL OR kind = $4::text) AND ($5::text IS NULL OR underlying = $5::text) "
    "AND ($6::bool OR replayed_at IS NULL) "
    "ORDER BY id LIMIT $7::int8";

/* One reject at a time, locked, so two replays never take the same one. */
static const char claim_sql[] =
    "SELECT id, coalesce(underlying, ''), raw, coalesce((extract(epoch FROM key_time) * 1000000)::int8, 0), "
    "kind, reason, source, coalesce(request_id, '') "
    "FROM ingest_rejects WHERE "
    "($1::timestamptz IS NULL OR received_at >= $1::timestamptz) "
    "AND ($2::timestamptz IS NULL OR received_at < $2::timestamptz) "
    "AND ($3::text IS NULL OR strpos(lower(reason), lower($3::text)) > 0) "
    "AND ($4::text IS NULL OR kind = $4::text) AND ($5::text IS NULL OR underlying = $5::text) "
    "AND replayed_at IS NULL AND id > $6::int8 "
    "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED";

static const char mark_replayed_sql[] =
    "UPDATE ingest_rejects SET replayed_at = now(), replay_result = $2::text WHERE id = $1::int8";

/* Not replayed: what today's parser says of it, written only when it changed. */
static const char note_sql[] =
    "UPDATE ingest_rejects SET replay_result = $2::text WHERE id = $1::int8 "
    "AND replay_result IS DISTINCT FROM $2::text";

static const char set_timeout_sql[] = "SELECT set_config('statement_timeout', $1, true)";

/* Filter parameters $1..$5 as text (NULL when unset). */
struct filter_params {
    char since[40], until[40];
    const char *values[5];
};

static void filter_params_init(struct filter_params *fp, const struct rejects_filter *f)
{
    fp->values[0] = f->since_us ? timestamp_format(fp->since, sizeof fp->since, f->since_us) : NULL;
    fp->values[1] = f->until_us ? timestamp_format(fp->until, sizeof fp->until, f->until_us) : NULL;
    fp->values[2] = f->reason;
    fp->values[3] = f->kind;
    fp->values[4] = f->underlying;
}

static int exec_ok(PGconn *conn, const char *sql, int n, const char *const *values, char *err, size_t err_size)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    int rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : -1;
    if (rc != 0)
        snprintf(err, err_size, "%s", pq_clean(PQresultErrorMessage(res)));
    PQclear(res);
    return rc;
}

static int exec_plain(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(res);
    return rc;
}

/* The result of parsing one stored raw row with today's parser. */
struct reparse {
    struct snapshot_page page;
    int rc;
};

static void reparse_run(struct reparse *rp, const char *raw, const char *underlying, int64_t key_us)
{
    memset(rp, 0, sizeof *rp);
    size_t n = strlen(raw);
    char *body = malloc(n + 64);
    if (body == NULL) {
        rp->rc = PARSE_ERR_NOMEM;
        return;
    }
    int len = snprintf(body, n + 64, "{\"status\":\"OK\",\"results\":[%s]}", raw);
    struct snapshot_parse_opts opts = {.underlying = underlying, .fallback_us = key_us};
    char err[256];
    rp->rc = snapshot_page_parse_opts(&rp->page, body, (size_t)len, &opts, err, sizeof err);
    free(body);
}

/* Runs a writer job's statements on conn, inside the caller's transaction.
 * Returns the rows the snapshot upsert wrote (>= 0), or -1 with err. */
static long job_exec(PGconn *conn, const struct writer_job *j, char *err, size_t err_size)
{
    long written = 0;
    for (int s = 0; s < j->txn.nstmts; s++) {
        const struct pg_stmt *st = &j->txn.stmts[s];
        PGresult *res = PQexecParams(conn, st->sql, st->nparams, st->types, st->values, st->lengths,
                                     st->formats, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            snprintf(err, err_size, "%s %s: %s", st->name, state ? state : "", pq_clean(PQresultErrorMessage(res)));
            PQclear(res);
            return -1;
        }
        if (j->kinds[s] == WSTMT_SNAPSHOTS)
            written = atol(PQcmdTuples(res));
        PQclear(res);
    }
    return written;
}

enum outcome { OUT_WRITTEN, OUT_UNCHANGED, OUT_PARTIAL, OUT_STILL, OUT_FAILED };

/* Writes the re-parsed row (and, for a row that still lost fields, its new
 * partial reject) and marks the reject replayed. In the caller's transaction. */
static enum outcome replay_write(PGconn *conn, const char *id, struct snapshot_page *page, const char *underlying,
                                 const char *source, const char *request_id, bool dry_run, char *note,
                                 size_t note_size)
{
    bool partial = page->nrejects > 0;
    if (partial)
        snprintf(note, note_size, "partial: %s", page->rejects[0].reason);
    if (dry_run)
        return partial ? OUT_PARTIAL : OUT_WRITTEN;
    if (partial)
        snprintf(page->rejects[0].request_id, sizeof page->rejects[0].request_id, "%s", request_id);
    struct batch *b = batch_new();
    if (b == NULL || batch_add_row(b, &page->rows[0]) ||
        (partial && batch_add_reject(b, &page->rejects[0]))) {
        batch_free(b);
        snprintf(note, note_size, "out of memory");
        return OUT_FAILED;
    }
    struct writer_job j;
    enum row_source src = strcmp(source, "backfill") == 0 ? ROW_SOURCE_BACKFILL : ROW_SOURCE_LIVE;
    if (writer_job_build(&j, b, underlying, src, NULL)) {
        batch_free(b);
        snprintf(note, note_size, "out of memory");
        return OUT_FAILED;
    }
    char err[512];
    long written = job_exec(conn, &j, err, sizeof err);
    writer_job_free(&j);
    batch_free(b);
    if (written < 0) {
        snprintf(note, note_size, "%s", err);
        return OUT_FAILED;
    }
    enum outcome out = partial ? OUT_PARTIAL : written > 0 ? OUT_WRITTEN : OUT_UNCHANGED;
    if (!partial)
        snprintf(note, note_size, "%s", out == OUT_WRITTEN ? "written" : "unchanged");
    const char *mark[2] = {id, note};
    if (exec_ok(conn, mark_replayed_sql, 2, mark, err, sizeof err)) {
        snprintf(note, note_size, "%s", err);
        return OUT_FAILED;
    }
    return out;
}

/* One reject, in its own transaction. Returns 1 when one was examined, 0
 * when none is left, -1 when the database cannot be used. */
static int replay_one(PGconn *conn, const struct filter_params *fp, int64_t statement_timeout_us, bool dry_run,
                      char *last_id, size_t last_id_size, struct replay_counts *c, char *err, size_t err_size)
{
    if (exec_plain(conn, "BEGIN")) {
        snprintf(err, err_size, "BEGIN: %s", pq_clean(PQerrorMessage(conn)));
        return -1;
    }
    if (statement_timeout_us > 0) {
        char ms[32];
        snprintf(ms, sizeof ms, "%lld", (long long)(statement_timeout_us / 1000));
        const char *v[1] = {ms};
        if (exec_ok(conn, set_timeout_sql, 1, v, err, err_size)) {
            exec_plain(conn, "ROLLBACK");
            return -1;
        }
    }
    const char *params[6] = {fp->values[0], fp->values[1], fp->values[2], fp->values[3], fp->values[4], last_id};
    PGresult *res = PQexecParams(conn, claim_sql, 6, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, err_size, "%s", pq_clean(PQresultErrorMessage(res)));
        PQclear(res);
        exec_plain(conn, "ROLLBACK");
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return exec_plain(conn, "COMMIT") == 0 ? 0 : -1;
    }
    char id[24], underlying[64], kind[16], source[16], request_id[96], reason[256];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    snprintf(underlying, sizeof underlying, "%s", PQgetvalue(res, 0, 1));
    int64_t key_us = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    snprintf(kind, sizeof kind, "%s", PQgetvalue(res, 0, 4));
    snprintf(reason, sizeof reason, "%s", PQgetvalue(res, 0, 5));
    snprintf(source, sizeof source, "%s", PQgetvalue(res, 0, 6));
    snprintf(request_id, sizeof request_id, "%s", PQgetvalue(res, 0, 7));
    struct reparse rp;
    reparse_run(&rp, PQgetvalue(res, 0, 2), underlying, key_us);
    PQclear(res);
    snprintf(last_id, last_id_size, "%s", id);
    c->examined++;

    char note[640] = "";
    enum outcome out;
    if (rp.rc != PARSE_OK || rp.page.nrows == 0) {
        out = OUT_STILL;
        snprintf(note, sizeof note, "still rejected: %s",
                 rp.rc != PARSE_OK ? "not JSON of one result" : rp.page.nrejects ? rp.page.rejects[0].reason : "?");
    } else if (rp.page.nrejects > 0 && strcmp(kind, "partial") == 0 && strcmp(rp.page.rejects[0].reason, reason) == 0) {
        out = OUT_STILL; /* the same fields still dropped: the stored row is already what can be had */
        snprintf(note, sizeof note, "still partial: %s", reason);
    } else {
        out = replay_write(conn, id, &rp.page, underlying, source, request_id, dry_run, note, sizeof note);
    }
    snapshot_page_free(&rp.page);

    if (out == OUT_FAILED || dry_run) {
        exec_plain(conn, "ROLLBACK");
        if (out == OUT_FAILED) {
            char q[400];
            log_warn("replay: the database refused the row again", "id=%s error=%s", id,
                     log_quote(q, sizeof q, note));
        }
    } else {
        if (out == OUT_STILL) {
            const char *v[2] = {id, note};
            if (exec_ok(conn, note_sql, 2, v, err, err_size)) {
                exec_plain(conn, "ROLLBACK");
                return -1;
            }
        }
        if (exec_plain(conn, "COMMIT")) {
            snprintf(err, err_size, "COMMIT: %s", pq_clean(PQerrorMessage(conn)));
            return -1;
        }
    }
    switch (out) {
    case OUT_WRITTEN: c->written++; break;
    case OUT_UNCHANGED: c->unchanged++; break;
    case OUT_PARTIAL: c->partial++; break;
    case OUT_STILL: c->still_rejected++; break;
    case OUT_FAILED: c->failed++; break;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char clean[256];
        snprintf(err, err_size, "database connection lost: %s", scrub_secrets(clean, sizeof clean, PQerrorMessage(conn)));
        return -1;
    }
    return 1;
}

int rejects_replay(PGconn *conn, const struct rejects_filter *f, int64_t statement_timeout_us, bool dry_run,
                   struct replay_counts *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    struct filter_params fp;
    filter_params_init(&fp, f);
    char last_id[24] = "0";
    for (;;) {
        if (f->limit > 0 && out->examined >= f->limit)
            return 0;
        int rc = replay_one(conn, &fp, statement_timeout_us, dry_run, last_id, sizeof last_id, out, err, err_size);
        if (rc <= 0)
            return rc;
    }
}

/* ---- the command ---- */

static const char *format_time(char *buf, size_t size, int64_t us)
{
    if (us == 0) {
        snprintf(buf, size, "-");
        return buf;
    }
    timestamp_format(buf, size, us);
    return buf;
}

static int list_rejects(PGconn *conn, const struct rejects_filter *f, bool json)
{
    struct filter_params fp;
    filter_params_init(&fp, f);
    char limit[24];
    snprintf(limit, sizeof limit, "%ld", f->limit > 0 ? f->limit : 100);
    const char *params[7] = {fp.values[0], fp.values[1], fp.values[2], fp.values[3], fp.values[4],
                             f->include_replayed ? "true" : "false", limit};
    PGresult *res = PQexecParams(conn, list_sql, 7, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "optsnap rejects: %s\n", pq_clean(PQresultErrorMessage(res)));
        PQclear(res);
        return EXIT_RUNTIME;
    }
    int n = PQntuples(res);
    char t1[40], t2[40], t3[40];
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *list = cJSON_AddArrayToObject(root, "rejects");
        for (int i = 0; list != NULL && i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            if (o == NULL || !cJSON_AddItemToArray(list, o)) {
                cJSON_Delete(o);
                break;
            }
            cJSON_AddNumberToObject(o, "id", strtod(PQgetvalue(res, i, 0), NULL));
            cJSON_AddStringToObject(o, "received_at", format_time(t1, sizeof t1, strtoll(PQgetvalue(res, i, 1), NULL, 10)));
            cJSON_AddStringToObject(o, "underlying", PQgetvalue(res, i, 2));
            cJSON_AddStringToObject(o, "ticker", PQgetvalue(res, i, 3));
            cJSON_AddStringToObject(o, "kind", PQgetvalue(res, i, 4));
            cJSON_AddStringToObject(o, "reason", PQgetvalue(res, i, 5));
            cJSON_AddStringToObject(o, "request_id", PQgetvalue(res, i, 6));
            cJSON_AddStringToObject(o, "source", PQgetvalue(res, i, 7));
            int64_t key = strtoll(PQgetvalue(res, i, 8), NULL, 10), rep = strtoll(PQgetvalue(res, i, 9), NULL, 10);
            if (key)
                cJSON_AddStringToObject(o, "key_time", format_time(t2, sizeof t2, key));
            else
                cJSON_AddNullToObject(o, "key_time");
            if (rep)
                cJSON_AddStringToObject(o, "replayed_at", format_time(t3, sizeof t3, rep));
            else
                cJSON_AddNullToObject(o, "replayed_at");
            cJSON_AddStringToObject(o, "replay_result", PQgetvalue(res, i, 10));
            cJSON_AddStringToObject(o, "raw", PQgetvalue(res, i, 11));
        }
        cJSON_AddNumberToObject(root, "count", n);
        if (json_line_print(root) != 0) {
            PQclear(res);
            return EXIT_RUNTIME;
        }
    } else {
        printf("%-10s %-27s %-8s %-10s %-24s %-27s %s\n", "id", "received_at", "kind", "underlying", "ticker",
               "replayed_at", "reason");
        for (int i = 0; i < n; i++) {
            char reason[160];
            /* one line per reject: the reason comes from outside, keep it printable */
            snprintf(reason, sizeof reason, "%s", PQgetvalue(res, i, 5));
            for (char *p = reason; *p; p++)
                if ((unsigned char)*p < 0x20)
                    *p = ' ';
            printf("%-10s %-27s %-8s %-10s %-24s %-27s %s\n", PQgetvalue(res, i, 0),
                   format_time(t1, sizeof t1, strtoll(PQgetvalue(res, i, 1), NULL, 10)), PQgetvalue(res, i, 4),
                   PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                   format_time(t3, sizeof t3, strtoll(PQgetvalue(res, i, 9), NULL, 10)), reason);
        }
        printf("%d rejects\n", n);
    }
    PQclear(res);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
}

static void rejects_usage(FILE *out)
{
    fprintf(out,
            "usage: optsnap rejects [--since T] [--until T] [--reason TEXT] [--kind K] [--underlying U]\n"
            "                       [--limit N] [--pending] [--format table|json]\n"
            "       optsnap rejects --replay [--dry-run] [the same filters]\n\n"
            "Lists the dead letter (ingest_rejects): input that did not become a row\n"
            "(kind reject), rows stored with fields dropped (partial) and rows the\n"
            "database refused (refused), oldest first.\n\n"
            "--replay runs each matching reject not replayed yet through today's parser\n"
            "and writes what now parses, in one transaction per reject that also marks\n"
            "it replayed: a reject is replayed once, a second replay writes nothing.\n"
            "Prints one line of counts; exit 3 when the database refused some rows again.\n\n"
            "  --since T, --until T  received_at in [since, until): 2026-11-02,\n"
            "                        2026-11-02T14:30:00Z, now, or a duration back (7d)\n"
            "  --reason TEXT         reasons containing TEXT (any case)\n"
            "  --kind K              reject, partial or refused\n"
            "  --underlying U        one underlying\n"
            "  --limit N             at most N (listing default 100; replay: all)\n"
            "  --pending             list only those not replayed yet\n"
            "  --format table|json   listing format (json carries raw) (default table)\n"
            "  --replay              replay instead of listing\n"
            "  --dry-run             with --replay: parse and count, write nothing\n"
            "  --database-url U      libpq URL or conninfo (setting; default $DATABASE_URL)\n"
            "  --help                this text\n");
}

struct rejects_options {
    const char *since, *until, *reason, *kind, *underlying, *limit, *format;
    bool replay, dry_run, pending;
};

static int rejects_run(struct settings *s, void *options)
{
    const struct rejects_options *o = options;
    int64_t now_us = time_now_us();
    struct rejects_filter f = {.reason = o->reason, .kind = o->kind, .underlying = o->underlying,
                               .include_replayed = !o->pending};
    if (o->since != NULL && time_or_ago_parse(o->since, now_us, &f.since_us)) {
        fprintf(stderr, "optsnap rejects: --since '%s' is not a time or a duration\n", o->since);
        return EXIT_USAGE;
    }
    if (o->until != NULL && time_or_ago_parse(o->until, now_us, &f.until_us)) {
        fprintf(stderr, "optsnap rejects: --until '%s' is not a time or a duration\n", o->until);
        return EXIT_USAGE;
    }
    if (o->kind != NULL && strcmp(o->kind, "reject") != 0 && strcmp(o->kind, "partial") != 0 &&
        strcmp(o->kind, "refused") != 0) {
        fprintf(stderr, "optsnap rejects: --kind must be reject, partial or refused\n");
        return EXIT_USAGE;
    }
    if (o->limit != NULL) {
        char *end;
        f.limit = strtol(o->limit, &end, 10);
        if (*o->limit == '\0' || *end != '\0' || f.limit <= 0) {
            fprintf(stderr, "optsnap rejects: --limit must be a positive number\n");
            return EXIT_USAGE;
        }
    }
    bool json = false;
    if (o->format != NULL) {
        json = strcmp(o->format, "json") == 0;
        if (!json && strcmp(o->format, "table") != 0) {
            fprintf(stderr, "optsnap rejects: --format must be table or json\n");
            return EXIT_USAGE;
        }
    }
    if (o->dry_run && !o->replay) {
        fprintf(stderr, "optsnap rejects: --dry-run goes with --replay\n");
        return EXIT_USAGE;
    }
    PGconn *conn = pg_connect_blocking(s->database_url, "optsnap-rejects");
    if (conn == NULL)
        return EXIT_RUNTIME;
    int rc;
    if (!o->replay) {
        rc = list_rejects(conn, &f, json);
    } else {
        struct replay_counts c;
        char err[512] = "";
        int r = rejects_replay(conn, &f, s->statement_timeout_us, o->dry_run, &c, err, sizeof err);
        printf("replay%s: examined=%ld written=%ld unchanged=%ld partial=%ld still_rejected=%ld failed=%ld\n",
               o->dry_run ? " (dry run)" : "", c.examined, c.written, c.unchanged, c.partial, c.still_rejected,
               c.failed);
        fflush(stdout);
        if (r != 0) {
            char q[600];
            log_error("replay stopped: database error", "error=%s", log_quote(q, sizeof q, err));
            rc = EXIT_RUNTIME;
        } else {
            rc = c.failed > 0 ? EXIT_PARTIAL : EXIT_OK;
        }
    }
    PQfinish(conn);
    return rc;
}

int cmd_rejects(int argc, char **argv)
{
    struct rejects_options o = {0};
    const struct cli_option opts[] = {
        {"--since", &o.since, NULL},         {"--until", &o.until, NULL},
        {"--reason", &o.reason, NULL},       {"--kind", &o.kind, NULL},
        {"--underlying", &o.underlying, NULL}, {"--limit", &o.limit, NULL},
        {"--format", &o.format, NULL},       {"--replay", NULL, &o.replay},
        {"--dry-run", NULL, &o.dry_run},     {"--pending", NULL, &o.pending},
    };
    const struct cli_command c = {"rejects", rejects_usage, opts, sizeof opts / sizeof opts[0], true};
    return cli_command_run(&c, argc, argv, rejects_run, &o);
}
