/* run_internal.h - the live driver's state, shared by run.c (sweeps, the
 * scheduler, maintenance, reload) and run_observe.c (metrics, readiness, the
 * status page's timeline, systemd). Not a public header. */
#ifndef OPTSNAP_RUN_INTERNAL_H
#define OPTSNAP_RUN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "optsnap/api/snapshot_parse.h"
#include "optsnap/config/settings.h"
#include "optsnap/db/retention.h"
#include "optsnap/ops/listener.h"
#include "optsnap/ops/metrics.h"
#include "optsnap/pipeline/engine.h"
#include "optsnap/pipeline/pager.h"
#include "optsnap/pipeline/schedule.h"
#include "optsnap/pipeline/timeline.h"

struct run;

struct underlying_state {
    char name[16];
    struct sweep *active;
    int64_t last_window_us; /* last window swept or known covered live: windows only move forward */
    int64_t first_window_us; /* first window the ledger has (any source), 0 = none: history begins there */
    bool retired;           /* dropped from the universe by a reload: no new sweeps */
    /* for /metrics and the status page */
    int64_t newest_us;      /* newest committed last_updated, 0 = none */
    int64_t last_covered_us, last_covered_real_us;
    double last_sweep_seconds;
    uint64_t rows_written, rows_rejected, sweeps_covered, sweeps_incomplete, errors;
    uint64_t rows_fetched, rows_partial, last_sweep_rows, last_sweep_rejected;
    int timeframe;          /* enum snap_timeframe of the last page's data, 0 = unknown */
    /* the API refused this underlying for good (401 key, 403 plan): why, and when (real) */
    char refusal[200];
    int64_t refused_real_us;
    struct timeline timeline;
    /* the live lease (run_leases.c) */
    bool held;              /* the last heartbeat listed it as ours */
    bool claimed_now;       /* claimed by the last heartbeat: swept at once */
    bool releasing;         /* handed back by the heartbeat in flight */
    bool release_again;     /* a failed heartbeat did not hand it back */
    int64_t epoch;          /* the fencing token our marks carry */
    int64_t lease_since_us; /* when our epoch began (the database's clock) */
    uint64_t lease_gen, lease_claims;
};

struct sweep {
    struct run *r;
    struct underlying_state *u;
    struct engine_group g;  /* first: the engine hands it back */
    struct pager pager;
    int64_t window_start_us, window_end_us;
    int64_t started_real_us;
    long rows_fetched, rows_rejected;
    int pages;
    bool skewed;            /* a page's Date disagreed with our clock */
};

/* A clock we compare ours with: the API's (Date headers) or the database's (now()). */
struct clock_peer {
    const char *name;
    int64_t skew_us;        /* theirs - ours, last measured */
    bool known, bad;
};

struct run {
    struct engine *e;
    struct settings *s;
    int argc;
    char **argv;
    struct market_clock clock;
    struct session_set sessions;
    struct underlying_state **us; /* sorted by name; each malloc'd (sweeps point at them across reloads) */
    size_t nus, us_cap;
    char *universe_array;         /* "{SPY,QQQ}" for = ANY($n) */

    uv_timer_t tick_timer, stats_timer, run_for_timer, watchdog_timer, timeline_timer;
    int live_sweeps;
    int windows_scheduled;
    bool last_window_scheduled;   /* max_sweeps reached: finish, then drain */
    uint64_t sweeps_started, sweeps_covered, sweeps_incomplete, sweeps_overrun, sweeps_refused;
    uint64_t api_refused_key, api_refused_plan;
    double last_sweep_seconds;
    int64_t started_real_us;

    /* maintenance: partitions and the calendar, through the pool */
    struct engine_query maint;
    char maint_params[4][40];
    const char *maint_values[4];
    int32_t maintained_day;
    bool maint_due;
    int maint_failures;
    int64_t maint_not_before_us;
    int64_t sessions_from_us, sessions_to_us;
    /* retention (db/retention.h), daily with the maintenance */
    struct engine_query retention_q;
    struct retention_job retention_job;
    bool retention_due;
    uint64_t retention_days_dropped;

