/* check.h - `optsnap check`: the start-up checks of key, plan, database,
 * schema and privileges, one line each. */
#ifndef OPTSNAP_OPS_CHECK_H
#define OPTSNAP_OPS_CHECK_H

#include <stdio.h>

#include "optsnap/config/settings.h"

/* Runs every check against s (api_key already loaded), printing one line per
 * check to out: "<name> ok|FAIL <reason>", secrets scrubbed, then a summary;
 * with out NULL (`run` at start-up) each is a log line instead.
 * Returns EXIT_OK when all pass, EXIT_RUNTIME otherwise. Blocking: for a
 * command or before a loop starts, never on a running loop. */
int check_run(const struct settings *s, FILE *out);

#endif
