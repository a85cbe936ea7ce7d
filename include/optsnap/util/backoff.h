/* backoff.h - exponential backoff with full jitter and a cap, for every retry
 * optsnap makes of the database (HTTP retries live in the HTTP client). Pure. */
#ifndef OPTSNAP_BACKOFF_H
#define OPTSNAP_BACKOFF_H

#include <stdint.h>

/* random(0, min(cap, base * 2^attempt)) microseconds; attempt >= 0. Uses rand(). */
int64_t backoff_full_jitter_us(int attempt, int64_t base_us, int64_t cap_us);

#endif
