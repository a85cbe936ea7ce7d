/* clock_shim.c - LD_PRELOAD shim for tests: the wall clock (CLOCK_REALTIME
 * and its coarse variant, gettimeofday, time) shifted by a signed number of
 * microseconds read from the file named by CLOCK_SHIM_OFFSET_FILE (read
 * again at most every 20 ms of monotonic time; missing or empty file = 0).
 * The monotonic clocks are left alone, as a real clock step leaves them.
 * Test-only: tests/e2e/clock_step_test.sh steps a daemon's clock with it. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static _Atomic(clock_gettime_fn) real_clock_gettime;
static _Atomic long long offset_us;
static _Atomic long long next_read_ns;

static clock_gettime_fn real_fn(void)
{
    clock_gettime_fn f = atomic_load(&real_clock_gettime);
    if (f == NULL) {
        /* POSIX lets a function pointer travel through dlsym's void * */
        void *sym = dlsym(RTLD_NEXT, "clock_gettime");
        *(void **)&f = sym;
        atomic_store(&real_clock_gettime, f);
    }
    return f;
}

static long long current_offset_us(void)
{
    struct timespec m;
    if (real_fn()(CLOCK_MONOTONIC, &m) != 0)
        return atomic_load(&offset_us);
    long long now = (long long)m.tv_sec * 1000000000LL + m.tv_nsec;
    if (now >= atomic_load(&next_read_ns)) {
        atomic_store(&next_read_ns, now + 20000000LL);
        const char *path = getenv("CLOCK_SHIM_OFFSET_FILE");
        int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd >= 0) {
            char buf[32];
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            buf[n > 0 ? n : 0] = '\0';
            atomic_store(&offset_us, n > 0 ? strtoll(buf, NULL, 10) : 0);
        }
    }
    return atomic_load(&offset_us);
}

static void shift(struct timespec *ts)
{
    long long off = current_offset_us();
    long long ns = (long long)ts->tv_nsec + (off % 1000000) * 1000;
    long long s = (long long)ts->tv_sec + off / 1000000;
    while (ns < 0) {
        ns += 1000000000LL;
        s--;
    }
    while (ns >= 1000000000LL) {
        ns -= 1000000000LL;
        s++;
    }
    ts->tv_sec = (time_t)s;
    ts->tv_nsec = (long)ns;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    int rc = real_fn()(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        shift(ts);
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void)tz;
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

time_t time(time_t *out)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (time_t)-1;
    if (out)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
