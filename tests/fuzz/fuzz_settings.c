/* fuzz_settings.c - libFuzzer harness for the config-file parser: the input
 * becomes an in-memory file (memfd, read through /proc/self/fd) that
 * settings_load_file reads over the defaults; then validation, formatting of
 * every value (secret masking), the universe list and the conninfo masker.
 * Built by scripts/fuzz.sh; tests/unit/test_fuzz_regressions.c includes it
 * with FUZZ_ENTRY renamed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "optsnap/util/log.h"
#include "optsnap/config/settings.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    log_set_level(LOG_LEVEL_OFF);
    int fd = memfd_create("fuzz_settings.conf", 0);
    if (fd < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            return 0;
        }
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    /* struct settings is large (~100 KiB): heap, not the fuzzer's stack. */
    struct settings *s = calloc(1, sizeof *s);
    if (s == NULL) {
        close(fd);
        return 0;
    }
    settings_init(s);
    char err[512];
    err[0] = '\0';
    int rc = settings_load_file(s, path, false, err, sizeof err);
    close(fd);
    if (rc != 0 && rc != -1)
        abort();
    if (rc == -1 && err[0] == '\0')
        abort();
    if (rc == 0) {
        err[0] = '\0';
        if (settings_validate(s, err, sizeof err) != 0 && err[0] == '\0')
            abort(); /* a rejection must say why */
        char value[SETTING_STR_MAX * 2];
        for (size_t i = 0; i < settings_count; i++) {
            memset(value, 'x', sizeof value);
            settings_format_value(s, i, value, sizeof value);
            if (memchr(value, '\0', sizeof value) == NULL)
                abort();
            char tiny[4];
            settings_format_value(s, i, tiny, sizeof tiny);
            if (memchr(tiny, '\0', sizeof tiny) == NULL)
                abort();
        }
        /* "@file" universes would make the fuzzer read arbitrary paths. */
        if (s->universe[0] != '@') {
            struct universe_entry *u = NULL;
            int n = settings_load_universe(s, &u, err, sizeof err);
            if (n < -1)
                abort();
            free(u);
        }
    }
    settings_free(s);
    free(s);

    /* The masker takes any text, e.g. a database_url from the environment. */
    char *text = malloc(size + 1);
    if (text != NULL) {
        if (size)
            memcpy(text, data, size);
        text[size] = '\0';
        char masked[256], tiny[3];
        settings_mask_conninfo(text, masked, sizeof masked);
        settings_mask_conninfo(text, tiny, sizeof tiny);
        if (memchr(masked, '\0', sizeof masked) == NULL || memchr(tiny, '\0', sizeof tiny) == NULL)
            abort();
        free(text);
    }
    return 0;
}
