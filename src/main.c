/* main.c - subcommand dispatch only. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "optsnap/commands.h"
#include "optsnap/util/json_arena.h"
#include "optsnap_version.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"run", cmd_run, "live ingestion daemon: sweep the universe every cadence into PostgreSQL"},
    {"migrate", cmd_migrate, "apply the embedded schema migrations (idempotent, locked)"},
    {"mock-api", cmd_mock_api, "serve a deterministic simulated options market over HTTP"},
    {"gaps", cmd_gaps, "list the cadence windows of trading sessions that no sweep covered"},
    {"backfill", cmd_backfill, "fill a time range from the aggregates endpoint (source backfill)"},
    {"repair", cmd_repair, "find the gaps of the last --lookback and backfill them (cron)"},
    {"config", cmd_config, "print the effective configuration and where each value came from"},
    {"check", cmd_check, "check API reachability, key, plan, rate limit, database, schema, privileges"},
    {"rejects", cmd_rejects, "list the dead letter (ingest_rejects); --replay it through today's parser"},
    {"chain", cmd_chain, "print an underlying's chain as it stood at a time (--at T)"},
    {"series", cmd_series, "print one contract's stored snapshots over a range"},
    {"retention", cmd_retention, "drop day partitions older than the retention setting (--dry-run)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: optsnap <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`optsnap <command> --help` describes each command's options.\n"
                 "exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error, 3 partial\n");
}

int main(int argc, char **argv)
{
    /* a peer closing mid-write must be an error return, never a dead process */
    signal(SIGPIPE, SIG_IGN);
    /* cJSON's nodes from one chunk rewound per page (util/json_arena.h);
     * without it cJSON keeps malloc */
    (void)json_arena_install((size_t)4 << 20);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("optsnap %s\n", OPTSNAP_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "optsnap: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
