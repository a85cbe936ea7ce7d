/* settings.c - the settings table and its sources: defaults, file, environment, flags. */
#include "optsnap/config/settings.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optsnap/util/log.h"
#include "optsnap/util/scrub.h"
#include "optsnap/util/timeutil.h"
#include "optsnap/util/url.h"

#define OFF(field) offsetof(struct settings, field)
#define STR(field) OFF(field), sizeof(((struct settings *)0)->field)
#define NUM(field) OFF(field), 0

const struct setting_desc settings_table[] = {
    {"api_url", SETTING_STRING, "https://api.massive.com", false, false, NULL, 0, 0, STR(api_url),
     "base URL of the market-data API (or of `optsnap mock-api`); https unless on loopback"},
    {"api_allowed_hosts", SETTING_STRING, "", false, false, NULL, 0, 0, STR(api_allowed_hosts),
     "more hosts (host or host:port, comma list) next_url may point to; the API's own alias hosts need no entry"},
    {"api_key_file", SETTING_STRING, "", false, false, NULL, 0, 0, STR(api_key_file),
     "file holding the API key (else OPTSNAP_API_KEY, else $CREDENTIALS_DIRECTORY/api_key)"},
    {"database_url", SETTING_STRING, "", false, true, NULL, 0, 0, STR(database_url),
     "libpq connection string or URL; empty = DATABASE_URL, else libpq's PG* variables"},
    {"universe", SETTING_STRING, "SPY", true, false, NULL, 0, 0, STR(universe),
     "underlyings to sweep: comma list, or @file with one per line"},
    {"cadence", SETTING_DURATION, "60s", true, false, NULL, 1000, 86400000000LL, NUM(cadence_us),
     "sweep window length; windows are aligned to the clock"},
    {"calendar", SETTING_ENUM, "us-options", true, false, "us-options|always", 0, 0, STR(calendar),
     "trading calendar: us-options sessions, or always open"},
    {"http_concurrency", SETTING_INT, "64", false, false, NULL, 1, 4096, NUM(http_concurrency),
     "HTTP requests in flight (the wide pool)"},
    {"http_rate", SETTING_DOUBLE, "0", false, false, NULL, 0, 100000, NUM(http_rate),
     "request starts per second, 0 = unlimited"},
    {"http_timeout", SETTING_DURATION, "30s", false, false, NULL, 1000, 600000000LL,
     NUM(http_timeout_us), "total time for one HTTP attempt"},
    {"http_connect_timeout", SETTING_DURATION, "5s", false, false, NULL, 1000, 600000000LL,
     NUM(http_connect_timeout_us), "TCP+TLS connect timeout"},
    {"http_max_inflight_bytes", SETTING_INT, "8388608", false, false, NULL, 1048576, 1073741824,
     NUM(http_max_inflight_bytes), "body bytes buffered over all HTTP transfers at once: a transfer that would go over it pauses until another ends (the oldest never does); one body may be 1/16 of it, a larger one fails its request"},
    {"http_max_attempts", SETTING_INT, "5", false, false, NULL, 1, 100, NUM(http_max_attempts),
     "tries per request, including the first"},
    {"page_limit", SETTING_INT, "250", true, false, NULL, 1, 250, NUM(page_limit),
     "contracts per snapshot page (the API's limit, max 250)"},
    {"max_pages", SETTING_INT, "1000", true, false, NULL, 1, 1000000, NUM(max_pages),
     "pages one paginated fetch may follow (a chain sweep, a listing, a contract's bars); beyond it the window stays uncovered"},
    {"db_connections", SETTING_INT, "4", false, false, NULL, 1, 256, NUM(db_connections),
     "PostgreSQL connections: the pool size IS the database concurrency"},
    {"batch_rows", SETTING_INT, "5000", true, false, NULL, 1, 1000000, NUM(batch_rows),
     "rows per upsert transaction"},
    {"batch_max_age", SETTING_DURATION, "1s", true, false, NULL, 1000, 600000000LL,
     NUM(batch_max_age_us), "a partial batch is written after this long"},
    {"queue_max_rows", SETTING_INT, "50000", false, false, NULL, 1, 100000000, NUM(queue_max_rows),
     "rows fetched but not yet committed; when reached, no new request starts"},
    {"skip_cache_entries", SETTING_INT, "1048576", false, false, NULL, 0, 268435456, NUM(skip_cache_entries),
     "slots of the fingerprint table that keeps unchanged rows from PostgreSQL (16 bytes each); 0 = off"},
    {"statement_timeout", SETTING_DURATION, "30s", true, false, NULL, 1000, 3600000000LL,
     NUM(statement_timeout_us), "per-transaction statement_timeout (SET LOCAL)"},
    {"listen", SETTING_STRING, "127.0.0.1:9187", false, false, NULL, 0, 0, STR(listen),
     "address of the metrics and status listener; empty = off"},
    {"listen_hosts", SETTING_STRING, "", false, false, NULL, 0, 0, STR(listen_hosts),
     "more Host header names (comma list, any port) /metrics and the status page answer to, besides loopback names and the listen host; others get 403 (DNS rebinding)"},
    {"shutdown_timeout", SETTING_DURATION, "30s", true, false, NULL, 0, 3600000000LL,
     NUM(shutdown_timeout_us), "on SIGTERM, give up draining after this long"},
    {"log_level", SETTING_ENUM, "info", true, false, "debug|info|warn|error", 0, 0, STR(log_level),
     "least severe level that is logged"},
    {"backfill_http_concurrency", SETTING_INT, "8", false, false, NULL, 1, 1024,
     NUM(backfill_http_concurrency), "HTTP requests in flight for backfill and repair"},
    {"backfill_db_connections", SETTING_INT, "2", false, false, NULL, 1, 64,
     NUM(backfill_db_connections), "PostgreSQL connections for backfill and repair"},
    {"retention", SETTING_DURATION, "0", true, false, NULL, 0, 3153600000000000LL, NUM(retention_us),
     "drop day partitions older than this (e.g. 400d) in the daemon's daily maintenance and `optsnap retention`; 0 = keep everything"},
    {"ca_file", SETTING_STRING, "", false, false, NULL, 0, 0, STR(ca_file),
     "CA bundle to verify the API's TLS certificate; empty = system default"},
    {"stats_interval", SETTING_DURATION, "10s", true, false, NULL, 100000, 3600000000LL,
     NUM(stats_interval_us), "how often pool statistics are checked (logged when changed); the status page's timeline refreshes every 3"},
    {"run_for", SETTING_DURATION, "0", false, false, NULL, 0, 9000000000000000000LL,
     NUM(run_for_us), "stop by itself after this long (0 = run until signalled); for tests and demos"},
    {"max_sweeps", SETTING_INT, "0", false, false, NULL, 0, 1000000000, NUM(max_sweeps),
     "stop after this many sweep windows (0 = no limit); for tests and benchmarks"},
    {"clock", SETTING_STRING, "wall", false, false, NULL, 0, 0, STR(clock),
     "market clock: wall, or T0[@unix_anchor] to replay/accelerate (tests, simulator)"},
    {"clock_speed", SETTING_DOUBLE, "1", false, false, NULL, 0, 100000, NUM(clock_speed),
     "market seconds per real second when clock is not wall"},
    {"max_clock_skew", SETTING_DURATION, "2s", true, false, NULL, 1000, 3600000000LL, NUM(max_clock_skew_us),
     "when our clock and the API's (Date) or the database's (now()) differ by more, run keeps fetching but marks no window covered"},
    {"lease_ttl", SETTING_DURATION, "15s", false, false, NULL, 0, 3600000000LL, NUM(lease_ttl_us),
     "run: each underlying is swept by the daemon holding its lease in PostgreSQL, renewed every ttl/3; "
     "several daemons split the universe; 0 = no leases (one daemon sweeps all, marks unfenced)"},
    {"heal_lookback", SETTING_DURATION, "1d", true, false, NULL, 0, 400LL * 86400000000LL, NUM(heal_lookback_us),
     "run: repairs its own gaps this far back for the underlyings it holds (a child `optsnap repair` on the "
     "backfill budget); 0 = off"},
    {"heal_interval", SETTING_DURATION, "5m", true, false, NULL, 1000000, 86400000000LL, NUM(heal_interval_us),
     "run: how often a heal pass runs (and two windows after a takeover)"},
    {"flatfiles_url", SETTING_STRING, "", false, false, NULL, 0, 0, STR(flatfiles_url),
     "S3 endpoint and bucket of the flat files (e.g. https://files.massive.com/flatfiles); empty = off"},
    {"flatfiles_access_key", SETTING_STRING, "", false, false, NULL, 0, 0, STR(flatfiles_access_key),
     "access key id of the flat-file S3 endpoint (its secret: OPTSNAP_FLATFILES_SECRET_KEY, else flatfiles_secret_key_file)"},
    {"flatfiles_secret_key_file", SETTING_STRING, "", false, false, NULL, 0, 0, STR(flatfiles_secret_key_file),
     "file holding the flat-file secret key (else OPTSNAP_FLATFILES_SECRET_KEY, else $CREDENTIALS_DIRECTORY/flatfiles_secret_key)"},
    {"flatfiles_region", SETTING_STRING, "us-east-1", false, false, NULL, 0, 0, STR(flatfiles_region),
     "region named in the flat files' SigV4 signature"},
    {"flatfiles_delay", SETTING_DURATION, "12h", false, false, NULL, 0, 30LL * 86400000000LL, NUM(flatfiles_delay_us),
     "a day's flat file is used once its day ended this long ago: repair takes whole past days from flat files when url and keys are set"},
    {"retry_max_backoff", SETTING_DURATION, "30s", true, false, NULL, 1000, 3600000000LL,
     NUM(retry_max_backoff_us), "cap on any retry wait (HTTP and database)"},
};
const size_t settings_count = sizeof settings_table / sizeof settings_table[0];

