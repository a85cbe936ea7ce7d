/* api_origin.h - the API's base URL, and whether a URL the API sent back
 * (next_url) stays on it: the key is sent as a header, so following a link
 * to another host would hand it over. Pure. */
#ifndef OPTSNAP_API_ORIGIN_H
#define OPTSNAP_API_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

struct api_origin {
    char base[512]; /* api_url without trailing '/' */
    size_t len;
};

/* Returns 0, or -1 when api_url is empty or too long. */
int api_origin_init(struct api_origin *o, const char *api_url) __attribute__((warn_unused_result));

/* True when url is base itself or a path under it ("base/..."), so
 * "https://api.example.com.evil/..." does not pass for "https://api.example.com". */
bool api_origin_owns(const struct api_origin *o, const char *url);

#endif
