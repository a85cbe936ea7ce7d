/* Unit tests for the notify protocol: the exact datagrams a service manager
 * listening on NOTIFY_SOCKET receives (path and abstract socket), and the
 * watchdog interval from WATCHDOG_USEC / WATCHDOG_PID. */
#include "optsnap/ops/sd_notify.h"
#include "test.h"

#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* Binds a datagram socket at path ('@' = abstract). Returns the fd or -1. */
static int listen_at(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(path);
    memcpy(sa.sun_path, path, len);
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    else
        salen++;
    struct timeval tv = {2, 0}; /* a lost datagram fails the test instead of hanging it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (bind(fd, (struct sockaddr *)&sa, salen) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Receives one datagram as a NUL-terminated string; returns its length or -1. */
static ssize_t receive(int fd, char *buf, size_t size)
{
    ssize_t n = recv(fd, buf, size - 1, 0);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

static void exchange(const char *socket_path)
{
    int fd = listen_at(socket_path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    setenv("NOTIFY_SOCKET", socket_path, 1);
    char buf[1024];

    CHECK_INT(sd_notify_send("READY=1"), 1);
    CHECK_INT(receive(fd, buf, sizeof buf), 7);
    CHECK_STR(buf, "READY=1");

    const char *status = "STATUS=sweeping 20 underlyings, 1.2M rows written";
    CHECK_INT(sd_notify_send(status), 1);
    CHECK_INT(receive(fd, buf, sizeof buf), (ssize_t)strlen(status));
    CHECK_STR(buf, status);

    CHECK_INT(sd_notify_send("STOPPING=1\nSTATUS=draining queue"), 1);
    receive(fd, buf, sizeof buf);
    CHECK_STR(buf, "STOPPING=1\nSTATUS=draining queue");

    /* a status text cannot smuggle another assignment in */
    CHECK_INT(sd_notify_statusf("%d rows\nREADY=1", 42), 1);
    receive(fd, buf, sizeof buf);
    CHECK_STR(buf, "STATUS=42 rows READY=1");

    CHECK_INT(sd_notify_send("WATCHDOG=1"), 1);
    receive(fd, buf, sizeof buf);
    CHECK_STR(buf, "WATCHDOG=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void test_path_socket(void)
{
    char dir[] = "/tmp/optsnap-notify-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/notify", dir);
    exchange(path);
    unlink(path);
    rmdir(dir);
}

static void test_abstract_socket(void)
{
    char name[64];
    snprintf(name, sizeof name, "@optsnap-test-%ld", (long)getpid());
    exchange(name);
}

static void test_unset_and_bad_addresses(void)
{
    unsetenv("NOTIFY_SOCKET");
    CHECK_INT(sd_notify_send("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    CHECK_INT(sd_notify_send("READY=1"), 0);

    /* nobody listening: the error is returned, not hidden, and nothing crashes */
    char path[128];
    snprintf(path, sizeof path, "/tmp/optsnap-notify-none-%ld", (long)getpid());
    setenv("NOTIFY_SOCKET", path, 1);
    int rc = sd_notify_send("READY=1");
    CHECK(rc == -ENOENT || rc == -ECONNREFUSED);

    setenv("NOTIFY_SOCKET", "relative/path", 1);
    CHECK(sd_notify_send("READY=1") < 0);

    char longpath[300];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    setenv("NOTIFY_SOCKET", longpath, 1);
    CHECK_INT(sd_notify_send("READY=1"), -ENAMETOOLONG);
    unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog_interval(void)
{
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    CHECK_INT(sd_watchdog_interval_us(), 0);

    setenv("WATCHDOG_USEC", "30000000", 1);
    CHECK_INT(sd_watchdog_interval_us(), 30000000);

    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    CHECK_INT(sd_watchdog_interval_us(), 30000000);

    /* meant for another process (we are a child that inherited the environment) */
    snprintf(pid, sizeof pid, "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    CHECK_INT(sd_watchdog_interval_us(), 0);
    setenv("WATCHDOG_PID", "abc", 1);
    CHECK_INT(sd_watchdog_interval_us(), 0);
    unsetenv("WATCHDOG_PID");

    static const char *bad[] = {"", "0", "-5", "12x", " 5", "abc", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("WATCHDOG_USEC", bad[i], 1);
        CHECK_INT(sd_watchdog_interval_us(), 0);
    }
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    RUN(test_path_socket);
    RUN(test_abstract_socket);
    RUN(test_unset_and_bad_addresses);
    RUN(test_watchdog_interval);
    TEST_EXIT();
}