const char *setting_source_name(enum setting_source src)
{
    static const char *const names[] = {"default", "file", "env", "flag"};
    return names[src];
}

const struct setting_desc *settings_find(const char *name)
{
    for (size_t i = 0; i < settings_count; i++)
        if (strcmp(settings_table[i].name, name) == 0)
            return &settings_table[i];
    return NULL;
}

static int enum_allows(const char *values, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = values; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

static int parse_value(struct settings *s, const struct setting_desc *d, const char *value,
                       char *err, size_t err_size)
{
    char *base = (char *)s + d->offset;
    switch (d->type) {
    case SETTING_STRING:
    case SETTING_ENUM:
        if (strlen(value) >= d->size) {
            snprintf(err, err_size, "%s: value too long (max %zu bytes)", d->name, d->size - 1);
            return -1;
        }
        if (d->type == SETTING_ENUM && !enum_allows(d->enum_values, value)) {
            snprintf(err, err_size, "%s: '%s' is not one of %s", d->name, value, d->enum_values);
            return -1;
        }
        memcpy(base, value, strlen(value) + 1);
        return 0;
    case SETTING_INT: {
        errno = 0;
        char *end;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0') {
            snprintf(err, err_size, "%s: '%s' is not an integer", d->name, value);
            return -1;
        }
        if (v < d->min || v > d->max) {
            snprintf(err, err_size, "%s: %lld is out of range [%lld, %lld]", d->name, v, d->min,
                     d->max);
            return -1;
        }
        *(int *)(void *)base = (int)v;
        return 0;
    }
    case SETTING_DOUBLE: {
        errno = 0;
        char *end;
        double v = strtod(value, &end);
        if (errno || end == value || *end != '\0' || !isfinite(v)) {
            snprintf(err, err_size, "%s: '%s' is not a number", d->name, value);
            return -1;
        }
        if (v < (double)d->min || v > (double)d->max) {
            snprintf(err, err_size, "%s: %g is out of range [%lld, %lld]", d->name, v, d->min,
                     d->max);
            return -1;
        }
        *(double *)(void *)base = v;
        return 0;
    }
    case SETTING_DURATION: {
        int64_t us;
        if (duration_parse(value, &us)) {
            snprintf(err, err_size, "%s: '%s' is not a duration (e.g. 500ms, 60s, 5m, 2h, 7d)",
                     d->name, value);
            return -1;
        }
        if (us < d->min || us > d->max) {
            snprintf(err, err_size, "%s: '%s' is out of range", d->name, value);
            return -1;
        }
        *(int64_t *)(void *)base = us;
        return 0;
    }
    }
    return -1;
}

