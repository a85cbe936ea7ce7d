/* names.h - a list of names as one string: "A,B" (a setting's value) or a
 * PostgreSQL text[] literal {"A","B"} (each element quoted and escaped, so
 * no name can change the array's shape; bound as a parameter, never spliced
 * into SQL). Pure. */
#ifndef OPTSNAP_NAMES_H
#define OPTSNAP_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* The name of items' element i, or NULL to leave it out. */
typedef const char *(*names_at_fn)(const void *items, size_t i);

/* The names name_at gives for i in [0, n), joined with ','; inside braces,
 * quoted, when array is true. Returns a malloc'd string (the caller frees
 * it), or NULL when out of memory. */
char *names_join(const void *items, size_t n, names_at_fn name_at, bool array);

/* names_join as a text[] literal into *slot, the old string freed. Returns
 * 0, or -1 when out of memory (*slot kept). */
int names_array_replace(char **slot, const void *items, size_t n, names_at_fn name_at)
    __attribute__((warn_unused_result));

#endif
