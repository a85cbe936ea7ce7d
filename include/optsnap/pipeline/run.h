/* run.h - `optsnap run`, the live driver on the engine: every cadence window
 * inside a trading session, sweep each underlying's chain snapshot (a pager
 * over /v3/snapshot/options/{underlying}) into one write group whose mark
 * covers the window. Windows only move forward, and a daemon whose clock
 * disagrees with the API's or the database's marks nothing. */
#ifndef OPTSNAP_RUN_H
#define OPTSNAP_RUN_H

#include "optsnap/config/settings.h"

/* Runs until signalled (or run_for / max_sweeps). argc/argv are the command
 * line the settings came from: SIGHUP re-reads them with the config file and
 * the environment. Returns an exit code: 0 drained and closed cleanly, 1
 * runtime failure or forced stop, 2 bad configuration. */
int run_daemon(struct settings *s, int argc, char **argv);

/* `optsnap run ...` */
int cmd_run(int argc, char **argv);

#endif
