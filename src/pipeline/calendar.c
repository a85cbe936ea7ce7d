/* calendar.c - trading sessions from optsnap_sessions(), into a session_set. */
#include "optsnap/pipeline/calendar.h"

#include <stdlib.h>

#include "optsnap/db/pg_connect.h"
#include "optsnap/util/log.h"
#include "optsnap/util/timeutil.h"

const char calendar_sessions_sql[] =
    "SELECT (extract(epoch FROM open_at) * 1000000)::int8, (extract(epoch FROM close_at) * 1000000)::int8 "
    "FROM optsnap_sessions($1::text, $2::timestamptz, $3::timestamptz) ORDER BY open_at";

int calendar_fill(struct session_set *out, const PGresult *res, int64_t from_us, int64_t to_us)
{
    session_set_clear(out);
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t o = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        int64_t c = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        if (session_set_add(out, o, c) != 0) {
            log_error("out of memory", "where=sessions");
            session_set_clear(out);
            return -1;
        }
    }
    out->loaded_from_us = from_us;
    out->loaded_to_us = to_us;
    return 0;
}

int calendar_load_blocking(PGconn *conn, const char *calendar, int64_t from_us, int64_t to_us,
                           struct session_set *out)
{
    char a[40], b[40];
    const char *p[3] = {calendar, timestamp_format(a, sizeof a, from_us), timestamp_format(b, sizeof b, to_us)};
    PGresult *res = PQexecParams(conn, calendar_sessions_sql, 3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pg_log_error("cannot load the trading calendar", conn, res);
        PQclear(res);
        return -1;
    }
    int rc = calendar_fill(out, res, from_us, to_us);
    PQclear(res);
    return rc;
}
