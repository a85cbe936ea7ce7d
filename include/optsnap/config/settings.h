/* settings.h - the one table of settings: name, type, default, reloadable, doc.
 * Sources, lowest first: default < config file < OPTSNAP_<KEY> < --key-name flag.
 * Pure: no I/O library (reads files with stdio only). */
#ifndef OPTSNAP_SETTINGS_H
#define OPTSNAP_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum setting_type { SETTING_STRING, SETTING_INT, SETTING_DOUBLE, SETTING_DURATION, SETTING_ENUM };
enum setting_source { SOURCE_DEFAULT = 0, SOURCE_FILE, SOURCE_ENV, SOURCE_FLAG };

#define SETTING_STR_MAX 1024

struct settings {
    char api_url[SETTING_STR_MAX];
    char api_allowed_hosts[SETTING_STR_MAX];
    char api_key_file[SETTING_STR_MAX];
    char database_url[SETTING_STR_MAX];
    char universe[SETTING_STR_MAX];
    int64_t cadence_us;
    char calendar[32];
    int http_concurrency;
    double http_rate;
    int64_t http_timeout_us;
    int64_t http_connect_timeout_us;
    int http_max_attempts;
    int http_max_inflight_bytes;
    int page_limit;
    int max_pages;
    int db_connections;
    int batch_rows;
    int64_t batch_max_age_us;
    int queue_max_rows;
    int skip_cache_entries; /* 0 = off */
    int64_t statement_timeout_us;
    char listen[128];
    char listen_hosts[512];
    int64_t shutdown_timeout_us;
    int64_t retention_us; /* 0: off */
    char log_level[16];
    int backfill_http_concurrency;
    int backfill_db_connections;
    char ca_file[SETTING_STR_MAX];
    int64_t stats_interval_us;
    int64_t run_for_us;
    int max_sweeps;
    char clock[96];
    double clock_speed;
    int64_t retry_max_backoff_us;
    int64_t max_clock_skew_us;
    int64_t lease_ttl_us;
    int64_t heal_lookback_us;
    int64_t heal_interval_us;
    char flatfiles_url[SETTING_STR_MAX];
    char flatfiles_access_key[256];
    char flatfiles_secret_key_file[SETTING_STR_MAX];
    char flatfiles_region[64];
    int64_t flatfiles_delay_us;

    /* Not settings: where each came from, and the key once loaded. */
    enum setting_source source[64];
    char source_detail[64][SETTING_STR_MAX / 4]; /* "optsnap.conf:12", "OPTSNAP_CADENCE", "--cadence" */
    char *api_key;                               /* malloc'd; NULL when none; never printed */
    char *flatfiles_secret_key;                  /* the same, for the flat files' S3 endpoint */
};

struct setting_desc {
    const char *name;       /* canonical, underscores */
    enum setting_type type;
    const char *default_value;
    bool reloadable;
    bool secret;
    const char *enum_values; /* "us-options|always" for SETTING_ENUM */
    long long min, max;      /* bounds for SETTING_INT / SETTING_DOUBLE */
    size_t offset;           /* into struct settings */
    size_t size;             /* of the char array for SETTING_STRING/ENUM */
    const char *doc;
};

extern const struct setting_desc settings_table[];
extern const size_t settings_count;

/* Fills every setting with its default. */
void settings_init(struct settings *s);

/* Sets one setting from text. Returns 0, or -1 with a message in err
 * ("unknown setting 'x'", "cadence: '5q' is not a duration"). */
int settings_set(struct settings *s, const char *name, const char *value, enum setting_source src,
                 const char *detail, char *err, size_t err_size) __attribute__((warn_unused_result));

/* Reads `key = value` lines ('#' comments, blank lines). A missing file is not
 * an error when `optional`. Errors name the file and line. */
int settings_load_file(struct settings *s, const char *path, bool optional, char *err,
                       size_t err_size) __attribute__((warn_unused_result));

/* Applies OPTSNAP_<KEY> variables from envp (NULL-terminated "K=V" strings). */
int settings_load_env(struct settings *s, char **envp, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Applies --key-name value / --key-name=value flags. argv[0] is skipped.
 * Flags that are not settings are left for the caller: their indexes are
 * written to rest[] (cap rest_cap) and counted in *nrest. */
int settings_load_args(struct settings *s, int argc, char **argv, int *rest, int rest_cap,
                       int *nrest, char *err, size_t err_size) __attribute__((warn_unused_result));

/* Cross-setting checks (e.g. queue_max_rows >= batch_rows). */
int settings_validate(const struct settings *s, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* The effective value as text, secrets masked (passwords in URLs as "****"). */
void settings_format_value(const struct settings *s, size_t index, char *buf, size_t size);

const struct setting_desc *settings_find(const char *name);
const char *setting_source_name(enum setting_source src);

/* Registers the password of a connection string (URL user:PASS@, even when
 * the rest is malformed, or conninfo password=PASS), as written and
 * percent-decoded, with scrub_register_secret. settings_set does it for
 * database_url from every source. */
void settings_register_conninfo_secret(const char *conninfo);

/* For an argv entry holding a connection string: overwrites its password
 * in place with '*' (ps, /proc/PID/cmdline), registers it with the scrubber,
 * warns once to use the environment, a file or ~/.pgpass. Returns the real
 * value (a static copy; the same copy when called again on the same entry,
 * so a SIGHUP re-read of argv sees it), or arg_value when it has no password. */
const char *settings_hide_argv_password(char *arg_value);

/* Masks the password of a postgresql:// URL or a "password=" conninfo word. */
void settings_mask_conninfo(const char *in, char *out, size_t size);

/* The most underlyings a universe may name; one more is an error. */
#define SETTINGS_UNIVERSE_MAX 100000

struct universe_entry {
    char underlying[16];
};
/* Splits the universe ("SPY,QQQ" or "@/path/file" with one ticker per line, '#'
 * comments), duplicates dropped (the first kept) in linear time. Returns the
 * count, or -1 with err (a bad entry is shown with control bytes as '?').
 * *out is malloc'd (array of fixed-size names): caller frees. */
int settings_load_universe(const struct settings *s, struct universe_entry **out, char *err,
                           size_t err_size) __attribute__((warn_unused_result));

/* Loads the API key (OPTSNAP_API_KEY, else api_key_file, else
 * $CREDENTIALS_DIRECTORY/api_key) and the flat files' secret key the same way
 * (OPTSNAP_FLATFILES_SECRET_KEY, flatfiles_secret_key_file, flatfiles_secret_key).
 * Old text: OPTSNAP_API_KEY, else api_key_file, else
 * $CREDENTIALS_DIRECTORY/api_key. Returns 0 (key may stay NULL), -1 on error. */
int settings_load_api_key(struct settings *s, char *err, size_t err_size)
    __attribute__((warn_unused_result));

/* Everything a command needs: defaults, then the config file (--config F,
 * else $OPTSNAP_CONFIG, else /etc/optsnap/optsnap.conf if it exists), then
 * the environment, then flags; validates; applies log_level. Arguments that
 * are not settings are returned in rest[] as argv indexes. */
int settings_load_all(struct settings *s, int argc, char **argv, char **envp, int *rest,
                      int rest_cap, int *nrest, char *err, size_t err_size)
    __attribute__((warn_unused_result));

void settings_free(struct settings *s);

#endif
