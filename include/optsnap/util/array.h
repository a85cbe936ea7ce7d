/* array.h - growable arrays: one reserve for every array optsnap grows. Pure. */
#ifndef OPTSNAP_ARRAY_H
#define OPTSNAP_ARRAY_H

#include <stddef.h>

/* Makes *arr (elements of `elem` bytes, capacity *cap) hold at least `need`
 * elements, doubling from 64. On failure (out of memory, size overflow) returns
 * -1 and leaves *arr and *cap as they were; the caller still owns *arr. */
int array_reserve(void **arr, size_t *cap, size_t need, size_t elem) __attribute__((warn_unused_result));

#endif
