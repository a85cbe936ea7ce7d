/* cli.c - --help, settings, then a command's own options. */
#include "optsnap/config/cli.h"

#include <string.h>

#include "optsnap/commands.h"

extern char **environ;

bool cli_help_asked(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

/* The option a names (exactly, or as "--name=..."), NULL when none. */
static const struct cli_option *find(const char *a, const struct cli_option *opts, size_t n, const char **inline_value)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(opts[i].name);
        if (strncmp(a, opts[i].name, len) != 0)
            continue;
        if (a[len] == '\0') {
            *inline_value = NULL;
            return &opts[i];
        }
        if (a[len] == '=') {
            *inline_value = a + len + 1;
            return &opts[i];
        }
    }
    return NULL;
}

int cli_parse(const char *cmd, char **argv, const int *rest, int nrest, const struct cli_option *opts, size_t nopts)
{
    for (int k = 0; k < nrest; k++) {
        const char *a = argv[rest[k]], *value;
        const struct cli_option *o = find(a, opts, nopts, &value);
        if (o == NULL) {
            fprintf(stderr, "optsnap %s: unknown argument '%s' (see optsnap %s --help)\n", cmd, a, cmd);
            return -1;
        }
        if (o->flag != NULL) {
            if (value != NULL) {
                fprintf(stderr, "optsnap %s: %s takes no value\n", cmd, o->name);
                return -1;
            }
            *o->flag = true;
            continue;
        }
        if (value == NULL) {
            /* the value is the next argv entry, which the settings left in rest too */
            if (k + 1 >= nrest || rest[k + 1] != rest[k] + 1) {
                fprintf(stderr, "optsnap %s: %s needs a value\n", cmd, a);
                return -1;
            }
            value = argv[rest[++k]];
        }
        *o->value = value;
    }
    return 0;
}

int cli_load(const char *cmd, int argc, char **argv, struct settings *s, const struct cli_option *opts, size_t nopts)
{
    char err[512];
    int rest[64], nrest = 0;
    if (settings_load_all(s, argc, argv, environ, rest, 64, &nrest, err, sizeof err) != 0) {
        fprintf(stderr, "optsnap %s: %s\n", cmd, err);
        return -1;
    }
    return cli_parse(cmd, argv, rest, nrest, opts, nopts);
}

int cli_command_run(const struct cli_command *c, int argc, char **argv,
                    int (*run)(struct settings *s, void *user), void *user)
{
    if (cli_help_asked(argc, argv)) {
        c->usage(stdout);
        return EXIT_OK;
    }
    struct settings s;
    int rc;
    if (cli_load(c->name, argc, argv, &s, c->opts, c->nopts) != 0) {
        if (c->usage_on_error)
            c->usage(stderr);
        rc = EXIT_USAGE;
    } else {
        rc = run(&s, user);
    }
    settings_free(&s);
    return rc;
}

int cli_underlying_option(const char *cmd, struct settings *s, const char *underlying)
{
    char err[512];
    if (underlying == NULL || settings_set(s, "universe", underlying, SOURCE_FLAG, "--underlying", err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "optsnap %s: --underlying: %s\n", cmd, err);
    return -1;
}

void cli_print_settings(FILE *out)
{
    for (size_t i = 0; i < settings_count; i++)
        fprintf(out, "  --%-28s %s (default: %s%s)\n", settings_table[i].name, settings_table[i].doc,
                settings_table[i].default_value[0] ? settings_table[i].default_value : "\"\"",
                settings_table[i].reloadable ? ", reloadable" : "");
}
