/* names.c - a list of names as a comma list or a text[] literal. */
#include "optsnap/util/names.h"

#include <stdlib.h>

#include "optsnap/util/buf.h"

char *names_join(const void *items, size_t n, names_at_fn name_at, bool array)
{
    struct bytebuf b = {0};
    bool first = true;
    if (array)
        bytebuf_puts(&b, "{");
    for (size_t i = 0; i < n; i++) {
        const char *name = name_at(items, i);
        if (name == NULL)
            continue;
        if (!first)
            bytebuf_puts(&b, ",");
        first = false;
        if (!array) {
            bytebuf_puts(&b, name);
            continue;
        }
        bytebuf_puts(&b, "\"");
        for (const char *p = name; *p; p++) {
            if (*p == '"' || *p == '\\')
                bytebuf_puts(&b, "\\");
            bytebuf_append(&b, p, 1);
        }
        bytebuf_puts(&b, "\"");
    }
    if (array)
        bytebuf_puts(&b, "}");
    return bytebuf_take(&b, NULL);
}

int names_array_replace(char **slot, const void *items, size_t n, names_at_fn name_at)
{
    char *s = names_join(items, n, name_at, true);
    if (s == NULL)
        return -1;
    free(*slot);
    *slot = s;
    return 0;
}
