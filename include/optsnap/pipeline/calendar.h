/* calendar.h - the trading sessions of a calendar, read from SQL
 * (optsnap_sessions: the time-zone math lives in the database): once,
 * blocking, at start-up, and refreshed through the engine afterwards. */
#ifndef OPTSNAP_CALENDAR_H
#define OPTSNAP_CALENDAR_H

#include <libpq-fe.h>
#include <stdint.h>

#include "optsnap/pipeline/schedule.h"

/* SELECT open_us, close_us FROM optsnap_sessions($1 calendar, $2 from, $3 to). */
extern const char calendar_sessions_sql[];

/* Replaces out's sessions with the rows of a calendar_sessions_sql result,
 * known for [from, to). Returns 0, or -1 when out of memory (logged). */
int calendar_fill(struct session_set *out, const PGresult *res, int64_t from_us, int64_t to_us);

/* Blocking (start-up only): loads the sessions of [from, to). Returns 0, or -1 (logged). */
int calendar_load_blocking(PGconn *conn, const char *calendar, int64_t from_us, int64_t to_us,
                           struct session_set *out);

#endif
