/* json_arena.c - cJSON's bump allocator, rewound when empty (json_arena.h). */
#include "optsnap/util/json_arena.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Each block carries its size in a 16-byte header (the alignment malloc
 * gives), so a freed block can be poisoned under ASan. */
#define HEADER 16
#define FREED SIZE_MAX /* the header of a freed block */

static struct {
    unsigned char *chunk;
    size_t size, used, live, rewinds, fallbacks;
} A;

static int in_chunk(const void *p)
{
    uintptr_t u = (uintptr_t)p, base = (uintptr_t)A.chunk;
    return A.chunk != NULL && u >= base && u < base + A.size;
}

static void *arena_malloc(size_t n)
{
    size_t need = (n + HEADER + 15) & ~(size_t)15;
    if (need > n && A.size - A.used >= need) {
        unsigned char *b = A.chunk + A.used;
        A.used += need;
        A.live++;
        UNPOISON(b, HEADER + n);
        *(size_t *)b = n;
        POISON(b, HEADER); /* the header is ours alone */
        return b + HEADER;
    }
    A.fallbacks++;
    return malloc(n);
}

static void arena_free(void *p)
{
    if (p == NULL)
        return;
    if (!in_chunk(p)) {
        free(p);
        return;
    }
    unsigned char *b = (unsigned char *)p - HEADER;
    UNPOISON(b, HEADER);
    size_t n = *(size_t *)b;
    if (n == FREED)
        abort(); /* a double free would rewind the chunk under live blocks */
    *(size_t *)b = FREED;
    POISON(b, HEADER + n);
    if (--A.live == 0) {
        A.used = 0;
        A.rewinds++;
    }
}

int json_arena_install(size_t bytes)
{
    if (A.chunk != NULL)
        return 0;
    size_t size = (bytes + 15) & ~(size_t)15;
    if (size < bytes || size == 0)
        return -1;
    A.chunk = malloc(size);
    if (A.chunk == NULL)
        return -1;
    A.size = size;
    POISON(A.chunk, size);
    cJSON_Hooks hooks = {.malloc_fn = arena_malloc, .free_fn = arena_free};
    cJSON_InitHooks(&hooks);
    return 0;
}

void json_arena_get_stats(struct json_arena_stats *out)
{
    out->chunk_bytes = A.size;
    out->used_bytes = A.used;
    out->live_blocks = A.live;
    out->rewinds = A.rewinds;
    out->fallbacks = A.fallbacks;
}
