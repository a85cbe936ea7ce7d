/* pg_txn.c - what a SQLSTATE means for a transaction: retry, bisect, or give up. */
#include "optsnap/db/pg_txn.h"

#include <string.h>

bool pg_sqlstate_is_transient(const char *s)
{
    return strncmp(s, "08", 2) == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "40001") == 0 ||
           strcmp(s, "57014") == 0 || strcmp(s, "53300") == 0 || strncmp(s, "57P", 3) == 0 ||
           strcmp(s, "53400") == 0;
}

bool pg_sqlstate_is_data_error(const char *s)
{
    return strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0;
}
