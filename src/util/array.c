/* array.c - the one growth rule for optsnap's arrays. */
#include "optsnap/util/array.h"

#include <stdint.h>
#include <stdlib.h>

int array_reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return -1;
        nc *= 2;
    }
    if (elem != 0 && nc > SIZE_MAX / elem)
        return -1;
    void *na = realloc(*arr, nc * elem);
    if (na == NULL)
        return -1;
    *arr = na;
    *cap = nc;
    return 0;
}
