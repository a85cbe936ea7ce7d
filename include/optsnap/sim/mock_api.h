/* mock_api.h - `optsnap mock-api`: the simulated market served over HTTP, with
 * fault injection, a control endpoint and truth endpoints for tests.
 * The entry point is cmd_mock_api() (commands.h); this header holds the
 * pieces that tests may reuse. */
#ifndef OPTSNAP_MOCK_API_H
#define OPTSNAP_MOCK_API_H

#include <stdint.h>

#include "optsnap/commands.h"

/* "2026-11-02T14:30:00Z" (any timestamp_parse form) or a bare unix time in
 * microseconds. Returns 0 or -1. */
int mock_api_time_parse(const char *text, int64_t *out_us) __attribute__((warn_unused_result));

#endif
