/* Unit tests for settings: sources and their order, errors with file:line, masking, universe. */
#include <unistd.h>

#include "optsnap/config/settings.h"
#include "optsnap/util/timeutil.h"
#include "test.h"

static const char *write_tmp(const char *content)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/optsnap-test-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        exit(1);
    if (write(fd, content, strlen(content)) != (ssize_t)strlen(content))
        exit(1);
    close(fd);
    return path;
}

static void test_defaults(void)
{
    struct settings s;
    settings_init(&s);
    CHECK_STR(s.api_url, "https://api.massive.com");
    CHECK_INT(s.cadence_us, 60 * USEC_PER_SEC);
    CHECK_INT(s.http_concurrency, 64);
    CHECK_INT(s.db_connections, 4);
    CHECK_STR(s.calendar, "us-options");
    char err[256];
    CHECK(settings_validate(&s, err, sizeof err) == 0);
    CHECK(settings_count <= 64); /* source[] capacity */
}

static void test_precedence(void)
{
    struct settings s;
    settings_init(&s);
    char err[256];
    const char *path = write_tmp("# comment\n\ncadence = 30s\nhttp_concurrency = 10\nuniverse = \"SPY,QQQ\"\n");
    CHECK(settings_load_file(&s, path, false, err, sizeof err) == 0);
    CHECK_INT(s.cadence_us, 30 * USEC_PER_SEC);
    CHECK_STR(s.universe, "SPY,QQQ");
    char *envp[] = {"OPTSNAP_HTTP_CONCURRENCY=20", "OPTSNAP_API_KEY=sekret", "PATH=/bin",
                    "DATABASE_URL=postgresql://u:pw@h/db", NULL};
    CHECK(settings_load_env(&s, envp, err, sizeof err) == 0);
    CHECK_INT(s.http_concurrency, 20);
    char *argv[] = {"run", "--http-concurrency", "30", "--cadence=5s", "--other", NULL};
    int rest[8], nrest;
    CHECK(settings_load_args(&s, 5, argv, rest, 8, &nrest, err, sizeof err) == 0);
    CHECK_INT(s.http_concurrency, 30);
    CHECK_INT(s.cadence_us, 5 * USEC_PER_SEC);
    CHECK_INT(nrest, 1);
    CHECK_INT(rest[0], 4);
    const struct setting_desc *d = settings_find("http_concurrency");
    size_t i = (size_t)(d - settings_table);
    CHECK_INT(s.source[i], SOURCE_FLAG);
    d = settings_find("universe");
    CHECK_INT(s.source[d - settings_table], SOURCE_FILE);
    CHECK(strstr(s.source_detail[d - settings_table], ":5") != NULL);
    d = settings_find("database_url");
    CHECK_INT(s.source[d - settings_table], SOURCE_ENV);
    char v[256];
    settings_format_value(&s, (size_t)(d - settings_table), v, sizeof v);
    CHECK_STR(v, "postgresql://u:****@h/db");
    unlink(path);
}

static void test_errors_name_file_and_line(void)
{
    struct settings s;
    settings_init(&s);
    char err[256];
    const char *path = write_tmp("cadence = 60s\nbogus_key = 1\n");
    CHECK(settings_load_file(&s, path, false, err, sizeof err) == -1);
    CHECK(strstr(err, ":2: unknown setting 'bogus_key'") != NULL);
    unlink(path);
    path = write_tmp("db_connections = many\n");
    CHECK(settings_load_file(&s, path, false, err, sizeof err) == -1);
    CHECK(strstr(err, ":1: db_connections: 'many' is not an integer") != NULL);
    unlink(path);
    path = write_tmp("no equals sign here\n");
    CHECK(settings_load_file(&s, path, false, err, sizeof err) == -1);
    CHECK(strstr(err, ":1: expected") != NULL);
    unlink(path);
    CHECK(settings_load_file(&s, "/nonexistent/optsnap.conf", true, err, sizeof err) == 0);
    CHECK(settings_load_file(&s, "/nonexistent/optsnap.conf", false, err, sizeof err) == -1);
    CHECK(settings_set(&s, "calendar", "nyse", SOURCE_FLAG, "", err, sizeof err) == -1);
    CHECK(settings_set(&s, "db_connections", "0", SOURCE_FLAG, "", err, sizeof err) == -1);
    CHECK(settings_set(&s, "http_rate", "nan", SOURCE_FLAG, "", err, sizeof err) == -1);
    CHECK(settings_set(&s, "cadence", "-5s", SOURCE_FLAG, "", err, sizeof err) == -1);
    settings_init(&s);
    CHECK(settings_set(&s, "api_url", "https://x/?apiKey=k", SOURCE_FLAG, "", err, sizeof err) == 0);
    CHECK(settings_validate(&s, err, sizeof err) == -1);
    settings_init(&s);
    CHECK(settings_set(&s, "queue_max_rows", "10", SOURCE_FLAG, "", err, sizeof err) == 0);
    CHECK(settings_validate(&s, err, sizeof err) == -1);
    /* the key never crosses the network in clear, and never to userinfo's host */
    static const char *const bad_urls[] = {"http://api.massive.com", "https://u:p@api.massive.com",
                                           "https://api.massive.com#x", "https://-x/"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        settings_init(&s);
        CHECK(settings_set(&s, "api_url", bad_urls[i], SOURCE_FLAG, "", err, sizeof err) == 0);
        CHECK(settings_validate(&s, err, sizeof err) == -1);
        CHECK(strstr(err, "api_url") != NULL);
    }
    settings_init(&s);
    CHECK(settings_set(&s, "api_url", "http://127.0.0.1:8089", SOURCE_FLAG, "", err, sizeof err) == 0);
    CHECK(settings_set(&s, "api_allowed_hosts", "localhost:8089, files.example.com", SOURCE_FLAG, "", err,
                       sizeof err) == 0);
    CHECK(settings_validate(&s, err, sizeof err) == 0);
    CHECK(settings_set(&s, "api_allowed_hosts", "files.example.com/x", SOURCE_FLAG, "", err, sizeof err) == 0);
    CHECK(settings_validate(&s, err, sizeof err) == -1);
    CHECK(strstr(err, "api_allowed_hosts") != NULL);
}

