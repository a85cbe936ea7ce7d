/* cli.h - what every command's command line shares: --help, the settings,
 * then the command's own options (--name value or --name=value) among the
 * arguments the settings left. Errors are printed as "optsnap CMD: ...".
 * Pure (stdio only). */
#ifndef OPTSNAP_CLI_H
#define OPTSNAP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "optsnap/config/settings.h"

/* One option of a command's own: "--from", and where its value goes (NULL
 * stays when not given), or, for a flag without a value, the bool it sets. */
struct cli_option {
    const char *name;   /* "--since" */
    const char **value; /* set for an option with a value ... */
    bool *flag;         /* ... or for a flag without one */
};

/* Reads argv[rest[0..nrest)] (indexes into argv, in order; a value is the
 * next argv entry, which the settings loader left in rest too). Returns 0,
 * or -1 after printing "optsnap <cmd>: ..." for an unknown argument, a
 * missing value, or a value given to a flag. */
int cli_parse(const char *cmd, char **argv, const int *rest, int nrest, const struct cli_option *opts, size_t nopts)
    __attribute__((warn_unused_result));

/* True when argv holds --help or -h. */
bool cli_help_asked(int argc, char **argv);

/* settings_load_all, then opts from what it left. Returns 0, or -1 after
 * printing the error (the caller exits 2). s needs settings_free either way. */
int cli_load(const char *cmd, int argc, char **argv, struct settings *s, const struct cli_option *opts, size_t nopts)
    __attribute__((warn_unused_result));

/* A command, to the frame every command shares (cli_command_run). */
struct cli_command {
    const char *name;              /* "gaps": errors read "optsnap gaps: ..." */
    void (*usage)(FILE *out);      /* its --help text */
    const struct cli_option *opts; /* its own options (NULL when none) */
    size_t nopts;
    bool usage_on_error;           /* the usage goes to stderr after a usage error too */
};

/* The frame: --help or -h prints the usage on stdout (exit 0); else the
 * settings and the command's own options are loaded (an error is printed:
 * exit 2) and run(s, user) gives the exit code. The settings are freed
 * either way. */
int cli_command_run(const struct cli_command *c, int argc, char **argv,
                    int (*run)(struct settings *s, void *user), void *user);

/* A command's --underlying LIST: it becomes the universe setting (NULL:
 * nothing to do). Returns 0, or -1 after printing "optsnap CMD: --underlying: ...". */
int cli_underlying_option(const char *cmd, struct settings *s, const char *underlying)
    __attribute__((warn_unused_result));

/* One line per setting: "  --name  doc (default: v[, reloadable])". */
void cli_print_settings(FILE *out);

#endif
