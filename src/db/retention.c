/* retention.c - the `retention` setting: day partitions older than the window
 * dropped (SQL optsnap_retention_apply), from `optsnap retention` and from the
 * daemon's daily maintenance (the command is history/retention.c). */
#include "optsnap/db/retention.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"

#define RETENTION_MIN_US (2 * USEC_PER_DAY)

static const char sql_apply[] =
    "SELECT day::text, partition_name, dropped FROM optsnap_retention_apply($1::date, $2::boolean) ORDER BY day";

int32_t retention_cutoff_day(int64_t now_us, int64_t retention_us)
{
    int64_t t = now_us - retention_us;
    int64_t d = t / USEC_PER_DAY;
    if (t < 0 && t % USEC_PER_DAY != 0)
        d--; /* floor, not truncation, before 1970 */
    return (int32_t)d;
}

int retention_job_build(struct retention_job *j, const struct settings *s, int64_t now_us, bool dry_run)
{
    memset(j, 0, sizeof *j);
    if (s->retention_us == 0)
        return 1;
    if (s->retention_us < RETENTION_MIN_US)
        return -1;
    date_format(j->cutoff, sizeof j->cutoff, retention_cutoff_day(now_us, s->retention_us));
    snprintf(j->dry_run, sizeof j->dry_run, "%s", dry_run ? "true" : "false");
    j->values[0] = j->cutoff;
    j->values[1] = j->dry_run;
    j->stmt = (struct pg_stmt){.name = "retention_apply", .sql = sql_apply, .nparams = 2, .values = j->values,
                               .on_tuples = retention_on_tuples};
    return 0;
}

void retention_on_tuples(void *user, const void *pgresult)
{
    struct retention_job *j = user;
    const PGresult *res = pgresult;
    bool dry = strcmp(j->dry_run, "true") == 0;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *day = PQgetvalue(res, i, 0), *part = PQgetvalue(res, i, 1);
        bool dropped = strcmp(PQgetvalue(res, i, 2), "t") == 0;
        if (j->days_listed == 0)
            snprintf(j->first_day, sizeof j->first_day, "%s", day);
        snprintf(j->last_day, sizeof j->last_day, "%s", day);
        j->days_listed++;
        if (dropped) {
            j->days_dropped++;
            log_info("retention: day partition dropped", "day=%s partition=%s cutoff=%s", day, part, j->cutoff);
        } else if (dry) {
            log_info("retention: day partition would be dropped (dry run)", "day=%s partition=%s cutoff=%s", day,
                     part, j->cutoff);
        } else {
            log_warn("retention: day partition busy, kept for the next run", "day=%s partition=%s cutoff=%s", day,
                     part, j->cutoff);
        }
    }
}
