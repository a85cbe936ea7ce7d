/* backoff.c - capped exponential backoff with full jitter (AWS architecture blog's "full jitter"). */
#include "optsnap/util/backoff.h"

#include <stdlib.h>

int64_t backoff_full_jitter_us(int attempt, int64_t base_us, int64_t cap_us)
{
    if (attempt < 0)
        attempt = 0;
    int64_t ceil = base_us;
    for (int i = 0; i < attempt && ceil < cap_us; i++)
        ceil *= 2;
    if (ceil > cap_us)
        ceil = cap_us;
    return (int64_t)((double)rand() / RAND_MAX * (double)ceil);
}