void settings_init(struct settings *s)
{
    memset(s, 0, sizeof *s);
    char err[256];
    for (size_t i = 0; i < settings_count; i++) {
        int rc = parse_value(s, &settings_table[i], settings_table[i].default_value, err, sizeof err);
        if (rc != 0) /* a broken default is a programming error, caught by test_settings */
            abort();
        s->source[i] = SOURCE_DEFAULT;
    }
}

/* The password of a connection string, as written: a URL's user:PASS@ (the
 * authority ends at the first '/', the password at the last '@', so a
 * malformed host still yields it) or a conninfo password=PASS word (quoted or
 * not). Sets *start and returns the length, 0 when there is none. */
static size_t conninfo_password(const char *ci, const char **start)
{
    const char *scheme = strstr(ci, "://");
    if (scheme) {
        const char *auth = scheme + 3;
        size_t end = strcspn(auth, "/?#");
        const char *at = NULL;
        for (size_t k = 0; k < end; k++)
            if (auth[k] == '@')
                at = auth + k;
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) {
            *start = colon + 1;
            return (size_t)(at - colon - 1);
        }
        const char *q = strstr(ci, "password=");
        if (q) {
            *start = q + 9;
            return strcspn(q + 9, "&#");
        }
        return 0;
    }
    for (const char *p = strstr(ci, "password"); p; p = strstr(p + 1, "password")) {
        if (p != ci && !isspace((unsigned char)p[-1]))
            continue;
        const char *v = p + 8;
        while (*v == ' ')
            v++;
        if (*v != '=')
            continue;
        v++;
        while (*v == ' ')
            v++;
        if (*v == '\'') {
            size_t n = 1;
            while (v[n] && v[n] != '\'') {
                if (v[n] == '\\' && v[n + 1])
                    n++;
                n++;
            }
            *start = v + 1;
            return n - 1;
        }
        *start = v;
        return strcspn(v, " \t\n");
    }
    return 0;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Registers the password of a connection string with the scrubber, as written
 * and percent-decoded, so no libpq error can print it. */
