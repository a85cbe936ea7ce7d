/* sd_notify.c - systemd's notify protocol over an AF_UNIX datagram socket, without libsystemd. */
#include "optsnap/ops/sd_notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

int sd_notify_send(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    if (!msg)
        return -EINVAL;
    /* systemd also knows "vsock:" addresses (VMs); a service on a host never gets one. */
    if (path[0] != '/' && path[0] != '@')
        return -EAFNOSUPPORT;

    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len > sizeof sa.sun_path)
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, len);
    socklen_t salen;
    if (path[0] == '@') {
        /* Abstract namespace: leading NUL, and the length counts exactly the
         * name's bytes (no terminating NUL) or the kernel sees another name. */
        sa.sun_path[0] = '\0';
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    } else {
        if (len == sizeof sa.sun_path)
            return -ENAMETOOLONG; /* no room for the NUL */
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    }

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t n;
    do {
        n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
    } while (n < 0 && errno == EINTR);
    int rc = n < 0 ? -errno : 1;
    close(fd);
    return rc;
}

int sd_notify_statusf(const char *fmt, ...)
{
    char buf[512];
    memcpy(buf, "STATUS=", 7);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + 7, sizeof buf - 7, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    /* A newline would start a new assignment: a status text that held one
     * could say READY=1 or MAINPID=. */
    for (char *p = buf + 7; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return sd_notify_send(buf);
}

static int parse_u64(const char *s, unsigned long long *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int64_t sd_watchdog_interval_us(void)
{
    unsigned long long usec, pid;
    if (parse_u64(getenv("WATCHDOG_USEC"), &usec) < 0 || usec == 0 || usec > (unsigned long long)INT64_MAX)
        return 0;
    /* WATCHDOG_PID says whom the watchdog is for: a child that inherited the
     * environment must not ping on its parent's behalf. */
    const char *p = getenv("WATCHDOG_PID");
    if (p && *p) {
        if (parse_u64(p, &pid) < 0 || pid != (unsigned long long)getpid())
            return 0;
    }
    return (int64_t)usec;
}
