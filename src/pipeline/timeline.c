/* timeline.c - coverage spans of one underlying for the status page. */
#include "optsnap/pipeline/timeline.h"

#include <stdbool.h>
#include <stdlib.h>

#include "optsnap/util/array.h"

void timeline_clear(struct timeline *t) { t->n = 0; }

void timeline_free(struct timeline *t)
{
    free(t->spans);
    t->spans = NULL;
    t->n = t->cap = 0;
}

void timeline_add(struct timeline *t, int64_t a, int64_t b, enum coverage_state st)
{
    if (b <= a)
        return;
    if (t->n > 0 && t->spans[t->n - 1].state == st && t->spans[t->n - 1].end_us == a) {
        t->spans[t->n - 1].end_us = b;
        return;
    }
    if (t->n >= STATUS_MAX_RECTS_PER_TIMELINE * 2 ||
        array_reserve((void **)&t->spans, &t->cap, t->n + 1, sizeof *t->spans) != 0)
        return;
    t->spans[t->n++] = (struct coverage_span){a, b, st};
}

long timeline_add_uncovered(struct timeline *t, const struct session_set *sessions, int64_t cadence_us, int64_t a,
                            int64_t b, int64_t now_us)
{
    long missing = 0;
    for (int64_t w = window_start_of(a, cadence_us); w < b; w += cadence_us) {
        int64_t lo = w < a ? a : w, hi = w + cadence_us > b ? b : w + cadence_us;
        bool open = session_set_expects(sessions, w, cadence_us) == 1;
        bool past = w + cadence_us <= now_us - cadence_us; /* the window in progress is not missing yet */
        timeline_add(t, lo, hi, open && past ? COVERAGE_MISSING : COVERAGE_CLOSED);
        if (open && past && lo == w)
            missing++;
    }
    return missing;
}
