/* buf.c - the capped growable byte buffer. */
#include "optsnap/util/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t limit_of(const struct bytebuf *b) { return b->limit ? b->limit : BYTEBUF_DEFAULT_LIMIT; }

void bytebuf_init(struct bytebuf *b, size_t limit)
{
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

void bytebuf_reset(struct bytebuf *b)
{
    b->len = 0;
    b->failed = false;
}

void bytebuf_free(struct bytebuf *b)
{
    size_t limit = b->limit;
    free(b->data);
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

bool bytebuf_reserve(struct bytebuf *b, size_t extra)
{
    if (b->failed)
        return false;
    size_t limit = limit_of(b);
    /* one spare byte for the NUL that bytebuf_take adds */
    if (extra >= limit || b->len >= limit - extra) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < need)
        nc = nc > SIZE_MAX / 2 ? need : nc * 2;
    if (nc > limit + 1)
        nc = limit + 1;
    char *nd = realloc(b->data, nc);
    if (nd == NULL) {
        b->failed = true;
        return false;
    }
    b->data = nd;
    b->cap = nc;
    return true;
}

void bytebuf_append(struct bytebuf *b, const void *p, size_t n)
{
    char *at = bytebuf_room(b, n);
    if (at == NULL)
        return;
    if (n)
        memcpy(at, p, n);
    b->len += n;
}

void bytebuf_puts(struct bytebuf *b, const char *s) { bytebuf_append(b, s, strlen(s)); }

void bytebuf_printf(struct bytebuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        bytebuf_append(b, small, (size_t)n);
        return;
    }
    if (!bytebuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *bytebuf_take(struct bytebuf *b, size_t *len)
{
    char *d = NULL;
    size_t n = 0;
    if (!b->failed && bytebuf_reserve(b, 0)) {
        b->data[b->len] = '\0';
        d = b->data;
        n = b->len;
        b->data = NULL;
    }
    bytebuf_free(b);
    if (len)
        *len = n;
    return d;
}
