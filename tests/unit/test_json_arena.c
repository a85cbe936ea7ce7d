/* Unit tests for json_arena: cJSON's trees come from the chunk and the chunk
 * rewinds when the last block is freed; what does not fit comes from malloc
 * and goes back to free; printed text is released with cJSON_free. */
#include "optsnap/util/json_arena.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (64 * 1024)

static char *page_json(int rows)
{
    size_t cap = (size_t)rows * 96 + 64, n = 0;
    char *s = malloc(cap);
    if (s == NULL)
        return NULL;
    n += (size_t)snprintf(s + n, cap - n, "{\"status\":\"OK\",\"results\":[");
    for (int i = 0; i < rows; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s{\"t\":\"O:SPY261218C%08d\",\"p\":%d.25,\"v\":[1,2,3]}", i ? "," : "",
                              i, i);
    snprintf(s + n, cap - n, "]}");
    return s;
}

static void test_trees_rewind(void)
{
    CHECK_INT(json_arena_install(CHUNK), 0);
    CHECK_INT(json_arena_install(CHUNK), 0); /* once: a second call changes nothing */
    struct json_arena_stats st;
    json_arena_get_stats(&st);
    CHECK(st.chunk_bytes == CHUNK && st.live_blocks == 0);
    char *text = page_json(20);
    CHECK(text != NULL);
    size_t rewinds0 = st.rewinds;
    for (int k = 0; k < 3; k++) {
        cJSON *root = cJSON_Parse(text);
        CHECK(root != NULL);
        json_arena_get_stats(&st);
        CHECK(st.live_blocks > 100 && st.used_bytes > 0 && st.fallbacks == 0);
        const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "results"), 19);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "t")), "O:SPY261218C00000019");
        CHECK(cJSON_GetObjectItemCaseSensitive(r, "p")->valuedouble == 19.25);
        cJSON_Delete(root);
        json_arena_get_stats(&st);
        CHECK(st.live_blocks == 0 && st.used_bytes == 0);
    }
    CHECK(st.rewinds == rewinds0 + 3);
    free(text);
}

static void test_overflow_falls_back_to_malloc(void)
{
    /* far more nodes than the chunk holds: the rest from malloc, all freed */
    char *text = page_json(2000);
    CHECK(text != NULL);
    cJSON *root = cJSON_Parse(text);
    CHECK(root != NULL);
    struct json_arena_stats st;
    json_arena_get_stats(&st);
    CHECK(st.fallbacks > 0 && st.used_bytes <= st.chunk_bytes);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "results")), 2000);
    cJSON_Delete(root);
    json_arena_get_stats(&st);
    CHECK(st.live_blocks == 0 && st.used_bytes == 0);
    free(text);
}

static void test_long_lived_tree_keeps_the_chunk(void)
{
    /* a tree alive across others: no rewind under it, its values intact */
    cJSON *keep = cJSON_Parse("{\"keep\":\"me\"}");
    CHECK(keep != NULL);
    struct json_arena_stats st;
    json_arena_get_stats(&st);
    size_t rewinds0 = st.rewinds;
    for (int k = 0; k < 50; k++) {
        cJSON *t = cJSON_Parse("[1,2,3,{\"a\":\"b\"}]");
        CHECK(t != NULL);
        cJSON_Delete(t);
    }
    json_arena_get_stats(&st);
    CHECK(st.rewinds == rewinds0 && st.live_blocks > 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(keep, "keep")), "me");
    cJSON_Delete(keep);
    json_arena_get_stats(&st);
    CHECK(st.live_blocks == 0 && st.rewinds == rewinds0 + 1);
}

static void test_printed_text(void)
{
    cJSON *o = cJSON_CreateObject();
    CHECK(o != NULL && cJSON_AddNumberToObject(o, "n", 7) != NULL && cJSON_AddStringToObject(o, "s", "x\"y") != NULL);
    char *p = cJSON_PrintUnformatted(o);
    CHECK_STR(p, "{\"n\":7,\"s\":\"x\\\"y\"}");
    cJSON_Delete(o);
    cJSON_free(p);
    struct json_arena_stats st;
    json_arena_get_stats(&st);
    CHECK(st.live_blocks == 0);
}

int main(void)
{
    RUN(test_trees_rewind);
    RUN(test_overflow_falls_back_to_malloc);
    RUN(test_long_lived_tree_keeps_the_chunk);
    RUN(test_printed_text);
    TEST_EXIT();
}