void settings_register_conninfo_secret(const char *ci)
{
    const char *pw = NULL;
    size_t n = conninfo_password(ci, &pw);
    if (n == 0)
        return;
    scrub_register_secret(pw, n);
    char dec[256];
    size_t o = 0;
    for (size_t k = 0; k < n && o + 1 < sizeof dec; k++) {
        int h1 = pw[k] == '%' && k + 2 < n ? hex_digit(pw[k + 1]) : -1;
        int h2 = h1 >= 0 ? hex_digit(pw[k + 2]) : -1;
        if (h1 >= 0 && h2 >= 0) {
            dec[o++] = (char)(h1 * 16 + h2);
            k += 2;
        } else {
            dec[o++] = pw[k];
        }
    }
    scrub_register_secret(dec, o);
}

/* The --database-url value whose password was blanked in argv, kept so a
 * SIGHUP re-read of the same argv sees the real value. */
static const char *argv_blanked_at;
static char argv_blanked_value[SETTING_STR_MAX];

/* Overwrites the password inside an argv string with '*' (so ps and
 * /proc/PID/cmdline do not show it), keeping a copy; warns once. */
const char *settings_hide_argv_password(char *arg_value)
{
    if (arg_value == argv_blanked_at)
        return argv_blanked_value;
    const char *pw = NULL;
    size_t n = conninfo_password(arg_value, &pw);
    if (n == 0 || strlen(arg_value) >= sizeof argv_blanked_value)
        return arg_value;
    snprintf(argv_blanked_value, sizeof argv_blanked_value, "%s", arg_value);
    settings_register_conninfo_secret(argv_blanked_value);
    memset(arg_value + (pw - arg_value), '*', n);
    argv_blanked_at = arg_value;
    log_warn("a database password was given on the command line (--database-url); hidden from ps, but "
             "use DATABASE_URL, a config file or ~/.pgpass instead",
             "%s", "");
    return argv_blanked_value;
}

int settings_set(struct settings *s, const char *name, const char *value, enum setting_source src,
                 const char *detail, char *err, size_t err_size)
{
    const struct setting_desc *d = settings_find(name);
    if (d == NULL) {
        snprintf(err, err_size, "unknown setting '%s'", name);
        return -1;
    }
    if (d->secret && value)
        settings_register_conninfo_secret(value);
    if (parse_value(s, d, value, err, err_size))
        return -1;
    size_t i = (size_t)(d - settings_table);
    s->source[i] = src;
    snprintf(s->source_detail[i], sizeof s->source_detail[i], "%s", detail ? detail : "");
    return 0;
}

