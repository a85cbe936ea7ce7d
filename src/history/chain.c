/* chain.c - reading history back: `optsnap chain` (an underlying's chain as
 * it stood at a time, optsnap_chain_at) and `optsnap series` (one contract
 * over a range, optsnap_series). Blocking libpq: a command, no loop. */
#include "optsnap/history/chain.h"

#include <cjson/cJSON.h>

#include "optsnap/util/json_line.h"
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/commands.h"
#include "optsnap/config/cli.h"
#include "optsnap/db/pg_connect.h"
#include "optsnap/util/scrub.h"
#include "optsnap/util/timeutil.h"

/* The columns both commands print, in order; the first names the rest. */
#define HISTORY_COLUMNS                                                                                          \
    "SELECT c.ticker, o.contract_type, o.expiration_date::text, o.strike_price,"                                  \
    "       to_char(c.last_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"                      \
    "       c.bid, c.ask, c.midpoint, c.trade_price, c.day_volume, c.open_interest, c.implied_volatility,"          \
    "       c.delta, c.gamma, c.theta, c.vega, c.underlying_price, c.source"

static const char *const column_names[] = {"ticker", "type", "expiration", "strike", "last_updated", "bid", "ask",
                                           "midpoint", "last", "volume", "open_interest", "iv", "delta", "gamma",
                                           "theta", "vega", "underlying_price", "source"};
#define NCOLUMNS (sizeof column_names / sizeof column_names[0])
/* the text columns; the others are numbers (JSON) */
static bool column_is_text(int i) { return i <= 2 || i == 4 || i == 17; }

static const char sql_chain[] =
    HISTORY_COLUMNS
    "  FROM optsnap_chain_at($1, $2::timestamptz, $3::timestamptz) c JOIN options o ON o.ticker = c.ticker"
    " ORDER BY o.expiration_date, o.strike_price, o.contract_type, c.ticker";
static const char sql_series[] =
    HISTORY_COLUMNS
    "  FROM optsnap_series($1, $2::timestamptz, $3::timestamptz) c JOIN options o ON o.ticker = c.ticker"
    " ORDER BY c.last_updated";

enum output_format { FORMAT_TABLE, FORMAT_CSV, FORMAT_JSON };

static int format_parse(const char *cmd, const char *text, enum output_format *out)
{
    if (text == NULL || strcmp(text, "table") == 0)
        *out = FORMAT_TABLE;
    else if (strcmp(text, "csv") == 0)
        *out = FORMAT_CSV;
    else if (strcmp(text, "json") == 0)
        *out = FORMAT_JSON;
    else {
        fprintf(stderr, "optsnap %s: --format must be table, csv or json\n", cmd);
        return -1;
    }
    return 0;
}

static void print_table(const PGresult *res)
{
    printf("%-24s %-4s %-10s %9s %-27s %9s %9s %9s %9s %8s %8s %8s %8s %-8s\n", "ticker", "type", "expiration",
           "strike", "last_updated", "bid", "ask", "mid", "last", "volume", "oi", "iv", "delta", "source");
    for (int r = 0; r < PQntuples(res); r++) {
        const char *v[NCOLUMNS];
        for (size_t c = 0; c < NCOLUMNS; c++)
            v[c] = PQgetisnull(res, r, (int)c) ? "-" : PQgetvalue(res, r, (int)c);
        printf("%-24s %-4s %-10s %9s %-27s %9s %9s %9s %9s %8s %8s %8.6s %8.6s %-8s\n", v[0], v[1], v[2], v[3], v[4],
               v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[17]);
    }
}

