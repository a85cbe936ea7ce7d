/* json_arena.h - cJSON's allocator for the process: blocks bumped from one
 * fixed chunk, the chunk rewound whenever every block it handed out has been
 * freed. cJSON mallocs every node and string of a tree and frees them one by
 * one; a 250-row chain page is ~25,000 of each, a quarter of optsnap's parse
 * CPU (notes/performance.md). The process is one thread and every tree lives
 * for one page, so the chunk rewinds after each. A block that does not fit
 * comes from malloc. Pure.
 *
 * The rule it relies on is cJSON's own: what cJSON allocated (trees, printed
 * text) is released with cJSON_Delete / cJSON_free, never free(). Under
 * AddressSanitizer a free() of such a block is reported, and freed blocks
 * are poisoned, so a use after free is still caught. */
#ifndef OPTSNAP_JSON_ARENA_H
#define OPTSNAP_JSON_ARENA_H

#include <stddef.h>

struct json_arena_stats {
    size_t chunk_bytes;  /* the chunk's size, 0 = not installed */
    size_t used_bytes;   /* bumped since the last rewind */
    size_t live_blocks;  /* handed out from the chunk, not yet freed */
    size_t rewinds;      /* times every block was freed and the chunk reused */
    size_t fallbacks;    /* blocks that did not fit and came from malloc */
};

/* Installs the arena as cJSON's allocator with a chunk of `bytes` (rounded
 * to 16). Call once, before any cJSON use; 0, or -1 when the chunk cannot be
 * allocated (cJSON then keeps malloc). */
int json_arena_install(size_t bytes);
void json_arena_get_stats(struct json_arena_stats *out);

#endif
