/* commands.h - the subcommands main() dispatches to. Each returns the process
 * exit code: 0 ok, 1 runtime failure, 2 usage/config error, 3 partial. */
#ifndef OPTSNAP_COMMANDS_H
#define OPTSNAP_COMMANDS_H

enum exit_code { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_PARTIAL = 3 };

int cmd_run(int argc, char **argv);      /* pipeline/run.c */
int cmd_migrate(int argc, char **argv);  /* db/migrate.c */
int cmd_mock_api(int argc, char **argv); /* sim/mock_api.c */
int cmd_config(int argc, char **argv);   /* config/config_cmd.c */
int cmd_gaps(int argc, char **argv);     /* history/gaps.c */
int cmd_backfill(int argc, char **argv); /* history/repair.c */
int cmd_repair(int argc, char **argv);   /* history/repair.c */
int cmd_rejects(int argc, char **argv);  /* history/rejects.c */
int cmd_check(int argc, char **argv);    /* ops/check.c */
int cmd_chain(int argc, char **argv);    /* history/chain.c */
int cmd_series(int argc, char **argv);   /* history/chain.c */
int cmd_retention(int argc, char **argv); /* history/retention.c */

#endif
