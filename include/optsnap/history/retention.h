/* retention.h - `optsnap retention`: the retention setting applied once
 * (db/retention.h has the statement the daemon's maintenance runs too). */
#ifndef OPTSNAP_HISTORY_RETENTION_H
#define OPTSNAP_HISTORY_RETENTION_H

/* Returns the process exit code (enum exit_code). */
int cmd_retention(int argc, char **argv);

#endif