    /* clocks */
    struct clock_peer api_clock, db_clock;
    struct engine_query clock_q;
    int64_t clock_sent_us;

    /* the status page's timeline */
    struct engine_query timeline_q;
    char timeline_params[3][40];
    const char *timeline_values[4];
    int64_t timeline_from_us, timeline_to_us;
    long uncovered_windows;

    /* live leases (run_leases.c); lease_ttl 0 = off */
    char holder[96];              /* "run:HOST:PID" */
    struct engine_query lease_q;
    const char *lease_values[4];
    char lease_ttl_text[24];
    char *release_array, *lease_universe;
    uv_timer_t lease_timer;
    int64_t lease_sent_real_us, lease_ok_sent_real_us;
    int live_daemons, lease_target;
    uint64_t lease_gen, lease_claims, lease_losses, lease_handbacks, lease_rebalances, lease_heartbeat_failures;
    char hostname[64];
    /* self-healing (run_heal.c): a child `optsnap repair` over what we hold */
    uv_process_t heal_proc;
    uv_timer_t heal_timer;
    bool heal_running;
    int64_t heal_due_real_us;
    char heal_holder[128];         /* the child's history-lease holder: its marks carry it */
    struct engine_query heal_q;
    const char *heal_values[1];
    long long heal_last_windows;
    uint64_t heal_runs, heal_failures, heal_windows;
    unsigned heal_fail_streak;      /* failed passes in a row: the retry backs off */
    bool ticking;                 /* the scheduler runs (with leases: after the first heartbeat) */

    struct snapshot_page page; /* parser scratch, reused for every page */
    struct listener *listener;
    struct metrics_underlying *mu; /* [nus], rebuilt for each snapshot */
    const struct coverage_span **tl;
    size_t *tln;
    bool ready_sent;
    char last_stats[256];
};

int64_t run_real_now(void);
char *run_names(const struct run *r, bool (*keep)(const struct underlying_state *u), bool array);
/* run_names as a text[] literal into *slot (the old one freed): 0, or -1 out of memory. */
int run_names_replace(const struct run *r, bool (*keep)(const struct underlying_state *u), char **slot)
    __attribute__((warn_unused_result));
struct underlying_state *run_underlying_find(struct run *r, const char *name); /* NULL if not in the universe */
int64_t run_market_now(const struct run *r);

/* run_observe.c */
int run_observe_start(struct run *r);      /* timers, listener; 0 or -1 */
void run_observe_closing(struct run *r);   /* the listener's close */
void run_observe_free(struct run *r);
void run_stats_line(struct run *r);        /* the final log line */
/* A sample of a peer's clock: theirs_us read at ours_us, give or take unc_us
 * (half the round trip). Flags the peer when the skew is surely over
 * max_clock_skew, clears it when surely within; logs each change. */
void run_clock_check(struct run *r, struct clock_peer *peer, int64_t theirs_us, int64_t ours_us, int64_t unc_us);
bool run_clocks_agree(const struct run *r);
void run_notify_ready_once(struct run *r);

/* run_leases.c */
int run_leases_init(struct run *r);        /* the holder name and the timer; 0 or -1 */
void run_leases_start(struct run *r);      /* first heartbeat now, then every ttl/3 */
void run_leases_stop(struct run *r);
bool run_leases_busy(const struct run *r);
size_t run_leases_held(const struct run *r);
void run_leases_release_all(struct run *r); /* after the loop; blocking, bounded */
bool run_lease_allows(const struct run *r, const struct underlying_state *u);
const char *run_lease_holder(const struct run *r); /* NULL when leases are off */
/* run_heal.c */
int run_heal_init(struct run *r);
void run_heal_start(struct run *r);   /* with leases and heal_lookback > 0 */
void run_heal_soon(struct run *r);    /* a takeover: a pass two windows from now */
void run_heal_drain(struct run *r);   /* the child drains too */
void run_heal_closing(struct run *r); /* the child is killed */
bool run_heal_busy(const struct run *r);

/* run.c: a heartbeat answered (or failed): start the scheduler, sweep what was claimed */
void run_leases_after_heartbeat(struct run *r);

#endif