/* RFC 4180: a field with a comma, a quote or a newline is quoted. */
static void csv_field(const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void print_csv(const PGresult *res)
{
    for (size_t c = 0; c < NCOLUMNS; c++)
        printf("%s%s", c ? "," : "", column_names[c]);
    putchar('\n');
    for (int r = 0; r < PQntuples(res); r++) {
        for (size_t c = 0; c < NCOLUMNS; c++) {
            if (c)
                putchar(',');
            if (!PQgetisnull(res, r, (int)c))
                csv_field(PQgetvalue(res, r, (int)c));
        }
        putchar('\n');
    }
}

/* PostgreSQL's float text is JSON's number syntax except NaN and the infinities. */
static bool json_number_text(const char *s)
{
    return strcmp(s, "NaN") != 0 && strcmp(s, "Infinity") != 0 && strcmp(s, "-Infinity") != 0;
}

static int print_json(const PGresult *res, const char *key, const char *name, const char *from, const char *to)
{
    cJSON *root = cJSON_CreateObject(), *rows = NULL;
    if (root == NULL)
        return -1;
    cJSON_AddStringToObject(root, key, name);
    cJSON_AddStringToObject(root, to ? "from" : "at", from);
    if (to)
        cJSON_AddStringToObject(root, "to", to);
    rows = cJSON_AddArrayToObject(root, "rows");
    for (int r = 0; rows != NULL && r < PQntuples(res); r++) {
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(rows, o)) {
            cJSON_Delete(o);
            rows = NULL;
            break;
        }
        for (size_t c = 0; c < NCOLUMNS; c++) {
            const char *v = PQgetvalue(res, r, (int)c);
            if (PQgetisnull(res, r, (int)c) || (!column_is_text((int)c) && !json_number_text(v)))
                cJSON_AddNullToObject(o, column_names[c]);
            else if (column_is_text((int)c))
                cJSON_AddStringToObject(o, column_names[c], v);
            else
                cJSON_AddRawToObject(o, column_names[c], v); /* exact: the server's shortest round-trip text */
        }
    }
    if (rows == NULL) {
        cJSON_Delete(root);
        return -1;
    }
    return json_line_print(root);
}

/* Runs one read under statement_timeout in a read-only transaction and
 * prints it. Returns the exit code. */
static int history_query(const struct settings *s, const char *cmd, const char *sql, const char *const values[3],
                         enum output_format fmt, const char *json_key)
{
    PGconn *c = pg_connect_blocking(s->database_url, "optsnap-history");
    if (c == NULL)
        return EXIT_RUNTIME;
    PGresult *res = pg_exec_in_txn(c, true, s->statement_timeout_us, sql, 3, values);
    int code = EXIT_RUNTIME;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        char msg[512];
        scrub_secrets(msg, sizeof msg, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                                           ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                                           : PQerrorMessage(c));
        fprintf(stderr, "optsnap %s: query failed (sqlstate %s): %s\n", cmd, st ? st : "?", msg);
        if (st != NULL && strncmp(st, "22", 2) == 0)
            code = EXIT_USAGE;
    } else {
        int rc = 0;
        if (fmt == FORMAT_TABLE)
            print_table(res);
        else if (fmt == FORMAT_CSV)
            print_csv(res);
        else
            rc = print_json(res, json_key, values[0], values[1], strcmp(json_key, "ticker") == 0 ? values[2] : NULL);
        if (fmt == FORMAT_TABLE)
            fprintf(stderr, "%d row%s\n", PQntuples(res), PQntuples(res) == 1 ? "" : "s");
        code = rc == 0 && fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
    }
    PQclear(res);
    PQclear(PQexec(c, "ROLLBACK"));
    PQfinish(c);
    return code;
}

/* `optsnap chain SPY --at T`: the positional argument first, then the
 * options cli_load knows. */
static const char *take_positional(int *argc, char **argv)
{
    if (*argc < 2 || argv[1][0] == '-')
        return NULL;
    const char *p = argv[1];
    for (int i = 1; i + 1 < *argc; i++)
        argv[i] = argv[i + 1];
    (*argc)--;
    return p;
}

static void chain_usage(FILE *out)
{
    fprintf(out,
            "usage: optsnap chain UNDERLYING --at T [--since T] [--format table|csv|json] [--<setting> V ...]\n\n"
            "The chain of UNDERLYING as it stood at T: for each contract not expired at T\n"
            "(New York date), its latest stored snapshot at or before T, live or backfill,\n"
            "and not before --since (default: the start of T's New York day, so a contract\n"
            "that has not printed that day is left out). Sorted by expiration, strike, type.\n"
            "SQL: SELECT * FROM optsnap_chain_at('SPY', '2026-11-20T15:30:00Z'); the reader\n"
            "role may call it. One primary-key probe per contract (no scan of a day).\n\n"
            "  --at T            the time (2026-11-20T15:30:00Z, \"2026-11-20 15:30:00\"; UTC)\n"
            "  --since T         the oldest snapshot that still counts\n"
            "  --format F        table (default), csv (every column, empty for null) or json\n"
            "                    ({\"underlying\",\"at\",\"rows\":[{...}]}, numbers as stored)\n"
            "  --database-url U  and the other settings (optsnap config --help)\n\n"
            "exit codes: 0 printed (also when empty), 1 database error, 2 usage error\n");
}

