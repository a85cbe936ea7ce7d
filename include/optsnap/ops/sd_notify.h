/* sd_notify.h - systemd's notify protocol, spoken directly (no libsystemd):
 * one datagram per message to $NOTIFY_SOCKET (a path, or '@' for the
 * abstract namespace). Silently does nothing when NOTIFY_SOCKET is unset. */
#ifndef OPTSNAP_SD_NOTIFY_H
#define OPTSNAP_SD_NOTIFY_H

#include <stdint.h>

/* Sends msg ("READY=1", "STATUS=...", "WATCHDOG=1", "STOPPING=1"; several
 * separated by '\n'). Returns 1 sent, 0 no NOTIFY_SOCKET, negative errno on failure. */
int sd_notify_send(const char *msg);

/* Sends "STATUS=<formatted text>" (cut at 500 bytes; newlines become spaces so
 * the text cannot carry another assignment). Returns as sd_notify_send. */
int sd_notify_statusf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval in microseconds from $WATCHDOG_USEC (and $WATCHDOG_PID
 * when set must equal getpid()), or 0 when the watchdog is off. */
int64_t sd_watchdog_interval_us(void);

#endif
