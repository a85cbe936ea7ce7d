/* config_cmd.c - `optsnap config`: the effective configuration, its sources, secrets masked. */
#include <stdio.h>
#include <string.h>

#include "optsnap/commands.h"
#include "optsnap/config/cli.h"
#include "optsnap/config/settings.h"

static void config_usage(FILE *out)
{
    fprintf(out, "usage: optsnap config [--config FILE] [--<setting> VALUE ...]\n\n"
                 "Prints every setting's effective value and where it came from\n"
                 "(default, file:line, OPTSNAP_<KEY>, --flag). Secrets are masked.\n\nsettings:\n");
    cli_print_settings(out);
}

int cmd_config(int argc, char **argv)
{
    if (cli_help_asked(argc, argv)) {
        config_usage(stdout);
        return EXIT_OK;
    }
    struct settings s;
    char err[512];
    if (cli_load("config", argc, argv, &s, NULL, 0) != 0) {
        settings_free(&s);
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
