/* pgbinary.c - binary array encoding for unnest() bind parameters. */
#include "optsnap/db/pgbinary.h"

#include <stdlib.h>
#include <string.h>

static void store_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

void bytebuf_put_u32(struct bytebuf *b, uint32_t v)
{
    unsigned char *p = (unsigned char *)bytebuf_room(b, 4);
    if (p != NULL) {
        store_u32(p, v);
        b->len += 4;
    }
}

void bytebuf_put_u64(struct bytebuf *b, uint64_t v)
{
    unsigned char *p = (unsigned char *)bytebuf_room(b, 8);
    if (p != NULL) {
        store_u32(p, (uint32_t)(v >> 32));
        store_u32(p + 4, (uint32_t)v);
        b->len += 8;
    }
}

/* An element of 4 or 8 bytes: its length word and its value in one store. */
static void add_fixed4(struct pgarray *a, uint32_t v)
{
    unsigned char *p = (unsigned char *)bytebuf_room(a->buf, 8);
    if (p != NULL) {
        store_u32(p, 4);
        store_u32(p + 4, v);
        a->buf->len += 8;
    }
    a->count++;
}

static void add_fixed8(struct pgarray *a, uint64_t v)
{
    unsigned char *p = (unsigned char *)bytebuf_room(a->buf, 12);
    if (p != NULL) {
        store_u32(p, 8);
        store_u32(p + 4, (uint32_t)(v >> 32));
        store_u32(p + 8, (uint32_t)v);
        a->buf->len += 12;
    }
    a->count++;
}

uint32_t pgbinary_get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t pgbinary_get_u64(const unsigned char *p)
{
    return (uint64_t)pgbinary_get_u32(p) << 32 | pgbinary_get_u32(p + 4);
}

static void patch_u32(struct bytebuf *b, size_t at, uint32_t v)
{
    if (b->failed || at + 4 > b->len)
        return;
    store_u32((unsigned char *)b->data + at, v);
}

/* Header: ndim, has_null flag, element oid, then (dim length, lower bound). */
void pgarray_begin(struct pgarray *a, struct bytebuf *buf, uint32_t elem_oid)
{
    a->buf = buf;
    a->start = buf->len;
    a->count = 0;
    a->has_null = false;
    bytebuf_put_u32(buf, 1);
    bytebuf_put_u32(buf, 0);
    bytebuf_put_u32(buf, elem_oid);
    bytebuf_put_u32(buf, 0);
    bytebuf_put_u32(buf, 1);
}

void pgarray_add_null(struct pgarray *a)
{
    bytebuf_put_u32(a->buf, 0xFFFFFFFFu);
    a->has_null = true;
    a->count++;
}

void pgarray_add_text(struct pgarray *a, const char *s, size_t len)
{
    bytebuf_put_u32(a->buf, (uint32_t)len);
    bytebuf_append(a->buf, s, len);
    a->count++;
}

void pgarray_add_int4(struct pgarray *a, int32_t v) { add_fixed4(a, (uint32_t)v); }

void pgarray_add_int8(struct pgarray *a, int64_t v) { add_fixed8(a, (uint64_t)v); }

void pgarray_add_float8(struct pgarray *a, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    add_fixed8(a, bits);
}

void pgarray_add_date(struct pgarray *a, int32_t unix_days)
{
    pgarray_add_int4(a, unix_days - PG_EPOCH_OFFSET_DAYS);
}

void pgarray_add_timestamptz(struct pgarray *a, int64_t unix_us)
{
    pgarray_add_int8(a, unix_us - PG_EPOCH_OFFSET_US);
}

void pgarray_add_bool(struct pgarray *a, bool v)
{
    unsigned char b = v ? 1 : 0;
    bytebuf_put_u32(a->buf, 1);
    bytebuf_append(a->buf, &b, 1);
    a->count++;
}

void pgarray_add_jsonb(struct pgarray *a, const char *json, size_t len)
{
    unsigned char version = 1;
    bytebuf_put_u32(a->buf, (uint32_t)len + 1);
    bytebuf_append(a->buf, &version, 1);
    bytebuf_append(a->buf, json, len);
    a->count++;
}

size_t pgarray_end(struct pgarray *a)
{
    patch_u32(a->buf, a->start + 4, a->has_null ? 1 : 0);
    patch_u32(a->buf, a->start + 12, a->count);
    return a->start;
}
