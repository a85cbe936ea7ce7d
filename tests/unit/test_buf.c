/* test_buf.c - the capped byte buffer: growth, the cap, printf, take. */
#include "optsnap/util/buf.h"
#include "test.h"

static void test_append_and_take(void)
{
    struct bytebuf b = {0};
    bytebuf_puts(&b, "abc");
    bytebuf_printf(&b, "-%d-%s", 42, "x");
    CHECK(!b.failed);
    size_t len;
    char *s = bytebuf_take(&b, &len);
    CHECK_STR(s, "abc-42-x");
    CHECK_INT(len, 8);
    CHECK(b.data == NULL);
    free(s);
}

static void test_cap_fails_and_sticks(void)
{
    struct bytebuf b;
    bytebuf_init(&b, 10);
    bytebuf_append(&b, "123456789", 9);
    CHECK(!b.failed);
    bytebuf_append(&b, "AB", 2); /* 11 > 10 */
    CHECK(b.failed);
    bytebuf_append(&b, "C", 1); /* ignored after a failure */
    CHECK_INT(b.len, 9);
    size_t len = 99;
    CHECK(bytebuf_take(&b, &len) == NULL);
    CHECK_INT(len, 0);
    CHECK_INT(b.limit, 10); /* kept for reuse */
}

static void test_long_printf(void)
{
    struct bytebuf b = {0};
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    bytebuf_printf(&b, "<%s>", big);
    CHECK_INT(b.len, 1001);
    CHECK(b.data[0] == '<' && b.data[1000] == '>');
    struct bytebuf c;
    bytebuf_init(&c, 100);
    bytebuf_printf(&c, "%s", big);
    CHECK(c.failed);
    bytebuf_free(&b);
    bytebuf_free(&c);
}

static void test_reset_keeps_capacity(void)
{
    struct bytebuf b = {0};
    bytebuf_append(&b, "hello", 5);
    size_t cap = b.cap;
    bytebuf_reset(&b);
    CHECK_INT(b.len, 0);
    CHECK_INT(b.cap, cap);
    bytebuf_free(&b);
}

int main(void)
{
    RUN(test_append_and_take);
    RUN(test_cap_fails_and_sticks);
    RUN(test_long_printf);
    RUN(test_reset_keeps_capacity);
    TEST_EXIT();
}
