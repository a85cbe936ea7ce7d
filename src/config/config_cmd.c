/* config_cmd.c - `optsnap config`: the effective configuration, its sources, secrets masked. */
#include <stdio.h>
#include <string.h>

#include "optsnap/commands.h"
#include "optsnap/config/settings.h"

extern char **environ;

static void config_usage(FILE *out)
{
    fprintf(out, "usage: optsnap config [--config FILE] [--<setting> VALUE ...]\n\n"
                 "Prints every setting's effective value and where it came from\n"
                 "(default, file:line, OPTSNAP_<KEY>, --flag). Secrets are masked.\n\nsettings:\n");
    for (size_t i = 0; i < settings_count; i++)
        fprintf(out, "  --%-28s %s (default: %s%s)\n", settings_table[i].name, settings_table[i].doc,
                settings_table[i].default_value[0] ? settings_table[i].default_value : "\"\"",
                settings_table[i].reloadable ? ", reloadable" : "");
}

int cmd_config(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            config_usage(stdout);
            return EXIT_OK;
        }
    }
    struct settings s;
    char err[512];
    int rest[64], nrest = 0;
    if (settings_load_all(&s, argc, argv, environ, rest, 64, &nrest, err, sizeof err)) {
        fprintf(stderr, "optsnap config: %s\n", err);
        return EXIT_USAGE;
    }
    if (nrest > 0) {
        fprintf(stderr, "optsnap config: unknown option '%s'\n", argv[rest[0]]);
        return EXIT_USAGE;
    }
    int rc = settings_load_api_key(&s, err, sizeof err);
    for (size_t i = 0; i < settings_count; i++) {
        char value[SETTING_STR_MAX];
        settings_format_value(&s, i, value, sizeof value);
        printf("%-26s = %-40s # %s%s%s\n", settings_table[i].name, value,
               setting_source_name(s.source[i]), s.source_detail[i][0] ? " " : "",
               s.source_detail[i]);
    }
    printf("%-26s = %-40s # %s\n", "api_key", s.api_key ? "****" : "(none)",
           rc ? err : "OPTSNAP_API_KEY, api_key_file or $CREDENTIALS_DIRECTORY/api_key");
    settings_free(&s);
    return rc ? EXIT_USAGE : EXIT_OK;
}