static char *trim(char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    char *e = p + strlen(p);
    while (e > p && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return p;
}

int settings_load_file(struct settings *s, const char *path, bool optional, char *err,
                       size_t err_size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (optional && errno == ENOENT)
            return 0;
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[SETTING_STR_MAX + 128];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            snprintf(err, err_size, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        char *p = trim(line);
        if (*p == '\0' || *p == '#' || *p == ';')
            continue;
        char *eq = strchr(p, '=');
        if (eq == NULL) {
            snprintf(err, err_size, "%s:%d: expected 'key = value'", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(p), *value = trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = '\0';
            value++;
        }
        char detail[SETTING_STR_MAX / 4], inner[256];
        snprintf(detail, sizeof detail, "%.200s:%d", path, lineno);
        if (settings_set(s, key, value, SOURCE_FILE, detail, inner, sizeof inner)) {
            snprintf(err, err_size, "%s:%d: %s", path, lineno, inner);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, err_size, "%s: read error", path);
        rc = -1;
    }
    fclose(f);
    return rc;
}

int settings_load_env(struct settings *s, char **envp, char *err, size_t err_size)
{
    for (char **e = envp; e && *e; e++) {
        const char *kv = *e;
        if (strncmp(kv, "DATABASE_URL=", 13) == 0) {
            const struct setting_desc *d = settings_find("database_url");
            size_t i = (size_t)(d - settings_table);
            if (s->source[i] > SOURCE_ENV) /* a flag already set it */
                continue;
            if (settings_set(s, "database_url", kv + 13, SOURCE_ENV, "DATABASE_URL", err, err_size))
                return -1;
            continue;
        }
        if (strncmp(kv, "OPTSNAP_", 8) != 0)
            continue;
        const char *eq = strchr(kv, '=');
        if (eq == NULL)
            continue;
        char name[64];
        size_t n = (size_t)(eq - (kv + 8));
        if (n == 0 || n >= sizeof name)
            continue;
        for (size_t i = 0; i < n; i++)
            name[i] = (char)tolower((unsigned char)kv[8 + i]);
        name[n] = '\0';
        /* Variables that are not settings: the key itself, and test plumbing. */
        if (strcmp(name, "api_key") == 0 || strcmp(name, "flatfiles_secret_key") == 0 || strncmp(name, "test_", 5) == 0 ||
            strcmp(name, "bin") == 0 || strcmp(name, "fixtures") == 0 ||
            strcmp(name, "source_root") == 0 || strcmp(name, "config") == 0 ||
            strcmp(name, "heal_parent") == 0)
            continue;
        char detail[80];
        snprintf(detail, sizeof detail, "OPTSNAP_%.*s", (int)n, kv + 8);
        for (char *p = detail; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        if (settings_set(s, name, eq + 1, SOURCE_ENV, detail, err, err_size)) {
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%s: %s", detail, err);
            snprintf(err, err_size, "%s", tmp);
            return -1;
        }
    }
    return 0;
}

int settings_load_args(struct settings *s, int argc, char **argv, int *rest, int rest_cap,
                       int *nrest, char *err, size_t err_size)
{
    *nrest = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        char name[64];
        const char *value = NULL;
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            goto keep;
        }
        const char *eq = strchr(a + 2, '=');
        size_t n = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (n >= sizeof name)
            goto keep;
        for (size_t k = 0; k < n; k++)
            name[k] = a[2 + k] == '-' ? '_' : a[2 + k];
        name[n] = '\0';
        if (settings_find(name) == NULL)
            goto keep;
        char *raw;
        if (eq) {
            raw = a + (eq - a) + 1;
        } else {
            if (i + 1 >= argc) {
                snprintf(err, err_size, "%s needs a value", a);
                return -1;
            }
            raw = argv[++i];
        }
        value = strcmp(name, "database_url") == 0 ? settings_hide_argv_password(raw) : raw;
        char detail[80];
        snprintf(detail, sizeof detail, "--%.*s", (int)n, a + 2);
        if (settings_set(s, name, value, SOURCE_FLAG, detail, err, err_size))
            return -1;
        continue;
    keep:
        if (*nrest >= rest_cap) {
            snprintf(err, err_size, "too many arguments");
            return -1;
        }
        rest[(*nrest)++] = i;
    }
    return 0;
}

int settings_validate(const struct settings *s, char *err, size_t err_size)
{
    if (s->queue_max_rows < s->batch_rows) {
        snprintf(err, err_size, "queue_max_rows (%d) must be >= batch_rows (%d)", s->queue_max_rows,
                 s->batch_rows);
        return -1;
    }
    if (s->queue_max_rows < s->page_limit) {
        snprintf(err, err_size, "queue_max_rows (%d) must be >= page_limit (%d)", s->queue_max_rows,
                 s->page_limit);
        return -1;
    }
    if (strncmp(s->api_url, "http://", 7) != 0 && strncmp(s->api_url, "https://", 8) != 0) {
        snprintf(err, err_size, "api_url: '%s' must start with http:// or https://", s->api_url);
        return -1;
    }
    if (strchr(s->api_url, '?') != NULL || strchr(s->api_url, '#') != NULL) {
        snprintf(err, err_size, "api_url: must not carry a query string (the key goes in a header)");
        return -1;
    }
    struct url_parts u;
    if (url_split(s->api_url, &u)) {
        snprintf(err, err_size, "api_url: '%.200s' is not a plain http(s) URL (no userinfo, a valid host)",
                 s->api_url);
        return -1;
    }
    if (!u.https && !url_host_is_loopback(u.host)) {
        snprintf(err, err_size, "api_url: plain http only on loopback hosts (the key would cross the network in clear)");
        return -1;
    }
    const char *cur = s->api_allowed_hosts, *t;
    for (size_t n; (n = url_list_next(&cur, &t)) > 0;) {
        char host[URL_HOST_MAX];
        int port;
        if (url_host_port_parse(t, n, host, &port)) {
            snprintf(err, err_size, "api_allowed_hosts: '%.*s' is not host or host:port", (int)(n > 80 ? 80 : n), t);
            return -1;
        }
    }
    return 0;
}

void settings_mask_conninfo(const char *in, char *out, size_t size)
{
    if (size == 0)
        return;
    out[0] = '\0';
    if (in == NULL)
        return;
    const char *scheme = strstr(in, "://");
    if (scheme != NULL) {
        /* URL: scheme://user:password@host... */
        const char *auth = scheme + 3;
        const char *at = strchr(auth, '@');
        const char *slash = strchr(auth, '/');
        const char *colon = strchr(auth, ':');
        if (at && (!slash || at < slash) && colon && colon < at) {
            snprintf(out, size, "%.*s:****%s", (int)(colon - in), in, at);
        } else {
            snprintf(out, size, "%s", in);
        }
        /* a password=... query parameter */
        char *pw = strstr(out, "password=");
        if (pw) {
            char *end = strchr(pw, '&');
            char tail[SETTING_STR_MAX];
            snprintf(tail, sizeof tail, "%s", end ? end : "");
            snprintf(pw, size - (size_t)(pw - out), "password=****%s", tail);
        }
        return;
    }
    /* key=value conninfo: mask the value of password= */
    const char *pw = strstr(in, "password");
    if (pw == NULL) {
        snprintf(out, size, "%s", in);
        return;
    }
    const char *p = pw + 8;
    while (*p == ' ')
        p++;
    if (*p != '=') {
        snprintf(out, size, "%s", in);
        return;
    }
    p++;
    while (*p == ' ')
        p++;
    const char *end = p;
    if (*end == '\'') {
        end++;
        while (*end && *end != '\'') {
            if (*end == '\\' && end[1])
                end++;
            end++;
        }
        if (*end)
            end++;
    } else {
        while (*end && *end != ' ')
            end++;
    }
    snprintf(out, size, "%.*s****%s", (int)(p - in), in, end);
}

void settings_format_value(const struct settings *s, size_t index, char *buf, size_t size)
{
    const struct setting_desc *d = &settings_table[index];
    const char *base = (const char *)s + d->offset;
    switch (d->type) {
    case SETTING_STRING:
    case SETTING_ENUM:
        if (d->secret)
            settings_mask_conninfo(base, buf, size);
        else
            snprintf(buf, size, "%s", base);
        break;
    case SETTING_INT:
        snprintf(buf, size, "%d", *(const int *)(const void *)base);
        break;
    case SETTING_DOUBLE:
        snprintf(buf, size, "%g", *(const double *)(const void *)base);
        break;
    case SETTING_DURATION: {
        int64_t us = *(const int64_t *)(const void *)base;
        if (us % USEC_PER_SEC == 0)
            snprintf(buf, size, "%llds", (long long)(us / USEC_PER_SEC));
        else if (us % 1000 == 0)
            snprintf(buf, size, "%lldms", (long long)(us / 1000));
        else
            snprintf(buf, size, "%lldus", (long long)us);
        break;
    }
    }
}

/* "SPY", "BRK.B", or an index as the API spells it: "I:SPX". */
static int valid_underlying(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n >= sizeof((struct universe_entry *)0)->underlying)
        return 0;
    size_t i = 0;
    if (t[0] == 'I' && t[1] == ':') {
        if (n == 2)
            return 0;
        i = 2;
    }
    for (; i < n; i++)
        if (!(isupper((unsigned char)t[i]) || isdigit((unsigned char)t[i]) || t[i] == '.'))
            return 0;
    return 1;
}