static void test_mask(void)
{
    char out[256];
    settings_mask_conninfo("host=h password=secret dbname=x", out, sizeof out);
    CHECK_STR(out, "host=h password=**** dbname=x");
    settings_mask_conninfo("host=h password = 'se cret' dbname=x", out, sizeof out);
    CHECK(strstr(out, "se cret") == NULL);
    settings_mask_conninfo("postgres://u@h/db?password=pw&sslmode=require", out, sizeof out);
    CHECK(strstr(out, "pw&") == NULL);
    CHECK(strstr(out, "sslmode=require") != NULL);
    settings_mask_conninfo("postgresql://h/db", out, sizeof out);
    CHECK_STR(out, "postgresql://h/db");
}

static void test_universe(void)
{
    struct settings s;
    settings_init(&s);
    char err[256];
    struct universe_entry *u = NULL;
    snprintf(s.universe, sizeof s.universe, " SPY, QQQ ,SPY,BRK.B");
    CHECK_INT(settings_load_universe(&s, &u, err, sizeof err), 3);
    CHECK_STR(u[2].underlying, "BRK.B");
    free(u);
    snprintf(s.universe, sizeof s.universe, "SPY,qqq");
    CHECK_INT(settings_load_universe(&s, &u, err, sizeof err), -1);
    snprintf(s.universe, sizeof s.universe, "SPY,../etc");
    CHECK_INT(settings_load_universe(&s, &u, err, sizeof err), -1);
    /* index underlyings as the API spells them */
    snprintf(s.universe, sizeof s.universe, "I:SPX,SPY,I:NDX");
    CHECK_INT(settings_load_universe(&s, &u, err, sizeof err), 3);
    if (u != NULL)
        CHECK_STR(u[0].underlying, "I:SPX");
    free(u);
    u = NULL;
    static const char *const bad[] = {"I:", "I:spx", "X:SPX", "I:SP:X", "I::SPX"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(s.universe, sizeof s.universe, "%s", bad[i]);
        CHECK_INT(settings_load_universe(&s, &u, err, sizeof err), -1);
    }
    const char *path = write_tmp("# list\nAAPL\n\nMSFT # comment\n");
    snprintf(s.universe, sizeof s.universe, "@%s", path);
    CHECK_INT(settings_load_universe(&s, &u, err, sizeof err), 2);
    CHECK_STR(u[1].underlying, "MSFT");
    free(u);
    unlink(path);
    snprintf(s.universe, sizeof s.universe, ",");
    CHECK_INT(settings_load_universe(&s, &u, err, sizeof err), -1);
}

/* Writes n distinct valid names (each twice when twice) to a file. */
static const char *write_universe_file(int n, int twice)
{
    static char path[] = "/tmp/optsnap_universe_XXXXXX";
    snprintf(path, sizeof path, "/tmp/optsnap_universe_XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    CHECK(f != NULL);
    if (f == NULL)
        return path;
    for (int r = 0; r <= twice; r++)
        for (int i = 0; i < n; i++)
            fprintf(f, "U%06d\n", i);
    fclose(f);
    return path;
}

static void test_universe_limit_and_dedupe(void)
{
    struct settings s;
    settings_init(&s);
    char err[256] = "";
    struct universe_entry *u = NULL;
    /* exactly the limit, every name twice: accepted, duplicates dropped, order kept */
    const char *path = write_universe_file(SETTINGS_UNIVERSE_MAX, 1);
    snprintf(s.universe, sizeof s.universe, "@%s", path);
    CHECK_INT(settings_load_universe(&s, &u, err, sizeof err), SETTINGS_UNIVERSE_MAX);
    if (u) {
        CHECK_STR(u[0].underlying, "U000000");
        CHECK_STR(u[65536].underlying, "U065536");
        CHECK_STR(u[SETTINGS_UNIVERSE_MAX - 1].underlying, "U099999");
    }
    free(u);
    u = NULL;
    unlink(path);
    /* one more distinct name: refused with the documented number */
    path = write_universe_file(SETTINGS_UNIVERSE_MAX + 1, 0);
    snprintf(s.universe, sizeof s.universe, "@%s", path);
    CHECK_INT(settings_load_universe(&s, &u, err, sizeof err), -1);
    CHECK(strstr(err, "more than 100000 underlyings") != NULL);
    unlink(path);
    /* 65,537 names (where the old limit fired) are fine */
    path = write_universe_file(65537, 0);
    snprintf(s.universe, sizeof s.universe, "@%s", path);
    CHECK_INT(settings_load_universe(&s, &u, err, sizeof err), 65537);
    free(u);
    u = NULL;
    unlink(path);
    /* a hostile entry cannot forge a log line through the error text */
    snprintf(s.universe, sizeof s.universe, "SPY,QQQ\nts=x level=error msg=forged");
    CHECK_INT(settings_load_universe(&s, &u, err, sizeof err), -1);
    CHECK(strchr(err, '\n') == NULL);
    CHECK(strstr(err, "QQQ?ts=x") != NULL);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_precedence);
    RUN(test_errors_name_file_and_line);
    RUN(test_mask);
    RUN(test_universe);
    RUN(test_universe_limit_and_dedupe);
    TEST_EXIT();
}
