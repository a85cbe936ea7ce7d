/* log.h - one logfmt line per event on stderr, level checked before formatting. */
#ifndef OPTSNAP_LOG_H
#define OPTSNAP_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR, LOG_LEVEL_OFF };

extern enum log_level log_min_level;

/* Parses "debug|info|warn|error|off". Returns 0, or -1 for an unknown name. */
int log_level_parse(const char *name, enum log_level *out);
void log_set_level(enum log_level level);

/* fmt holds the "key=value ..." pairs after msg; the logger prefixes
 * ts=... level=... msg=... and quotes msg. Values that may hold spaces or
 * quotes are passed through log_quote(). */
void log_write(enum log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quotes a value for logfmt into buf (always NUL-terminated, truncated with
 * "..." when too long). Returns buf. */
const char *log_quote(char *buf, size_t size, const char *value);

#define log_at(level, msg, ...)                                                                    \
    do {                                                                                           \
        if ((level) >= log_min_level)                                                              \
            log_write((level), (msg), __VA_ARGS__);                                                \
    } while (0)

#define log_debug(msg, ...) log_at(LOG_LEVEL_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_at(LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_at(LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_at(LOG_LEVEL_ERROR, msg, __VA_ARGS__)

#endif
