/* retention.c - `optsnap retention [--dry-run] [--now T]`: the retention
 * setting applied once, blocking (db/retention.h builds the statement). */
#include "optsnap/history/retention.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/commands.h"
#include "optsnap/config/cli.h"
#include "optsnap/db/pg_connect.h"
#include "optsnap/db/retention.h"
#include "optsnap/pipeline/schedule.h"
#include "optsnap/util/scrub.h"
#include "optsnap/util/timeutil.h"

static void retention_usage(FILE *out)
{
    fprintf(out,
            "usage: optsnap retention [--dry-run] [--now T] [--retention D] [--<setting> V ...]\n\n"
            "Drops the day partitions of option_snapshots older than the `retention` setting\n"
            "(the partition of UTC day D goes when D < day(now - retention)), oldest first,\n"
            "never the DEFAULT partition and never yesterday or today; marks everything\n"
            "before the cutoff expired, so `gaps` and `repair` no longer report or refill it.\n"
            "One line per day. The daemon does the same in its daily maintenance.\n\n"
            "  --dry-run         list the days that would go; change nothing\n"
            "  --now T           the time to count from (default: the clock setting's now)\n"
            "  --retention D     the window (e.g. 400d); 0 = off (the default): nothing to do\n"
            "  --database-url U  and the other settings (optsnap config --help)\n\n"
            "exit codes: 0 done (also nothing to drop), 3 some days were busy (kept for the\n"
            "next run), 1 database error, 2 usage or configuration error\n");
}

struct retention_options {
    const char *now;
    bool dry_run;
};

static int retention_command(struct settings *s, void *options)
{
    const struct retention_options *o = options;
    const char *now_text = o->now;
    bool dry_run = o->dry_run;
    int code = EXIT_USAGE;
    int64_t now_us;
    struct market_clock clock;
    if (now_text != NULL) {
        if (timestamp_parse(now_text, &now_us) != 0) {
            fprintf(stderr, "optsnap retention: --now '%s' is not a time\n", now_text);
            goto out;
        }
    } else if (market_clock_parse(&clock, s->clock, s->clock_speed, time_now_us()) != 0) {
        fprintf(stderr, "optsnap retention: bad clock '%s'\n", s->clock);
        goto out;
    } else {
        now_us = market_clock_now(&clock, time_now_us());
    }
    struct retention_job j;
    int b = retention_job_build(&j, s, now_us, dry_run);
    if (b == 1) {
        printf("retention: off (retention = 0): nothing dropped\n");
        code = EXIT_OK;
        goto out;
    }
    if (b != 0) {
        fprintf(stderr, "optsnap retention: retention must be 0 (off) or at least 2d\n");
        goto out;
    }
    code = EXIT_RUNTIME;
    PGconn *c = pg_connect_blocking(s->database_url, "optsnap-retention");
    if (c == NULL)
        goto out;
    PGresult *res = pg_exec_in_txn(c, false, s->statement_timeout_us, j.stmt.sql, j.stmt.nparams, j.stmt.values);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        retention_on_tuples(&j, res);
        PQclear(res);
        res = PQexec(c, "COMMIT");
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        char msg[512];
        scrub_secrets(msg, sizeof msg, m ? m : PQerrorMessage(c));
        fprintf(stderr, "optsnap retention: failed (sqlstate %s): %s\n", st ? st : "?", msg);
        if (st != NULL && strcmp(st, "22023") == 0)
            code = EXIT_USAGE;
        PQclear(res);
        PQfinish(c);
        goto out;
    }
    PQclear(res);
    PQfinish(c);
    if (j.days_listed == 0)
        printf("retention: nothing older than %s\n", j.cutoff);
    else if (dry_run)
        printf("retention: would drop %d day partition%s (%s .. %s), cutoff %s (--dry-run: nothing changed)\n",
               j.days_listed, j.days_listed == 1 ? "" : "s", j.first_day, j.last_day, j.cutoff);
    else
        printf("retention: dropped %d of %d day partition%s (%s .. %s), cutoff %s\n", j.days_dropped, j.days_listed,
               j.days_listed == 1 ? "" : "s", j.first_day, j.last_day, j.cutoff);
    code = !dry_run && j.days_dropped < j.days_listed ? EXIT_PARTIAL : EXIT_OK;
out:
    return code;
}

int cmd_retention(int argc, char **argv)
{
    struct retention_options o = {0};
    const struct cli_option opts[] = {{"--now", &o.now, NULL}, {"--dry-run", NULL, &o.dry_run}};
    const struct cli_command c = {"retention", retention_usage, opts, sizeof opts / sizeof opts[0], false};
    return cli_command_run(&c, argc, argv, retention_command, &o);
}
