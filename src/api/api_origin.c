/* api_origin.c - the API's base URL and the same-origin check for next_url. */
#include "optsnap/api/api_origin.h"

#include <string.h>

int api_origin_init(struct api_origin *o, const char *api_url)
{
    size_t n = strlen(api_url);
    while (n > 0 && api_url[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof o->base)
        return -1;
    memcpy(o->base, api_url, n);
    o->base[n] = '\0';
    o->len = n;
    return 0;
}

bool api_origin_owns(const struct api_origin *o, const char *url)
{
    return strncmp(url, o->base, o->len) == 0 && (url[o->len] == '/' || url[o->len] == '\0');
}