static void series_usage(FILE *out)
{
    fprintf(out,
            "usage: optsnap series TICKER --from T --to T [--format table|csv|json] [--<setting> V ...]\n\n"
            "Every stored snapshot of one contract (O:SPY261120C00580000) in [from, to),\n"
            "oldest first. SQL: SELECT * FROM optsnap_series(ticker, from, to).\n\n"
            "  --from T, --to T  the range (UTC)\n"
            "  --format F        table (default), csv or json ({\"ticker\",\"from\",\"to\",\"rows\"})\n\n"
            "exit codes: 0 printed (also when empty), 1 database error, 2 usage error\n");
}

struct chain_options {
    const char *positional, *at, *since, *from, *to, *format;
};

static int chain_command(struct settings *s, void *options)
{
    const struct chain_options *o = options;
    const char *underlying = o->positional;
    enum output_format fmt;
    int64_t at_us, since_us;
    if (underlying == NULL || strlen(underlying) >= 16) {
        fprintf(stderr, "optsnap chain: an underlying is required (optsnap chain SPY --at T)\n");
        return EXIT_USAGE;
    }
    if (o->at == NULL || timestamp_parse(o->at, &at_us) != 0) {
        fprintf(stderr, "optsnap chain: --at T is required (a time, UTC)\n");
        return EXIT_USAGE;
    }
    if (o->since != NULL && (timestamp_parse(o->since, &since_us) != 0 || since_us > at_us)) {
        fprintf(stderr, "optsnap chain: --since must be a time not after --at\n");
        return EXIT_USAGE;
    }
    if (format_parse("chain", o->format, &fmt) != 0)
        return EXIT_USAGE;
    char at_text[40], since_text[40];
    timestamp_format(at_text, sizeof at_text, at_us);
    if (o->since != NULL)
        timestamp_format(since_text, sizeof since_text, since_us);
    const char *values[3] = {underlying, at_text, o->since != NULL ? since_text : NULL};
    return history_query(s, "chain", sql_chain, values, fmt, "underlying");
}

int cmd_chain(int argc, char **argv)
{
    struct chain_options o = {.positional = take_positional(&argc, argv)};
    const struct cli_option opts[] = {{"--at", &o.at, NULL}, {"--since", &o.since, NULL}, {"--format", &o.format, NULL}};
    const struct cli_command c = {"chain", chain_usage, opts, sizeof opts / sizeof opts[0], false};
    return cli_command_run(&c, argc, argv, chain_command, &o);
}

static int series_command(struct settings *s, void *options)
{
    const struct chain_options *o = options;
    const char *ticker = o->positional;
    enum output_format fmt;
    int64_t from_us, to_us;
    if (ticker == NULL || strlen(ticker) >= 64) {
        fprintf(stderr, "optsnap series: a contract ticker is required (optsnap series O:SPY... --from T --to T)\n");
        return EXIT_USAGE;
    }
    if (o->from == NULL || o->to == NULL || timestamp_parse(o->from, &from_us) != 0 ||
        timestamp_parse(o->to, &to_us) != 0 || to_us <= from_us) {
        fprintf(stderr, "optsnap series: --from and --to are required times with from < to\n");
        return EXIT_USAGE;
    }
    if (format_parse("series", o->format, &fmt) != 0)
        return EXIT_USAGE;
    char a[40], b[40];
    const char *values[3] = {ticker, timestamp_format(a, sizeof a, from_us), timestamp_format(b, sizeof b, to_us)};
    return history_query(s, "series", sql_series, values, fmt, "ticker");
}

int cmd_series(int argc, char **argv)
{
    struct chain_options o = {.positional = take_positional(&argc, argv)};
    const struct cli_option opts[] = {{"--from", &o.from, NULL}, {"--to", &o.to, NULL}, {"--format", &o.format, NULL}};
    const struct cli_command c = {"series", series_usage, opts, sizeof opts / sizeof opts[0], false};
    return cli_command_run(&c, argc, argv, series_command, &o);
}
