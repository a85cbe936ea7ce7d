/* buf.h - the one growable byte buffer, with a size cap (curl's dynbuf is the
 * model). Pure. */
#ifndef OPTSNAP_BUF_H
#define OPTSNAP_BUF_H

#include <stdbool.h>
#include <stddef.h>

/* Zero-initialised it is empty and capped at BYTEBUF_DEFAULT_LIMIT. A grow
 * past `limit` or a failed allocation sets `failed`, and later appends are
 * ignored, so callers check once at the end. Owns data: bytebuf_free. */
struct bytebuf {
    char *data;
    size_t len, cap;
    size_t limit; /* most bytes it may hold; 0 = BYTEBUF_DEFAULT_LIMIT */
    bool failed;
};

#define BYTEBUF_DEFAULT_LIMIT ((size_t)256 << 20)

void bytebuf_init(struct bytebuf *b, size_t limit);
void bytebuf_reset(struct bytebuf *b); /* len = 0, failed = false; keeps capacity and limit */
void bytebuf_free(struct bytebuf *b);  /* frees data; keeps the limit */
/* Makes room for `extra` more bytes. Returns false (and sets failed) past the
 * limit or when out of memory. */
bool bytebuf_reserve(struct bytebuf *b, size_t extra);
/* Where n more bytes go, to be written in place and then counted (len += n):
 * the common case inline (room already there: the test is bytebuf_reserve's,
 * one spare byte for bytebuf_take's NUL, and cap never passes limit + 1),
 * else bytebuf_reserve grows or fails the buffer. NULL: failed. */
static inline char *bytebuf_room(struct bytebuf *b, size_t n)
{
    if (!b->failed && b->cap - b->len > n + 1)
        return b->data + b->len;
    return bytebuf_reserve(b, n) ? b->data + b->len : NULL;
}
void bytebuf_append(struct bytebuf *b, const void *p, size_t n);
void bytebuf_puts(struct bytebuf *b, const char *s);
/* printf-style append; a result past the limit fails the buffer. */
void bytebuf_printf(struct bytebuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands data over (NUL-terminated, *len without the NUL; NULL when failed or
 * empty-and-unallocated) and empties the buffer; the caller frees it. */
char *bytebuf_take(struct bytebuf *b, size_t *len);

#endif
