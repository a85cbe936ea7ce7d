/* timeline.h - one underlying's coverage timeline for the status page, from
 * the covered islands of ingest_coverage and the trading sessions: windows
 * between islands are missing inside sessions (once they have ended) and
 * closed outside them. Pure. */
#ifndef OPTSNAP_TIMELINE_H
#define OPTSNAP_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include "optsnap/ops/metrics.h"
#include "optsnap/pipeline/schedule.h"

struct timeline {
    struct coverage_span *spans; /* malloc'd, oldest first */
    size_t n, cap;
};

void timeline_clear(struct timeline *t);
void timeline_free(struct timeline *t);

/* Appends [a, b) in state st, merging with the previous span when it
 * continues it. Spans beyond the status page's cap are dropped. */
void timeline_add(struct timeline *t, int64_t a, int64_t b, enum coverage_state st);

/* Appends the uncovered stretch [a, b): missing where a session expected a
 * window that ended before now - cadence, closed elsewhere. Returns how many
 * whole windows are missing. */
long timeline_add_uncovered(struct timeline *t, const struct session_set *sessions, int64_t cadence_us, int64_t a,
                            int64_t b, int64_t now_us);

#endif