/* The universe as it is read: entries in first-seen order and an open-addressing
 * set of their indexes, so de-duplication is linear (65,000 names took 20 s
 * with a scan per name, on the loop at SIGHUP). */
struct universe_build {
    struct universe_entry *arr;
    int n, cap;
    int32_t *slots; /* index into arr, -1 = empty; nslots is a power of two >= 2 * cap */
    size_t nslots;
};

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Copies tok for an error message: at most 40 bytes, control bytes as '?', so
 * a hostile entry cannot put a newline into a log line. */
static const char *printable(char *buf, size_t size, const char *tok)
{
    size_t o = 0;
    for (; *tok && o + 1 < size && o < 40; tok++)
        buf[o++] = ((unsigned char)*tok < 0x20 || *tok == 0x7f) ? '?' : *tok;
    buf[o] = '\0';
    return buf;
}

static int universe_grow(struct universe_build *b, char *err, size_t err_size)
{
    int nc = b->cap ? b->cap * 2 : 16;
    if (nc > SETTINGS_UNIVERSE_MAX)
        nc = SETTINGS_UNIVERSE_MAX;
    struct universe_entry *na = realloc(b->arr, (size_t)nc * sizeof *na);
    size_t ns = 32;
    while (ns < 2 * (size_t)nc)
        ns *= 2;
    int32_t *slots = na ? malloc(ns * sizeof *slots) : NULL;
    if (na)
        b->arr = na;
    if (slots == NULL) {
        snprintf(err, err_size, "universe: out of memory");
        return -1;
    }
    for (size_t i = 0; i < ns; i++)
        slots[i] = -1;
    for (int i = 0; i < b->n; i++) {
        size_t k = name_hash(b->arr[i].underlying) & (ns - 1);
        while (slots[k] >= 0)
            k = (k + 1) & (ns - 1);
        slots[k] = i;
    }
    free(b->slots);
    b->slots = slots;
    b->nslots = ns;
    b->cap = nc;
    return 0;
}

