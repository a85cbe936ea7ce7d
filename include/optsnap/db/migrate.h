/* migrate.h - applies the embedded sql/ migrations under an advisory lock. Wraps libpq (blocking; start-up only). */
#ifndef OPTSNAP_MIGRATE_H
#define OPTSNAP_MIGRATE_H

#include <stddef.h>

struct migration {
    int version;
    const char *name;     /* "001_schema" */
    const char *checksum; /* sha256 hex of the SQL text */
    const char *sql;
};

/* Generated from sql/ at build time (scripts/embed_sql.py). */
extern const struct migration migrations[];
extern const size_t migrations_count;

/* Applies what is missing, each migration in its own transaction, while holding
 * a transaction-scoped advisory lock per migration (works through a pooler).
 * Refuses (returns -2) when an applied migration's checksum differs.
 * Returns 0 ok, -1 database error, -2 checksum mismatch. *applied gets how many were applied. */
int migrate_apply(const char *conninfo, int *applied) __attribute__((warn_unused_result));

/* `optsnap migrate [--database-url URL]`; returns the process exit code. */
int cmd_migrate(int argc, char **argv);

#endif
