/* scrub.h - the one scrubber for text that may carry a secret: a libpq error
 * that repeats the connection string, a URL, a header. Every log line or error
 * message built from such text goes through it. Pure. */
#ifndef OPTSNAP_SCRUB_H
#define OPTSNAP_SCRUB_H

#include <stddef.h>

/* Copies text into out (always NUL-terminated, truncated to size) with every
 * secret replaced by "***": the password of a URL (scheme://user:PASS@...),
 * a conninfo `password=...` (quoted or not), query parameters apiKey=,
 * api_key=, apikey=, token=, password=, and the value after "Authorization:"
 * or "Bearer ". Control characters become spaces (one line per log event).
 * Returns out. */
const char *scrub_secrets(char *out, size_t size, const char *text);

/* Registers a secret known by value (len bytes, a copy is kept; shorter than
 * 3 bytes or longer than 255 is ignored, as are more than 8): scrub_secrets
 * then replaces it wherever it appears, even where no pattern shows it (libpq's
 * "invalid percent-encoded token: \"PASS\"", a malformed URL). */
void scrub_register_secret(const char *secret, size_t len);
/* Tests only: forgets every registered secret. */
void scrub_forget_secrets(void);

#endif