static int universe_add(struct universe_build *b, const char *tok, char *err, size_t err_size,
                        const char *where)
{
    char shown[48];
    if (!valid_underlying(tok)) {
        snprintf(err, err_size, "universe%s: '%s' is not an underlying ticker (A-Z, 0-9, '.'; indexes as I:SPX)",
                 where, printable(shown, sizeof shown, tok));
        return -1;
    }
    size_t k = 0;
    if (b->nslots) {
        k = name_hash(tok) & (b->nslots - 1);
        for (; b->slots[k] >= 0; k = (k + 1) & (b->nslots - 1))
            if (strcmp(b->arr[b->slots[k]].underlying, tok) == 0)
                return 0; /* duplicates are harmless; keep the first */
    }
    if (b->n == SETTINGS_UNIVERSE_MAX) {
        snprintf(err, err_size, "universe: more than %d underlyings", SETTINGS_UNIVERSE_MAX);
        return -1;
    }
    if (b->n == b->cap) {
        if (universe_grow(b, err, err_size))
            return -1;
        k = name_hash(tok) & (b->nslots - 1);
        while (b->slots[k] >= 0)
            k = (k + 1) & (b->nslots - 1);
    }
    snprintf(b->arr[b->n].underlying, sizeof b->arr->underlying, "%s", tok);
    b->slots[k] = b->n++;
    return 0;
}

int settings_load_universe(const struct settings *s, struct universe_entry **out, char *err,
                           size_t err_size)
{
    struct universe_build b = {0};
    if (s->universe[0] == '@') {
        const char *path = s->universe + 1;
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            snprintf(err, err_size, "universe: %s: %s", path, strerror(errno));
            return -1;
        }
        char line[256];
        int lineno = 0;
        while (fgets(line, sizeof line, f)) {
            lineno++;
            char *hash = strchr(line, '#');
            if (hash)
                *hash = '\0';
            char *t = trim(line);
            if (*t == '\0')
                continue;
            char where[300];
            snprintf(where, sizeof where, " (%.200s:%d)", path, lineno);
            if (universe_add(&b, t, err, err_size, where)) {
                fclose(f);
                free(b.arr);
                free(b.slots);
                return -1;
            }
        }
        fclose(f);
    } else {
        char buf[SETTING_STR_MAX];
        snprintf(buf, sizeof buf, "%s", s->universe);
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *t = trim(tok);
            if (*t == '\0')
                continue;
            if (universe_add(&b, t, err, err_size, "")) {
                free(b.arr);
                free(b.slots);
                return -1;
            }
        }
    }
    free(b.slots);
    if (b.n == 0) {
        snprintf(err, err_size, "universe: empty");
        free(b.arr);
        return -1;
    }
    *out = b.arr;
    return b.n;
}

