/* Unit tests for the binary array encoder: exact bytes on the wire. */
#include "optsnap/db/pgbinary.h"
#include "test.h"

static void test_int8_array_bytes(void)
{
    struct bytebuf b = {0};
    struct pgarray a;
    pgarray_begin(&a, &b, PG_OID_INT8);
    pgarray_add_int8(&a, 1);
    pgarray_add_null(&a);
    pgarray_add_int8(&a, -2);
    size_t at = pgarray_end(&a);
    CHECK_INT(at, 0);
    const unsigned char *p = (const unsigned char *)b.data;
    CHECK_INT(b.len, 20 + 12 + 4 + 12);
    CHECK_INT(pgbinary_get_u32(p), 1);            /* ndim */
    CHECK_INT(pgbinary_get_u32(p + 4), 1);        /* has nulls */
    CHECK_INT(pgbinary_get_u32(p + 8), PG_OID_INT8);
    CHECK_INT(pgbinary_get_u32(p + 12), 3);       /* length */
    CHECK_INT(pgbinary_get_u32(p + 16), 1);       /* lower bound */
    CHECK_INT(pgbinary_get_u32(p + 20), 8);
    CHECK_INT((int64_t)pgbinary_get_u64(p + 24), 1);
    CHECK_INT(pgbinary_get_u32(p + 32), 0xFFFFFFFFu);
    CHECK_INT(pgbinary_get_u32(p + 36), 8);
    CHECK_INT((int64_t)pgbinary_get_u64(p + 40), -2);
    bytebuf_free(&b);
}

static void test_text_and_time(void)
{
    struct bytebuf b = {0};
    struct pgarray a;
    bytebuf_append(&b, "xx", 2); /* arrays need not start at 0 */
    pgarray_begin(&a, &b, PG_OID_TEXT);
    pgarray_add_text(&a, "abc", 3);
    CHECK_INT(pgarray_end(&a), 2);
    const unsigned char *p = (const unsigned char *)b.data + 2;
    CHECK_INT(pgbinary_get_u32(p + 4), 0); /* no nulls */
    CHECK_INT(pgbinary_get_u32(p + 20), 3);
    CHECK(memcmp(p + 24, "abc", 3) == 0);
    pgarray_begin(&a, &b, PG_OID_TIMESTAMPTZ);
    pgarray_add_timestamptz(&a, PG_EPOCH_OFFSET_US + 5);
    size_t at = pgarray_end(&a);
    CHECK_INT((int64_t)pgbinary_get_u64((const unsigned char *)b.data + at + 24), 5);
    pgarray_begin(&a, &b, PG_OID_DATE);
    pgarray_add_date(&a, PG_EPOCH_OFFSET_DAYS + 1);
    at = pgarray_end(&a);
    CHECK_INT(pgbinary_get_u32((const unsigned char *)b.data + at + 24), 1);
    pgarray_begin(&a, &b, PG_OID_FLOAT8);
    pgarray_add_float8(&a, 1.5);
    at = pgarray_end(&a);
    uint64_t bits = pgbinary_get_u64((const unsigned char *)b.data + at + 24);
    double d;
    memcpy(&d, &bits, sizeof d);
    CHECK_DBL(d, 1.5);
    CHECK(!b.failed);
    bytebuf_free(&b);
}

static void test_bool_and_jsonb(void)
{
    struct bytebuf b = {0};
    struct pgarray a;
    pgarray_begin(&a, &b, PG_OID_BOOL);
    pgarray_add_bool(&a, true);
    pgarray_add_bool(&a, false);
    size_t at = pgarray_end(&a);
    const unsigned char *p = (const unsigned char *)b.data + at;
    CHECK_INT(pgbinary_get_u32(p + 8), PG_OID_BOOL);
    CHECK_INT(pgbinary_get_u32(p + 12), 2);
    CHECK_INT(pgbinary_get_u32(p + 20), 1);
    CHECK_INT(p[24], 1);
    CHECK_INT(pgbinary_get_u32(p + 25), 1);
    CHECK_INT(p[29], 0);
    pgarray_begin(&a, &b, PG_OID_JSONB);
    pgarray_add_jsonb(&a, "[209]", 5);
    pgarray_add_null(&a);
    at = pgarray_end(&a);
    p = (const unsigned char *)b.data + at;
    CHECK_INT(pgbinary_get_u32(p + 4), 1);
    CHECK_INT(pgbinary_get_u32(p + 8), PG_OID_JSONB);
    CHECK_INT(pgbinary_get_u32(p + 20), 6); /* version byte + text */
    CHECK_INT(p[24], 1);
    CHECK(memcmp(p + 25, "[209]", 5) == 0);
    CHECK_INT(pgbinary_get_u32(p + 30), 0xFFFFFFFFu);
    CHECK(!b.failed);
    bytebuf_free(&b);
}

/* One array of every element kind. */
static void encode_mixed(struct bytebuf *b)
{
    struct pgarray a;
    pgarray_begin(&a, b, PG_OID_FLOAT8);
    for (int i = 0; i < 40; i++) {
        pgarray_add_float8(&a, i * 0.25);
        pgarray_add_int8(&a, -i);
        pgarray_add_int4(&a, i);
        pgarray_add_null(&a);
        pgarray_add_text(&a, "abcdefg", (size_t)(i % 8));
    }
    pgarray_end(&a);
}

/* The in-place path of the fixed-size elements agrees with bytebuf_reserve's
 * cap at every limit: a buffer that did not fail holds exactly the unlimited
 * encoding, below its limit; one that failed holds a prefix of it (appends
 * after the failure are ignored, nothing is written past the limit). */
static void test_limit_at_every_size(void)
{
    struct bytebuf ref = {0};
    encode_mixed(&ref);
    CHECK(!ref.failed);
    size_t ok = 0, failed = 0;
    for (size_t limit = 1; limit <= ref.len + 2; limit++) {
        struct bytebuf b;
        bytebuf_init(&b, limit);
        encode_mixed(&b);
        CHECK(b.len < limit);
        CHECK(b.cap <= limit + 1);
        if (b.failed) {
            failed++;
            CHECK(b.len < ref.len);
        } else {
            ok++;
            CHECK_INT(b.len, ref.len);
        }
        /* the header's has-null and count words are patched only when the
         * buffer did not fail: the rest must be the reference's bytes */
        int same = 1;
        for (size_t i = 0; i < b.len; i++)
            if (!((i >= 4 && i < 8) || (i >= 12 && i < 16)) || !b.failed)
                same = same && b.data[i] == ref.data[i];
        CHECK(same);
        bytebuf_free(&b);
    }
    CHECK_INT(ok, 2);           /* limits ref.len + 1 and + 2 */
    CHECK_INT(failed, ref.len); /* every smaller one */
    bytebuf_free(&ref);
}

int main(void)
{
    RUN(test_int8_array_bytes);
    RUN(test_text_and_time);
    RUN(test_bool_and_jsonb);
    RUN(test_limit_at_every_size);
    TEST_EXIT();
}
