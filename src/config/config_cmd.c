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

static int config_print(struct settings *s, void *unused)
{
    (void)unused;
    char err[512];
    int rc = settings_load_api_key(s, err, sizeof err);
    for (size_t i = 0; i < settings_count; i++) {
        char value[SETTING_STR_MAX];
        settings_format_value(s, i, value, sizeof value);
        printf("%-26s = %-40s # %s%s%s\n", settings_table[i].name, value,
               setting_source_name(s->source[i]), s->source_detail[i][0] ? " " : "",
               s->source_detail[i]);
    }
    printf("%-26s = %-40s # %s\n", "api_key", s->api_key ? "****" : "(none)",
           rc ? err : "OPTSNAP_API_KEY, api_key_file or $CREDENTIALS_DIRECTORY/api_key");
    return rc ? EXIT_USAGE : EXIT_OK;
}

int cmd_config(int argc, char **argv)
{
    const struct cli_command c = {"config", config_usage, NULL, 0, false};
    return cli_command_run(&c, argc, argv, config_print, NULL);
}
