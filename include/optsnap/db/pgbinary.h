/* pgbinary.h - PostgreSQL binary wire formats for bind parameters: one-dimensional
 * arrays of text, bool, int4, int8, float8, date, timestamptz and jsonb. Pure: no libpq. */
#ifndef OPTSNAP_PGBINARY_H
#define OPTSNAP_PGBINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "optsnap/util/buf.h"

/* Type OIDs (pg_type.h); stable across PostgreSQL versions. */
#define PG_OID_BOOL 16
#define PG_OID_INT8 20
#define PG_OID_INT4 23
#define PG_OID_TEXT 25
#define PG_OID_FLOAT8 701
#define PG_OID_DATE 1082
#define PG_OID_TIMESTAMPTZ 1184
#define PG_OID_JSONB 3802
#define PG_OID_BOOL_ARRAY 1000
#define PG_OID_JSONB_ARRAY 3807
#define PG_OID_TEXT_ARRAY 1009
#define PG_OID_INT4_ARRAY 1007
#define PG_OID_INT8_ARRAY 1016
#define PG_OID_FLOAT8_ARRAY 1022
#define PG_OID_DATE_ARRAY 1182
#define PG_OID_TIMESTAMPTZ_ARRAY 1185

/* Unix epoch -> PostgreSQL epoch (2000-01-01). */
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)
#define PG_EPOCH_OFFSET_DAYS 10957

void bytebuf_put_u32(struct bytebuf *b, uint32_t v); /* network order */
void bytebuf_put_u64(struct bytebuf *b, uint64_t v);

/* An array under construction inside a bytebuf: begin, add n elements, end. */
struct pgarray {
    struct bytebuf *buf;
    size_t start;     /* offset of the array header in buf */
    uint32_t count;
    bool has_null;
};

void pgarray_begin(struct pgarray *a, struct bytebuf *buf, uint32_t elem_oid);
void pgarray_add_null(struct pgarray *a);
void pgarray_add_text(struct pgarray *a, const char *s, size_t len);
void pgarray_add_int4(struct pgarray *a, int32_t v);
void pgarray_add_int8(struct pgarray *a, int64_t v);
void pgarray_add_float8(struct pgarray *a, double v);
void pgarray_add_date(struct pgarray *a, int32_t unix_days);
void pgarray_add_timestamptz(struct pgarray *a, int64_t unix_us);
void pgarray_add_bool(struct pgarray *a, bool v);
/* json: valid JSON text of len bytes (the server checks it); sent in jsonb's
 * binary form, version 1 then the text. */
void pgarray_add_jsonb(struct pgarray *a, const char *json, size_t len);
/* Patches the header; returns the array's offset in buf (its length is buf->len - offset). */
size_t pgarray_end(struct pgarray *a);

/* Decoders used by tests. */
uint32_t pgbinary_get_u32(const unsigned char *p);
uint64_t pgbinary_get_u64(const unsigned char *p);

#endif