static int read_key_file(const char *path, char **out, char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, err_size, "key file %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *k = trim(buf);
    if (*k == '\0') {
        snprintf(err, err_size, "key file %s: empty", path);
        return -1;
    }
    *out = strdup(k);
    return *out ? 0 : -1;
}

/* A secret: the environment variable, else the file setting, else the
 * systemd credential `cred_name`. *out stays NULL when none is set. */
static int load_secret(const char *env_name, const char *file, const char *cred_name, char **out, char *err,
                       size_t err_size)
{
    free(*out);
    *out = NULL;
    const char *env = getenv(env_name);
    if (env && *env) {
        *out = strdup(env);
        return *out ? 0 : -1;
    }
    if (file[0])
        return read_key_file(file, out, err, err_size);
    const char *cred = getenv("CREDENTIALS_DIRECTORY");
    if (cred && *cred) {
        char path[SETTING_STR_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", cred, cred_name);
        FILE *probe = fopen(path, "r");
        if (probe) {
            fclose(probe);
            return read_key_file(path, out, err, err_size);
        }
    }
    return 0;
}

static int load_api_key(struct settings *s, char *err, size_t err_size)
{
    if (load_secret("OPTSNAP_API_KEY", s->api_key_file, "api_key", &s->api_key, err, err_size) != 0)
        return -1;
    return load_secret("OPTSNAP_FLATFILES_SECRET_KEY", s->flatfiles_secret_key_file, "flatfiles_secret_key",
                       &s->flatfiles_secret_key, err, err_size);
}

int settings_load_api_key(struct settings *s, char *err, size_t err_size)
{
    int rc = load_api_key(s, err, err_size);
    if (rc == 0 && s->api_key)
        scrub_register_secret(s->api_key, strlen(s->api_key));
    if (rc == 0 && s->flatfiles_secret_key)
        scrub_register_secret(s->flatfiles_secret_key, strlen(s->flatfiles_secret_key));
    return rc;
}

void settings_free(struct settings *s)
{
    free(s->api_key);
    s->api_key = NULL;
    free(s->flatfiles_secret_key);
    s->flatfiles_secret_key = NULL;
}

int settings_load_all(struct settings *s, int argc, char **argv, char **envp, int *rest,
                      int rest_cap, int *nrest, char *err, size_t err_size)
{
    settings_init(s);
    const char *path = "/etc/optsnap/optsnap.conf";
    bool optional = true;
    const char *env_path = getenv("OPTSNAP_CONFIG");
    if (env_path && *env_path) {
        path = env_path;
        optional = false;
    }
    /* --config is found first: the file is the lowest-priority source after defaults. */
    int nargs = 1;
    char **args = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (args == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    args[0] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                snprintf(err, err_size, "--config needs a value");
                free(args);
                return -1;
            }
            path = argv[++i];
            optional = false;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
            optional = false;
        } else {
            args[nargs++] = argv[i];
        }
    }
    int rc = settings_load_file(s, path, optional, err, err_size);
    if (rc == 0)
        rc = settings_load_env(s, envp, err, err_size);
    if (rc == 0) {
        int tmp_rest[256], ntmp = 0;
        rc = settings_load_args(s, nargs, args, tmp_rest, 256, &ntmp, err, err_size);
        /* map indexes in args back to argv */
        *nrest = 0;
        for (int k = 0; rc == 0 && k < ntmp; k++) {
            const char *want = args[tmp_rest[k]];
            for (int i = 1; i < argc; i++) {
                if (argv[i] == want) {
                    if (*nrest >= rest_cap) {
                        snprintf(err, err_size, "too many arguments");
                        rc = -1;
                        break;
                    }
                    rest[(*nrest)++] = i;
                    break;
                }
            }
        }
    }
    free(args);
    if (rc == 0)
        rc = settings_validate(s, err, err_size);
    if (rc == 0) {
        enum log_level lvl;
        if (log_level_parse(s->log_level, &lvl) == 0)
            log_set_level(lvl);
    }
    return rc;
}
