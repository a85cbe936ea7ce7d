/* pg_txn.c - what a SQLSTATE means for a transaction: retry on the same
 * connection, reconnect, bisect, or give up. */
#include "optsnap/db/pg_txn.h"

#include <string.h>

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* PostgreSQL's text for 25006 is "cannot execute %s in a read-only
 * transaction"; matched too in case a proxy rewrote the code. */
static bool read_only_message(const char *m)
{
    if (m == NULL || !starts(m, "cannot execute "))
        return false;
    return strstr(m, " in a read-only transaction") != NULL;
}

enum pg_error_action pg_error_classify(const char *sqlstate, const char *message)
{
    const char *s = sqlstate ? sqlstate : "";
    if (strcmp(s, "25006") == 0 || read_only_message(message))
        return PG_ERROR_RECONNECT;
    if (strlen(s) != 5)
        return PG_ERROR_FAIL;
    if (starts(s, "08") || starts(s, "57P"))
        return PG_ERROR_RECONNECT;
    if (strcmp(s, "57014") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "40001") == 0 ||
        strcmp(s, "53300") == 0 || strcmp(s, "53400") == 0)
        return PG_ERROR_RETRY;
    if (starts(s, "22") || starts(s, "23"))
        return PG_ERROR_BISECT;
    return PG_ERROR_FAIL;
}

const char *pg_error_action_name(enum pg_error_action a)
{
    switch (a) {
    case PG_ERROR_RETRY: return "retry";
    case PG_ERROR_RECONNECT: return "reconnect";
    case PG_ERROR_BISECT: return "bisect";
    case PG_ERROR_FAIL: break;
    }
    return "fail";
}

bool pg_sqlstate_is_transient(const char *s)
{
    enum pg_error_action a = pg_error_classify(s, NULL);
    return a == PG_ERROR_RETRY || a == PG_ERROR_RECONNECT;
}

bool pg_sqlstate_is_data_error(const char *s)
{
    return pg_error_classify(s, NULL) == PG_ERROR_BISECT;
}
